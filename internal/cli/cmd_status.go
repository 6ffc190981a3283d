package cli

import (
	"io"

	"github.com/spf13/cobra"
)

func (e *env) statusCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "status [-A | -n NS]",
		Short: "What is not Ready, grouped by reason, and the projected backend cost per store",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := e.checkOutput(); err != nil {
				return err
			}
			c, ns, err := e.client()
			if err != nil {
				return err
			}
			if e.allNamespaces {
				ns = ""
			}
			r, err := Status(cmd.Context(), c, ns)
			if err != nil {
				return err
			}
			if err := e.emit(r, func(w io.Writer) { r.writeTable(w) }); err != nil {
				return err
			}
			if r.Total.NotReady > 0 {
				return exitError{ExitProblem}
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&e.allNamespaces, "all-namespaces", "A", false, "every namespace")
	return c
}
