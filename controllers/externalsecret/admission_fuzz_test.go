package externalsecret

import (
	"regexp"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// FuzzAdmission: for any key a tenant writes and any allowedKeys pattern, a key
// that passes both the canonical check and admission (a) matches the pattern as a
// whole and (b) builds a request path that stays under its mount — so admission
// decides on exactly what the backend will read.
func FuzzAdmission(f *testing.F) {
	for _, s := range [][2]string{
		{"team-a/db", "team-a/.*"}, {"team-a/../team-b/db", "team-a/.*"}, {"x/team-a/db", "team-a/"},
		{"team-a/./db", "team-a/.*"}, {"team-a//db", ".*"}, {`team-a\..\db`, "team-a.*"},
		{"team-a/%2e%2e/db", "team-a/.*"}, {"/team-a/db", "/team-a/.*"}, {"team-a/db\n", "team-a/.*"},
		{"sys/policies/acl/x", "database/creds/.*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, pattern string) {
		if _, err := regexp.Compile(pattern); err != nil {
			return
		}
		es := &v1alpha1.ExternalSecret{Spec: v1alpha1.ExternalSecretSpec{
			Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: key}}},
		}}
		if checkCanonical(es) != nil {
			return
		}
		a := newAdmission([]v1alpha1.StoreCondition{{AllowedKeys: []string{pattern}}})
		if _, _, ok := keysAllowed(es, a); !ok {
			return
		}
		if !regexp.MustCompile(`^(?:` + pattern + `)$`).MatchString(key) {
			t.Fatalf("admitted %q without a whole match of %q", key, pattern)
		}
		p, err := provider.UnderMount("secret", key)
		if err != nil {
			t.Fatalf("admitted %q but the provider refuses it: %v", key, err)
		}
		if !strings.HasPrefix(p, "secret/") {
			t.Fatalf("admitted %q reads %q outside the mount", key, p)
		}
	})
}
