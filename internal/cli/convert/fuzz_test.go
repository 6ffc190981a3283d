package convert

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConvert: any input converts without panicking, and every output document is
// valid YAML naming our API version.
func FuzzConvert(f *testing.F) {
	seeds, _ := filepath.Glob("../testdata/convert/*.yaml")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: external-secrets.io/v1\nkind: List\nitems: [{kind: ExternalSecret}]"))
	f.Add([]byte("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nspec: {data: [1, {remoteRef: []}]}"))
	f.Add([]byte("apiVersion: external-secrets.io/v1\nkind: SecretStore\nspec: {provider: {aws: null, vault: 1}}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := Convert(bytes.NewReader(in), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Docs {
			if !bytes.Contains(d, []byte("apiVersion: "+APIVersion)) {
				t.Fatalf("output without our apiVersion:\n%s", d)
			}
		}
	})
}
