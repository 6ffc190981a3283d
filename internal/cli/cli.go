// Package cli is the logic of the kubectl plugin kubectl-secretsync (explain, status,
// sync, convert). It answers with the operator's own rules: the refresh slot and
// ClusterSecretStore admission come from controllers/externalsecret, the cost model
// from internal/cost. It prints key names, versions, lease ids and times — never a
// secret value.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/secretsync/secretsync/internal/scheme"
)

// Exit codes.
const (
	ExitOK      = 0 // all is well
	ExitProblem = 1 // something reported is wrong (not Ready, unsupported input)
	ExitUsage   = 2 // bad flags or arguments
)

// exitError carries an exit code; problems are already printed.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

type usageError struct{ error }

// env is what every command shares.
type env struct {
	kubeconfig, context, namespace string
	allNamespaces                  bool
	output                         string
	in                             io.Reader
	out, errOut                    io.Writer
	now                            func() time.Time
}

// Run runs the plugin with args (without the program name) and returns the exit code.
func Run(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	e := &env{in: in, out: out, errOut: errOut, now: time.Now}
	root := &cobra.Command{
		Use:           "kubectl-secretsync",
		Short:         "Explain, check, sync and convert secretsync objects",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	f := root.PersistentFlags()
	f.StringVar(&e.kubeconfig, "kubeconfig", "", "path to the kubeconfig file")
	f.StringVar(&e.context, "context", "", "the kubeconfig context to use")
	f.StringVarP(&e.namespace, "namespace", "n", "", "the namespace (default: the context's)")
	f.StringVarP(&e.output, "output", "o", "", "output format: json or yaml (default: a table)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(e.explainCmd(), e.statusCmd(), e.syncCmd(), e.convertCmd())
	err := root.ExecuteContext(ctx)
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue) || isCobraUsage(err):
		fmt.Fprintf(errOut, "error: %v\nSee 'kubectl secretsync --help'.\n", err)
		return ExitUsage
	default:
		fmt.Fprintf(errOut, "error: %v\n", err)
		return ExitProblem
	}
}

// isCobraUsage recognises cobra's own argument errors (unknown command, arg counts).
func isCobraUsage(err error) bool {
	for _, p := range []string{"unknown command", "accepts ", "requires ", "unknown flag", "unknown shorthand"} {
		if strings.Contains(err.Error(), p) {
			return true
		}
	}
	return false
}

func (e *env) checkOutput() error {
	switch e.output {
	case "", "json", "yaml", "table":
		return nil
	}
	return usageError{fmt.Errorf("--output %q: must be json or yaml", e.output)}
}

// client builds a controller-runtime client from the user's kubeconfig, with the
// usual loading rules (KUBECONFIG, ~/.kube/config, --kubeconfig, --context), and
// resolves the namespace (-n, else the context's, else "default").
func (e *env) client() (client.Client, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = e.kubeconfig
	cfg := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: e.context})
	rc, err := cfg.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns := e.namespace
	if ns == "" {
		if ns, _, err = cfg.Namespace(); err != nil {
			return nil, "", fmt.Errorf("kubeconfig namespace: %w", err)
		}
	}
	c, err := client.New(rc, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, "", fmt.Errorf("client: %w", err)
	}
	return c, ns, nil
}

// emit prints v as JSON or YAML when asked; table() otherwise.
func (e *env) emit(v any, table func(io.Writer)) error {
	switch e.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.out, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = e.out.Write(b)
		return err
	}
	table(e.out)
	return nil
}
