package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

func (e *env) syncCmd() *cobra.Command {
	var all bool
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "sync [-n NS] NAME|--all",
		Short: "Force a refresh now (the force-sync annotation) and wait until the operator observed it",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.checkOutput(); err != nil {
				return err
			}
			if all == (len(args) == 1) || len(args) > 1 {
				return usageError{fmt.Errorf("give one ExternalSecret NAME or --all")}
			}
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			if e.allNamespaces {
				if !all {
					return usageError{fmt.Errorf("-A needs --all")}
				}
				ns = ""
			}
			keys, err := syncTargets(cmd.Context(), c, ns, args, all)
			if err != nil {
				return err
			}
			rs, err := ForceSync(cmd.Context(), c, keys, timeout, 500*time.Millisecond, e.errOut, e.now)
			if err != nil {
				return err
			}
			if err := e.emit(rs, func(w io.Writer) { writeSyncTable(w, rs) }); err != nil {
				return err
			}
			if !syncHealthy(rs) {
				return exitError{ExitProblem}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, "every ExternalSecret in the namespace (with -A: in every namespace)")
	c.Flags().BoolVarP(&e.allNamespaces, "all-namespaces", "A", false, "with --all: every namespace")
	c.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "how long to wait for the operator")
	return c
}
