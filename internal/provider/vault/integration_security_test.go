package vault_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
)

// rawAnswer sends one request to b with the root token and returns Vault's status
// and body as they are, so the test log shows the shapes the classification is
// built on.
func rawAnswer(t *testing.T, b *testenv.OpenBao, method, path, namespace string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.Addr+"/v1/"+path, http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", b.RootToken)
	if namespace != "" {
		req.Header.Set("X-Vault-Namespace", namespace)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	t.Logf("%s %s (namespace %q) -> %d %s", method, path, namespace, resp.StatusCode, strings.TrimSpace(string(body)))
	return resp.StatusCode, string(body)
}

// clientWithToken is a client of b's store with token tok, over mount/version/namespace.
func clientWithToken(t *testing.T, b *testenv.OpenBao, tok string, mutate func(*v1alpha1.VaultProvider)) *vault.Client {
	t.Helper()
	st := vaultStore(b.Addr, func(v *v1alpha1.VaultProvider) {
		v.Auth.TokenSecretRef = &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}
		mutate(v)
	})
	return newClient(t, vault.New(), st, secretsKube{"team-a/vault-token/token": tok})
}

// TestNotFoundOnlyForMissingSecrets runs the 404 classification against a real
// OpenBao: only a missing secret (or a deleted version) is ErrNotFound; a missing
// mount, a wrong namespace and a KV version mismatch are not, so nothing is pruned.
func TestNotFoundOnlyForMissingSecrets(t *testing.T) {
	b := testenv.StartOpenBao(t)
	b.EnableAudit(t)
	ctx := t.Context()
	if err := b.Client.Sys().MountWithContext(ctx, "kv1", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	write(t, b, "sys/namespaces/team", nil)
	if _, err := b.Client.KVv2("secret").Put(ctx, "team-a/app", map[string]any{"pw": "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client.KVv2("secret").Put(ctx, "team-a/gone", map[string]any{"pw": "g"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Client.KVv2("secret").Delete(ctx, "team-a/gone"); err != nil {
		t.Fatal(err)
	}
	write(t, b, "kv1/team-a/app", map[string]any{"pw": "v1"})

	// The shapes, for the log (and the report): what each 404 looks like.
	for _, r := range []struct{ method, path, ns string }{
		{"GET", "secret/data/team-a/missing", ""},
		{"GET", "secret/data/team-a/gone", ""},
		{"GET", "kv1/team-a/missing", ""},
		{"GET", "nope/data/team-a/app", ""},
		{"GET", "secret/data/team-a/app", "nope"},
		{"GET", "kv1/data/team-a/app", ""},
		{"GET", "secret/team-a/app", ""},
		{"GET", "secret/team-a/missing", ""},
		{"LIST", "secret/metadata/team-a/missing/", ""},
		{"LIST", "kv1/metadata/team-a/", ""},
		{"LIST", "secret/team-a/", ""},
		{"LIST", "nope/metadata/team-a/", ""},
		{"GET", "sys/internal/ui/mounts/secret", ""},
		{"GET", "sys/internal/ui/mounts/kv1", ""},
		{"GET", "sys/internal/ui/mounts/nope", ""},
		{"GET", "sys/internal/ui/mounts/secret", "nope"},
		{"GET", "sys/internal/ui/mounts/secret/team-a", ""},
	} {
		rawAnswer(t, b, r.method, r.path, r.ns)
	}

	v2 := func(v *v1alpha1.VaultProvider) {}
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.VaultProvider)
		key    string
		want   error // nil: the read succeeds
		code   string
	}{
		{"existing secret", v2, "team-a/app", nil, ""},
		{"missing secret", v2, "team-a/missing", provider.ErrNotFound, "404"},
		{"deleted latest version", v2, "team-a/gone", provider.ErrNotFound, "404"},
		{"missing secret KV v1", func(v *v1alpha1.VaultProvider) { v.Path, v.Version = "kv1", v1alpha1.VaultKVv1 }, "team-a/missing", provider.ErrNotFound, "404"},
		{"existing secret KV v1", func(v *v1alpha1.VaultProvider) { v.Path, v.Version = "kv1", v1alpha1.VaultKVv1 }, "team-a/app", nil, ""},
		{"missing mount", func(v *v1alpha1.VaultProvider) { v.Path = "nope" }, "team-a/app", provider.ErrInvalid, "NoRoute"},
		{"missing mount KV v1", func(v *v1alpha1.VaultProvider) { v.Path, v.Version = "nope", v1alpha1.VaultKVv1 }, "team-a/app", provider.ErrInvalid, "NoRoute"},
		{"wrong namespace", func(v *v1alpha1.VaultProvider) { v.Namespace = "nope" }, "team-a/app", provider.ErrInvalid, "NoNamespace"},
		{"mount of another namespace", func(v *v1alpha1.VaultProvider) { v.Namespace = "team" }, "team-a/app", provider.ErrInvalid, "NoRoute"},
		{"KV v2 client on a v1 mount, existing key", func(v *v1alpha1.VaultProvider) { v.Path = "kv1" }, "team-a/app", provider.ErrInvalid, "KVVersionMismatch"},
		{"KV v2 client on a v1 mount, missing key", func(v *v1alpha1.VaultProvider) { v.Path = "kv1" }, "team-a/missing", provider.ErrInvalid, "KVVersionMismatch"},
		{"KV v1 client on a v2 mount, existing key", func(v *v1alpha1.VaultProvider) { v.Version = v1alpha1.VaultKVv1 }, "team-a/app", provider.ErrInvalid, "KVVersionMismatch"},
		{"KV v1 client on a v2 mount, missing key", func(v *v1alpha1.VaultProvider) { v.Version = v1alpha1.VaultKVv1 }, "team-a/missing", provider.ErrInvalid, "KVVersionMismatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientWithToken(t, b, b.RootToken, tc.mutate)
			_, err := c.GetSecret(t.Context(), provider.Ref{Key: tc.key})
			t.Logf("GetSecret(%q) = %v", tc.key, err)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(tc.want, provider.ErrNotFound) && errors.Is(err, provider.ErrNotFound) {
				t.Fatalf("err = %v: ErrNotFound would prune the key", err)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("err = %v, want code %q", err, tc.code)
			}
		})
	}

	t.Run("find", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			mutate func(*v1alpha1.VaultProvider)
			path   string
			want   int   // results, when err is nil
			err    error // nil: the find succeeds
		}{
			{"existing folder", v2, "team-a", 1, nil},
			{"missing folder on the mount", v2, "team-b", 0, nil},
			{"KV v1 folder", func(v *v1alpha1.VaultProvider) { v.Path, v.Version = "kv1", v1alpha1.VaultKVv1 }, "team-a", 1, nil},
			{"missing mount", func(v *v1alpha1.VaultProvider) { v.Path = "nope" }, "team-a", 0, provider.ErrInvalid},
			{"wrong namespace", func(v *v1alpha1.VaultProvider) { v.Namespace = "nope" }, "team-a", 0, provider.ErrInvalid},
			{"KV v2 client on a v1 mount", func(v *v1alpha1.VaultProvider) { v.Path = "kv1" }, "team-a", 0, provider.ErrInvalid},
			{"KV v1 client on a v2 mount", func(v *v1alpha1.VaultProvider) { v.Version = v1alpha1.VaultKVv1 }, "team-a", 0, provider.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := clientWithToken(t, b, b.RootToken, tc.mutate)
				got, err := c.Find(t.Context(), provider.FindQuery{Path: tc.path})
				t.Logf("Find(%q) = %d results, %v", tc.path, len(got), err)
				if tc.err == nil {
					if err != nil || len(got) != tc.want {
						t.Fatalf("Find = %v, %v; want %d results", got, err, tc.want)
					}
					for rel, s := range got {
						if s.Key != tc.path+"/"+rel {
							t.Fatalf("result %q: Key = %q", rel, s.Key)
						}
					}
					return
				}
				if !errors.Is(err, tc.err) || got != nil {
					t.Fatalf("Find = %v, %v; want no result and %v", got, err, tc.err)
				}
			})
		}
	})

	t.Run("a token limited to one tenant's folder can be told a key is missing", func(t *testing.T) {
		if err := b.Client.Sys().PutPolicyWithContext(ctx, "team-a", `
path "secret/data/team-a/*" { capabilities = ["read"] }
path "secret/metadata/team-a/*" { capabilities = ["read", "list"] }
`); err != nil {
			t.Fatal(err)
		}
		tok, err := b.Client.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{"team-a"}, NoDefaultPolicy: false})
		if err != nil {
			t.Fatal(err)
		}
		c := clientWithToken(t, b, tok.Auth.ClientToken, v2)
		if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "team-a/missing"}); !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound (the mount probe must be allowed to this token)", err)
		}
		if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "team-b/db"}); !errors.Is(err, provider.ErrAccessDenied) {
			t.Fatalf("outside the policy: err = %v, want ErrAccessDenied", err)
		}
	})

	t.Run("the mount probe runs once per client, never for reads that succeed", func(t *testing.T) {
		before := b.AuditCount(t, "sys/internal/ui/mounts/secret")
		c := clientWithToken(t, b, b.RootToken, v2)
		for range 10 {
			if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "team-a/app"}); err != nil {
				t.Fatal(err)
			}
		}
		if n := b.AuditCount(t, "sys/internal/ui/mounts/secret") - before; n != 0 {
			t.Fatalf("%d probes for 10 reads that succeeded", n)
		}
		reads := b.AuditCount(t, "secret/data/team-a/missing")
		for range 10 {
			if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "team-a/missing"}); !errors.Is(err, provider.ErrNotFound) {
				t.Fatal(err)
			}
		}
		if n := b.AuditCount(t, "sys/internal/ui/mounts/secret") - before; n != 1 {
			t.Fatalf("%d probes for 10 missing keys, want 1", n)
		}
		if n := b.AuditCount(t, "secret/data/team-a/missing") - reads; n != 10 {
			t.Fatalf("%d reads audited for 10 GetSecret calls", n)
		}
	})

	t.Run("traversal keys never reach the server", func(t *testing.T) {
		write(t, b, "sys/policies/acl/x", map[string]any{"policy": `path "x" { capabilities = ["read"] }`})
		before := b.AuditCount(t, "secret/data/team-b/db")
		c := clientWithToken(t, b, b.RootToken, v2)
		for _, key := range []string{"team-a/../team-b/db", "team-a/./../team-b/db", "team-a//../team-b/db", `team-a\..\team-b\db`, "team-a/%2e%2e/team-b/db"} {
			if _, err := c.GetSecret(t.Context(), provider.Ref{Key: key}); !errors.Is(err, provider.ErrInvalid) {
				t.Fatalf("GetSecret(%q) = %v, want ErrInvalid", key, err)
			}
		}
		if _, _, err := c.Issue(t.Context(), provider.DynamicRequest{Path: "team-a/../sys/policies/acl/x", Method: "POST", Parameters: map[string]string{"policy": "hacked"}}); !errors.Is(err, provider.ErrInvalid) {
			t.Fatalf("Issue = %v, want ErrInvalid", err)
		}
		if n := b.AuditCount(t, "secret/data/team-b/db") - before; n != 0 {
			t.Fatalf("%d reads of team-b's secret reached the server", n)
		}
		p, err := b.Client.Sys().GetPolicyWithContext(t.Context(), "x")
		if err != nil || strings.Contains(p, "hacked") {
			t.Fatalf("policy x = %q, %v: the dynamic POST reached sys/", p, err)
		}
	})
}
