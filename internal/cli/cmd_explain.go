package cli

import (
	"io"

	"github.com/spf13/cobra"
)

func (e *env) explainCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "explain [-n NS] NAME",
		Short: "Explain an ExternalSecret: store, admission, keys, versions, reason and fix, next refresh, leases",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := e.checkOutput(); err != nil {
				return err
			}
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			now := e.now()
			x, err := Explain(cmd.Context(), c, ns, args[0], now)
			if err != nil {
				return err
			}
			if err := e.emit(x, func(w io.Writer) { x.writeTable(w, now) }); err != nil {
				return err
			}
			if !x.Healthy() {
				return exitError{ExitProblem}
			}
			return nil
		},
	}
}

// usageArgs marks argument-count errors as usage errors (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
