// Command kubectl-secretsync is the kubectl plugin for secretsync: `kubectl secretsync
// explain|status|sync|convert`. The logic lives in internal/cli (docs/cli.md).
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/secretsync/secretsync/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
