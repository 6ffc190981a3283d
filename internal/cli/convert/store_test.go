package convert

import (
	"strings"
	"testing"
)

// TestMalformedProvider: a provider that is not an object is an error by path,
// never a panic (found by FuzzConvert: `aws: null` reached convertAWS with no report).
func TestMalformedProvider(t *testing.T) {
	for _, tc := range []struct {
		name, provider, want string
	}{
		{"aws null", "{aws: null}", "spec.provider: no aws or vault provider"},
		{"aws scalar", "{aws: 1}", "spec.provider.aws: expected an object"},
		{"vault list", "{vault: []}", "spec.provider.vault: expected an object"},
		{"empty", "{}", "spec.provider: no aws or vault provider"},
		{"other only", "{gcpsm: {}}", "spec.provider.gcpsm: unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := "apiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata: {name: s}\nspec: {provider: " + tc.provider + "}\n"
			res, err := Convert(strings.NewReader(in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Docs) != 0 {
				t.Errorf("converted a store without a provider:\n%s", res.Docs[0])
			}
			if !strings.Contains(strings.Join(res.Errors, "\n"), tc.want) {
				t.Errorf("errors %q, want one containing %q", res.Errors, tc.want)
			}
		})
	}
}
