package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/secretsync/secretsync/controllers/externalsecret"
	"github.com/secretsync/secretsync/internal/cli/convert"
)

func (e *env) convertCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "convert -f FILE|-",
		Short: "Convert External Secrets Operator manifests to secretsync manifests (stdout)",
		Long: `Reads ESO manifests (external-secrets.io/v1 and v1beta1: ExternalSecret, SecretStore,
ClusterSecretStore, ClusterExternalSecret; AWS Secrets Manager, Parameter Store and Vault
providers) and writes secretsync manifests to stdout. Fields without effect here are
dropped with a warning on stderr (exit 0); fields or providers whose behaviour cannot be
reproduced are listed on stderr with their path (exit 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{fmt.Errorf("-f FILE or -f - is required")}
			}
			in := e.in
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			return exitCode(writeConverted(in, e.out, e.errOut))
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "ESO manifests to convert (- for stdin)")
	return c
}

// writeConverted converts in and returns the exit code.
func writeConverted(in io.Reader, out, errOut io.Writer) int {
	res, err := convert.Convert(in, externalsecret.CheckTemplate)
	if err != nil {
		fmt.Fprintf(errOut, "error: %v\n", err)
		return ExitProblem
	}
	for i, d := range res.Docs {
		if i > 0 {
			fmt.Fprintln(out, "---")
		}
		if _, err := out.Write(d); err != nil {
			fmt.Fprintf(errOut, "error: write: %v\n", err)
			return ExitProblem
		}
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(errOut, "error: %s\n", e)
	}
	if len(res.Errors) > 0 {
		fmt.Fprintf(errOut, "%d field(s) or object(s) could not be converted\n", len(res.Errors))
		return ExitProblem
	}
	return ExitOK
}

func exitCode(code int) error {
	if code == ExitOK {
		return nil
	}
	return exitError{code}
}
