package externalsecret

import (
	"strings"
	"testing"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

func TestAdmissionMatchesWholeKey(t *testing.T) {
	a := newAdmission([]v1alpha1.StoreCondition{{AllowedKeys: []string{"team-a/.*", "^shared/ca$", "transit/team-a-.*", "("}}})
	cases := []struct {
		key  string
		want bool
	}{
		{"team-a/db", true},
		{"x/team-a/db", false}, // unanchored matching admitted this
		{"team-a", false},
		{"shared/ca", true},
		{"shared/ca2", false},
		{"transit/team-a-app", true},
		{"transit/team-b-app", false},
		{"(", false}, // a pattern that does not compile admits nothing
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			if got := a.allows(c.key); got != c.want {
				t.Fatalf("allows(%q) = %v, want %v", c.key, got, c.want)
			}
		})
	}
	if !newAdmission([]v1alpha1.StoreCondition{{AllowedKeys: []string{"x"}}, {}}).allows("anything") {
		t.Fatal("an admitting entry without allowedKeys must allow every key")
	}
}

func TestSpecKeysAdmission(t *testing.T) {
	a := newAdmission([]v1alpha1.StoreCondition{{AllowedKeys: []string{"team-a/.*", "transit/team-a-.*", "database/creds/team-a-.*"}}})
	cases := []struct {
		name     string
		spec     v1alpha1.ExternalSecretSpec
		wantPath string // "" = allowed
	}{
		{"own key", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: "team-a/db"}}}}, ""},
		{"foreign key", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: "team-b/db"}}}}, "spec.data[0].remoteRef.key"},
		{"own transit key", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", Decrypt: &v1alpha1.DecryptRef{Key: "team-a-app", Ciphertext: "vault:v1:x"}}}}, ""},
		{"foreign transit key", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", Decrypt: &v1alpha1.DecryptRef{Key: "team-b-app", Ciphertext: "vault:v1:x"}}}}, "spec.data[0].decrypt.mount"},
		{"own transit key on a foreign mount", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", Decrypt: &v1alpha1.DecryptRef{Mount: "transit-b", Key: "team-a-app", Ciphertext: "vault:v1:x"}}}}, "spec.data[0].decrypt.mount"},
		{"foreign dynamic path", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "sys/policies/acl/x"}}}}, "spec.dataFrom[0].dynamic.path"},
		{"own dynamic path", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "database/creds/team-a-ro"}}}}, ""},
		{"foreign find path", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "team-b"}}}}, "spec.dataFrom[0].find.path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := &v1alpha1.ExternalSecret{Spec: c.spec}
			path, _, ok := keysAllowed(es, a)
			if ok != (c.wantPath == "") || path != c.wantPath {
				t.Fatalf("keysAllowed = %q, %v; want %q", path, ok, c.wantPath)
			}
		})
	}
}

func TestCheckCanonical(t *testing.T) {
	cases := []struct {
		name     string
		spec     v1alpha1.ExternalSecretSpec
		wantPath string
	}{
		{"plain key", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: "team-a/db"}}}}, ""},
		{"ssm name", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: "/team-a/db"}}}}, ""},
		{"find path with slashes at both ends", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "/team-a/app/"}}}}, ""},
		{"traversal", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: "team-a/../team-b/db"}}}}, "spec.data[0].remoteRef.key"},
		{"dot segment", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Extract: &v1alpha1.ExtractRef{Key: "team-a/./db"}}}}, "spec.dataFrom[0].extract.key"},
		{"empty segment", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "team-a//x"}}}}, "spec.dataFrom[0].find.path"},
		{"backslash", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: `team-a\..\db`}}}}, "spec.data[0].remoteRef.key"},
		{"percent-encoded", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: "team-a/%2e%2e/db"}}}}, "spec.data[0].remoteRef.key"},
		{"control character", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: "team-a/\x00db"}}}}, "spec.data[0].remoteRef.key"},
		{"dynamic policy write", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "team-a/../sys/policies/acl/x", Method: "POST"}}}}, "spec.dataFrom[0].dynamic.path"},
		{"transit mount", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", Decrypt: &v1alpha1.DecryptRef{Mount: "transit/..", Key: "a", Ciphertext: "c"}}}}, "spec.data[0].decrypt.mount"},
		{"dynamic on sys/", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "sys/policies/acl/x", Method: "POST"}}}}, "spec.dataFrom[0].dynamic.path"},
		{"dynamic on auth/", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "auth/token/create", Method: "POST"}}}}, "spec.dataFrom[0].dynamic.path"},
		{"dynamic on a secrets engine", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "database/creds/ro"}}}}, ""},
		{"transit key with a slash", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{SecretKey: "k", Decrypt: &v1alpha1.DecryptRef{Key: "a/b", Ciphertext: "c"}}}}, "spec.data[0].decrypt.key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := checkCanonical(&v1alpha1.ExternalSecret{Spec: c.spec})
			if c.wantPath == "" {
				if o != nil {
					t.Fatalf("refused: %s", o.message)
				}
				return
			}
			if o == nil || o.reason != v1alpha1.ReasonInvalidSpec || !strings.HasPrefix(o.message, c.wantPath+":") {
				t.Fatalf("outcome = %+v, want InvalidSpec naming %s", o, c.wantPath)
			}
		})
	}
}

// Extract keys are secret content: rewrite failures never quote them.
func TestRewriteMessagesQuoteNoContent(t *testing.T) {
	const canary = "CANARY-7f3a"
	kv := map[string][]byte{canary + "/x": []byte("v"), canary + "-y": []byte("v"), canary + "_y": []byte("v")}
	for name, rules := range map[string][]v1alpha1.Rewrite{
		"invalid key":   nil,
		"duplicate key": {{Regexp: v1alpha1.RewriteRegexp{Source: "[-_/]", Target: "."}}, {Regexp: v1alpha1.RewriteRegexp{Source: `\.x$`, Target: ".y"}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, o := rewrite("spec.dataFrom[0]", kv, rules)
			if o == nil {
				t.Fatal("no failure")
			}
			if strings.Contains(o.message, canary) {
				t.Fatalf("message quotes secret content: %s", o.message)
			}
		})
	}
}

func TestRewriteBounds(t *testing.T) {
	amplify := []v1alpha1.Rewrite{}
	for range 3 {
		amplify = append(amplify, v1alpha1.Rewrite{Regexp: v1alpha1.RewriteRegexp{Source: "x*", Target: strings.Repeat("a", 512)}})
	}
	cases := []struct {
		name   string
		keys   []string
		rules  []v1alpha1.Rewrite
		reason string
	}{
		{"amplifying rules stop at the length bound", []string{strings.Repeat("k", 2048)}, amplify, v1alpha1.ReasonInvalidKey},
		{"a key from content longer than the bound", []string{strings.Repeat("k", 5000)}, []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "^k+$", Target: "short"}}}, v1alpha1.ReasonInvalidKey},
		{"dot-dot is not a Secret key", []string{"a"}, []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "a", Target: ".."}}}, v1alpha1.ReasonInvalidKey},
		{"over 253 bytes is not a Secret key", []string{strings.Repeat("k", 254)}, nil, v1alpha1.ReasonInvalidKey},
		{"a long remote name shortened", []string{"/demo/app/" + strings.Repeat("k", 300)}, []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "^/demo/app/k+$", Target: "db"}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kv := map[string][]byte{}
			for _, k := range c.keys {
				kv[k] = []byte("v")
			}
			_, o := rewrite("spec.dataFrom[0]", kv, c.rules)
			if c.reason == "" && o != nil {
				t.Fatalf("refused: %s", o.message)
			}
			if c.reason != "" && (o == nil || o.reason != c.reason) {
				t.Fatalf("outcome = %+v, want %s", o, c.reason)
			}
		})
	}
}

func TestProviderFailureReasons(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		reason string
		retry  bool
	}{
		{"malformed version selector", provider.Wrap(provider.ErrInvalid, "InvalidVersion", provider.ErrSpec), v1alpha1.ReasonInvalidSpec, false},
		{"non-canonical key", provider.Wrap(provider.ErrInvalid, "NotCanonical", provider.ErrNotCanonical), v1alpha1.ReasonInvalidSpec, false},
		{"found key refused before its read", provider.Wrap(provider.ErrNotAllowed, "", nil), v1alpha1.ReasonKeyNotAllowed, false},
		{"missing Vault mount is the backend's answer", provider.Wrap(provider.ErrInvalid, "NoRoute", nil), v1alpha1.ReasonProviderError, true},
		{"empty answer", provider.Wrap(provider.ErrUnavailable, "EmptyResponse", nil), v1alpha1.ReasonProviderError, true},
		{"real not found", provider.Wrap(provider.ErrNotFound, "404", nil), v1alpha1.ReasonKeyNotFound, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := providerFailure("spec.data[0].remoteRef", c.err)
			if o.reason != c.reason || (o.kind == transient) != c.retry {
				t.Fatalf("outcome = %s kind=%d, want %s retry=%v", o.reason, o.kind, c.reason, c.retry)
			}
		})
	}
}
