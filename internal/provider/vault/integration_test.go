package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/providertest"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
)

// secretsKube serves credential Secrets from a map ("ns/name/key").
type secretsKube map[string]string

func (k secretsKube) SecretKey(_ context.Context, ns, name, key string) ([]byte, error) {
	v, ok := k[ns+"/"+name+"/"+key]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s key %s: %w", ns, name, key, provider.ErrCredentials)
	}
	return []byte(v), nil
}

// ConfigMapKey serves ConfigMaps from the same map, as "configmap:ns/name/key".
func (k secretsKube) ConfigMapKey(_ context.Context, ns, name, key string) ([]byte, error) {
	v, ok := k["configmap:"+ns+"/"+name+"/"+key]
	if !ok {
		return nil, fmt.Errorf("configmap %s/%s has no key %q: %w", ns, name, key, provider.ErrCredentials)
	}
	return []byte(v), nil
}

func (k secretsKube) ServiceAccountToken(context.Context, string, string, []string, time.Duration) (string, error) {
	return "", errors.New("no service accounts here")
}

func vaultStore(addr string, mutate func(*v1alpha1.VaultProvider)) *v1alpha1.SecretStore {
	v := &v1alpha1.VaultProvider{Server: addr}
	mutate(v)
	return &v1alpha1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Name: "vault", Namespace: "team-a"},
		Spec:       v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: v}},
	}
}

func newClient(t *testing.T, p provider.Provider, st *v1alpha1.SecretStore, kube provider.Kube) *vault.Client {
	t.Helper()
	c, err := p.NewClient(t.Context(), st, kube, "team-a")
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c.(*vault.Client)
}

// tokenClient is a client authenticated with b's root token from a Secret.
func tokenClient(t *testing.T, b *testenv.OpenBao, mutate func(*v1alpha1.VaultProvider)) *vault.Client {
	t.Helper()
	st := vaultStore(b.Addr, func(v *v1alpha1.VaultProvider) {
		v.Auth.TokenSecretRef = &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}
		mutate(v)
	})
	return newClient(t, vault.New(), st, secretsKube{"team-a/vault-token/token": b.RootToken})
}

func write(t *testing.T, b *testenv.OpenBao, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := b.Client.Logical().WriteWithContext(t.Context(), path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func findName(findPath, full string) string {
	return strings.TrimPrefix(strings.TrimPrefix(full, strings.Trim(findPath, "/")), "/")
}

func TestConformanceKVv2(t *testing.T) {
	b := testenv.StartOpenBao(t)
	c := tokenClient(t, b, func(*v1alpha1.VaultProvider) {})
	kv := b.Client.KVv2("secret")
	providertest.Run(t, "conf", providertest.Harness{
		Client: c,
		Put: func(t *testing.T, name string, value []byte, tags map[string]string) string {
			var data map[string]any
			if err := json.Unmarshal(value, &data); err != nil {
				t.Fatalf("value is not a JSON object: %v", err)
			}
			s, err := kv.Put(t.Context(), name, data)
			if err != nil {
				t.Fatalf("put %s: %v", name, err)
			}
			if len(tags) > 0 {
				custom := map[string]any{}
				for k, v := range tags {
					custom[k] = v
				}
				if err := kv.PutMetadata(t.Context(), name, api.KVMetadataPutInput{CustomMetadata: custom}); err != nil {
					t.Fatalf("put metadata %s: %v", name, err)
				}
			}
			return strconv.Itoa(s.VersionMetadata.Version)
		},
		Name:      func(s string) string { return s },
		Versioned: true,
		MapValues: true,
		FoundName: findName,
	})
}

// tagsOnTheSide applies tags for a KV v1 mount, which has no metadata to keep them
// in: Find with tags goes to the real client WITHOUT the tags (path and regexp are
// still resolved by OpenBao) and the harness filters by the tags it recorded on Put.
// The client's own answer to a tag query on KV v1 (ErrInvalid) is tested below.
type tagsOnTheSide struct {
	*vault.Client
	mu   sync.Mutex
	tags map[string]map[string]string
}

func (c *tagsOnTheSide) Find(ctx context.Context, q provider.FindQuery) (map[string]provider.Secret, error) {
	tags := q.Tags
	q.Tags = nil
	found, err := c.Client.Find(ctx, q)
	if err != nil || len(tags) == 0 {
		return found, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for rel := range found {
		have := c.tags[strings.Trim(q.Path, "/")+"/"+rel]
		for k, v := range tags {
			if have[k] != v {
				delete(found, rel)
				break
			}
		}
	}
	return found, nil
}

func TestConformanceKVv1(t *testing.T) {
	b := testenv.StartOpenBao(t)
	if err := b.Client.Sys().MountWithContext(t.Context(), "kv1", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	c := tokenClient(t, b, func(v *v1alpha1.VaultProvider) { v.Path, v.Version = "kv1", v1alpha1.VaultKVv1 })
	side := &tagsOnTheSide{Client: c, tags: map[string]map[string]string{}}
	providertest.Run(t, "conf", providertest.Harness{
		Client: side,
		Put: func(t *testing.T, name string, value []byte, tags map[string]string) string {
			var data map[string]any
			if err := json.Unmarshal(value, &data); err != nil {
				t.Fatalf("value is not a JSON object: %v", err)
			}
			write(t, b, "kv1/"+name, data)
			side.mu.Lock()
			side.tags[name] = tags
			side.mu.Unlock()
			return ""
		},
		Name:      func(s string) string { return s },
		MapValues: true,
		FoundName: findName,
	})

	t.Run("tags and versions are refused on KV v1", func(t *testing.T) {
		write(t, b, "kv1/plain", map[string]any{"a": "b"})
		got, err := c.GetSecret(t.Context(), provider.Ref{Key: "plain"})
		if err != nil || string(got.Value) != `{"a":"b"}` || got.Version != "" {
			t.Fatalf("GetSecret = %s@%q, %v", got.Value, got.Version, err)
		}
		if _, err := c.Find(t.Context(), provider.FindQuery{Path: "conf", Tags: map[string]string{"team": "a"}}); !errors.Is(err, provider.ErrInvalid) {
			t.Fatalf("Find with tags on KV v1: err = %v, want ErrInvalid", err)
		}
		if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "plain", Version: "1"}); !errors.Is(err, provider.ErrInvalid) {
			t.Fatalf("versioned read on KV v1: err = %v, want ErrInvalid", err)
		}
	})
}

const readPolicy = `
path "secret/*" { capabilities = ["read", "list"] }
path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["update"] }
`

// seed writes two versions of secret/app/db and the read policy.
func seed(t *testing.T, b *testenv.OpenBao) {
	t.Helper()
	if err := b.Client.Sys().PutPolicyWithContext(t.Context(), "read", readPolicy); err != nil {
		t.Fatal(err)
	}
	kv := b.Client.KVv2("secret")
	for _, pw := range []string{"old-pw", "new-pw"} {
		if _, err := kv.Put(t.Context(), "app/db", map[string]any{"username": "app", "password": pw}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkReads reads the latest and the first version of secret/app/db.
func checkReads(t *testing.T, c provider.Client) {
	t.Helper()
	got, err := c.GetSecret(t.Context(), provider.Ref{Key: "app/db"})
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if pw, _ := provider.Property(got.Value, "password"); string(pw) != "new-pw" || got.Version != "2" {
		t.Fatalf("latest = %s@%s", pw, got.Version)
	}
	old, err := c.GetSecret(t.Context(), provider.Ref{Key: "app/db", Version: "1"})
	if err != nil {
		t.Fatalf("GetSecret(version 1): %v", err)
	}
	if pw, _ := provider.Property(old.Value, "password"); string(pw) != "old-pw" || old.Version != "1" {
		t.Fatalf("version 1 = %s@%s", pw, old.Version)
	}
	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func enableAuth(t *testing.T, b *testenv.OpenBao, path, typ string) {
	t.Helper()
	if err := b.Client.Sys().EnableAuthWithOptionsWithContext(t.Context(), path, &api.EnableAuthOptions{Type: typ}); err != nil {
		t.Fatalf("enable %s auth: %v", typ, err)
	}
}

// appRole enables AppRole at path with role "app" and returns role id and secret id.
func appRole(t *testing.T, b *testenv.OpenBao, path string, extra map[string]any) (string, string) {
	t.Helper()
	enableAuth(t, b, path, "approle")
	role := map[string]any{"token_policies": "read", "token_ttl": "1h"}
	for k, v := range extra {
		role[k] = v
	}
	write(t, b, "auth/"+path+"/role/app", role)
	rid, err := b.Client.Logical().ReadWithContext(t.Context(), "auth/"+path+"/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid := write(t, b, "auth/"+path+"/role/app/secret-id", nil)
	return rid.Data["role_id"].(string), sid.Data["secret_id"].(string)
}

func appRoleClient(t *testing.T, b *testenv.OpenBao, path, roleID, secretID string, opts ...vault.Option) *vault.Client {
	t.Helper()
	st := vaultStore(b.Addr, func(v *v1alpha1.VaultProvider) {
		v.Auth.AppRole = &v1alpha1.VaultAppRoleAuth{Path: path, RoleRef: &v1alpha1.SecretKeySelector{Name: "approle", Key: "role-id"},
			SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}
	})
	return newClient(t, vault.New(opts...), st, secretsKube{"team-a/approle/role-id": roleID, "team-a/approle/secret-id": secretID})
}

func TestAuthMethods(t *testing.T) {
	b := testenv.StartOpenBao(t)
	seed(t, b)
	k := testenv.StartKube(t)
	kube := provider.KubeClient{Reader: k.Client, Writer: k.Client}
	ns := k.Namespace(t, nil)
	for _, name := range []string{"app", "vault-reviewer"} {
		if err := k.Client.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Client.Create(t.Context(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer-" + ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "vault-reviewer", Namespace: ns}},
	}); err != nil {
		t.Fatal(err)
	}
	store := func(mutate func(*v1alpha1.VaultProvider)) *v1alpha1.SecretStore {
		st := vaultStore(b.Addr, mutate)
		st.Namespace = ns
		return st
	}

	t.Run("token", func(t *testing.T) {
		c := tokenClient(t, b, func(*v1alpha1.VaultProvider) {})
		checkReads(t, c)
		if c.Logins() != 0 {
			t.Fatalf("a Secret token counted %d logins", c.Logins())
		}
	})

	t.Run("approle with inline roleId and a custom mount", func(t *testing.T) {
		rid, sid := appRole(t, b, "ar-custom", nil)
		st := store(func(v *v1alpha1.VaultProvider) {
			v.Auth.AppRole = &v1alpha1.VaultAppRoleAuth{Path: "ar-custom", RoleID: rid, SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}
		})
		c := newClient(t, vault.New(), st, secretsKube{ns + "/approle/secret-id": sid})
		checkReads(t, c)
		if c.Logins() != 1 {
			t.Fatalf("logins = %d, want 1", c.Logins())
		}
	})

	t.Run("approle with a wrong secret id is ErrAuth", func(t *testing.T) {
		rid, _ := appRole(t, b, "approle", nil)
		c := appRoleClient(t, b, "approle", rid, "00000000-0000-0000-0000-000000000000")
		_, err := c.GetSecret(t.Context(), provider.Ref{Key: "app/db"})
		if !errors.Is(err, provider.ErrAuth) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
		if strings.Contains(provider.SafeMessage(err), "00000000") {
			t.Fatalf("message leaks the secret id: %q", provider.SafeMessage(err))
		}
	})

	t.Run("kubernetes with a real TokenReview", func(t *testing.T) {
		// The reviewer token is OpenBao's own credential for TokenReview, which needs
		// the API server's audience: the test (as an admin) asks for it directly, since
		// provider.KubeClient refuses that audience to stores.
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{}}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer", Namespace: ns}}
		if err := k.Client.SubResource("token").Create(t.Context(), sa, tr); err != nil {
			t.Fatal(err)
		}
		reviewer := tr.Status.Token
		enableAuth(t, b, "kubernetes", "kubernetes")
		write(t, b, "auth/kubernetes/config", map[string]any{
			"kubernetes_host":      apiServerURL(k.Config),
			"kubernetes_ca_cert":   string(k.Config.CAData),
			"token_reviewer_jwt":   reviewer,
			"disable_local_ca_jwt": true,
		})
		write(t, b, "auth/kubernetes/role/app", map[string]any{
			"bound_service_account_names": "app", "bound_service_account_namespaces": ns,
			"audience": "vault", "token_policies": "read", "token_ttl": "1h",
		})
		c := newClient(t, vault.New(), store(func(v *v1alpha1.VaultProvider) {
			v.Auth.Kubernetes = &v1alpha1.VaultKubernetesAuth{Role: "app", ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app"}}
		}), kube)
		checkReads(t, c)
		if c.Logins() != 1 {
			t.Fatalf("logins = %d, want 1", c.Logins())
		}

		// A ServiceAccount the role does not bind is refused by OpenBao after the review.
		if err := k.Client.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: ns}}); err != nil {
			t.Fatal(err)
		}
		other := newClient(t, vault.New(), store(func(v *v1alpha1.VaultProvider) {
			v.Auth.Kubernetes = &v1alpha1.VaultKubernetesAuth{Role: "app", ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "other"}}
		}), kube)
		if _, err := other.GetSecret(t.Context(), provider.Ref{Key: "app/db"}); !errors.Is(err, provider.ErrAuth) {
			t.Fatalf("unbound service account: err = %v, want ErrAuth", err)
		}
	})

	t.Run("jwt", func(t *testing.T) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		enableAuth(t, b, "jwt", "jwt")
		write(t, b, "auth/jwt/config", map[string]any{
			"jwt_validation_pubkeys": []string{publicPEM(t, &key.PublicKey), apiServerSigningKey(t, k.Config)},
		})
		write(t, b, "auth/jwt/role/app", map[string]any{
			"role_type": "jwt", "bound_audiences": "vault", "user_claim": "sub", "token_policies": "read", "token_ttl": "1h",
		})

		t.Run("from a Secret", func(t *testing.T) {
			jwt := signJWT(t, key, map[string]any{"sub": "ci", "aud": "vault", "iss": "secretsync-test",
				"iat": time.Now().Unix(), "nbf": time.Now().Add(-time.Minute).Unix(), "exp": time.Now().Add(time.Hour).Unix()})
			st := store(func(v *v1alpha1.VaultProvider) {
				v.Auth.JWT = &v1alpha1.VaultJWTAuth{Role: "app", SecretRef: &v1alpha1.SecretKeySelector{Name: "jwt", Key: "token"}}
			})
			c := newClient(t, vault.New(), st, secretsKube{ns + "/jwt/token": jwt})
			checkReads(t, c)
			if c.Logins() != 1 {
				t.Fatalf("logins = %d, want 1", c.Logins())
			}
		})
		t.Run("from a ServiceAccount token", func(t *testing.T) {
			c := newClient(t, vault.New(), store(func(v *v1alpha1.VaultProvider) {
				v.Auth.JWT = &v1alpha1.VaultJWTAuth{Role: "app", KubernetesServiceAccountToken: &v1alpha1.VaultServiceAccountToken{
					ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app", Audiences: []string{"vault"}}}}
			}), kube)
			checkReads(t, c)
		})
		t.Run("a token signed by another key is ErrAuth", func(t *testing.T) {
			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			jwt := signJWT(t, other, map[string]any{"sub": "ci", "aud": "vault", "exp": time.Now().Add(time.Hour).Unix()})
			st := store(func(v *v1alpha1.VaultProvider) {
				v.Auth.JWT = &v1alpha1.VaultJWTAuth{Role: "app", SecretRef: &v1alpha1.SecretKeySelector{Name: "jwt", Key: "token"}}
			})
			c := newClient(t, vault.New(), st, secretsKube{ns + "/jwt/token": jwt})
			if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "app/db"}); !errors.Is(err, provider.ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
		})
	})
}

func apiServerURL(cfg *rest.Config) string {
	if strings.HasPrefix(cfg.Host, "https://") || strings.HasPrefix(cfg.Host, "http://") {
		return strings.TrimSuffix(cfg.Host, "/")
	}
	return "https://" + cfg.Host
}

// apiServerSigningKey fetches the API server's ServiceAccount token signing key from
// its JWKS document and returns it as PEM, for OpenBao's jwt_validation_pubkeys.
func apiServerSigningKey(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, apiServerURL(cfg)+"/openid/v1/jwks", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jwks struct {
		Keys []struct {
			Kty, N, E, Crv, X, Y string
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil || len(jwks.Keys) == 0 {
		t.Fatalf("jwks: %v (%d keys, status %d)", err, len(jwks.Keys), resp.StatusCode)
	}
	k := jwks.Keys[0]
	num := func(s string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("jwks: %v", err)
		}
		return new(big.Int).SetBytes(b)
	}
	switch k.Kty {
	case "RSA":
		return publicPEM(t, &rsa.PublicKey{N: num(k.N), E: int(num(k.E).Int64())})
	case "EC":
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		if curves[k.Crv] == nil {
			t.Fatalf("jwks: curve %s", k.Crv)
		}
		return publicPEM(t, &ecdsa.PublicKey{Curve: curves[k.Crv], X: num(k.X), Y: num(k.Y)}) //nolint:staticcheck // SA1019: a JWK gives the raw coordinates; the key is only marshalled to PEM
	}
	t.Fatalf("jwks: key type %s", k.Kty)
	return ""
}

func publicPEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// signJWT makes an ES256 JWT.
func signJWT(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT"})
	body, _ := json.Marshal(claims)
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

func TestTokenReuseRenewalReloginAndClose(t *testing.T) {
	b := testenv.StartOpenBao(t)
	b.EnableAudit(t)
	seed(t, b)
	// A short, renewable TTL so renewal happens within the test.
	rid, sid := appRole(t, b, "approle", map[string]any{"token_ttl": "6s", "token_max_ttl": "10m"})
	var hookLogins sync.Map
	c := appRoleClient(t, b, "approle", rid, sid, vault.WithLoginHook(func(m string) { hookLogins.Store(m, true) }))

	t.Run("many reads from many goroutines log in once", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 10 {
					if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "app/db"}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if c.Logins() != 1 || b.AuditCount(t, "auth/approle/login") != 1 {
			t.Fatalf("logins = %d (audit: %d), want 1", c.Logins(), b.AuditCount(t, "auth/approle/login"))
		}
		if _, ok := hookLogins.Load("approle"); !ok {
			t.Fatal("login hook not called with the method name")
		}
	})

	t.Run("the token is renewed before it expires", func(t *testing.T) {
		time.Sleep(9 * time.Second) // past the 6s TTL: only renewal keeps the token alive
		if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "app/db"}); err != nil {
			t.Fatal(err)
		}
		if c.Logins() != 1 {
			t.Fatalf("logins = %d, want 1 (the token should have been renewed)", c.Logins())
		}
		if n := b.AuditCount(t, "auth/token/renew-self"); n < 1 {
			t.Fatalf("renew-self calls = %d, want at least 1", n)
		}
	})

	t.Run("a revoked token is replaced by exactly one new login", func(t *testing.T) {
		// Revoke every token issued by this AppRole mount behind the client's back.
		write(t, b, "sys/leases/revoke-prefix/auth/approle/login", nil)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "app/db"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if c.Logins() != 2 {
			t.Fatalf("logins = %d after revocation, want 2", c.Logins())
		}
	})

	t.Run("a policy denial does not log in again", func(t *testing.T) {
		_, _, err := c.Issue(t.Context(), provider.DynamicRequest{Path: "sys/mounts"})
		if !errors.Is(err, provider.ErrAccessDenied) {
			t.Fatalf("err = %v, want ErrAccessDenied", err)
		}
		if c.Logins() != 2 {
			t.Fatalf("logins = %d, want 2", c.Logins())
		}
	})

	t.Run("close revokes the token it logged in for", func(t *testing.T) {
		before := accessors(t, b)
		if err := c.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if after := accessors(t, b); after != before-1 {
			t.Fatalf("token accessors %d -> %d, want one fewer", before, after)
		}
	})
}

func accessors(t *testing.T, b *testenv.OpenBao) int {
	t.Helper()
	s, err := b.Client.Logical().ListWithContext(t.Context(), "auth/token/accessors")
	if err != nil || s == nil {
		t.Fatalf("list accessors: %v", err)
	}
	return len(s.Data["keys"].([]any))
}

func TestDynamicPostgresCredentials(t *testing.T) {
	b := testenv.StartOpenBao(t)
	seed(t, b)
	pg := testenv.StartPostgres(t)
	if err := b.Client.Sys().MountWithContext(t.Context(), "database", &api.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	write(t, b, "database/config/pg", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": pg.VaultConnectionURL(),
		"username":       pg.AdminUser,
		"password":       pg.AdminPassword,
		"allowed_roles":  "readonly",
	})
	write(t, b, "database/roles/readonly", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "2m",
		"max_ttl":             "1h",
	})
	rid, sid := appRole(t, b, "approle", nil)
	c := appRoleClient(t, b, "approle", rid, sid)
	ctx := t.Context()

	data, lease, err := c.Issue(ctx, provider.DynamicRequest{Path: "database/creds/readonly"})
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	user, pw := string(data["username"]), string(data["password"])
	if user == "" || pw == "" || lease.ID == "" || lease.TTL != 2*time.Minute || !lease.Renewable {
		t.Fatalf("Issue: user %q, lease %+v", user, lease)
	}
	conn, err := pgx.Connect(ctx, pg.DSNFor(user, pw))
	if err != nil {
		t.Fatalf("the issued login does not work: %v", err)
	}
	var who string
	if err := conn.QueryRow(ctx, "select current_user").Scan(&who); err != nil || who != user {
		t.Fatalf("current_user = %q, %v", who, err)
	}
	conn.Close(ctx)

	before := leaseExpiry(t, b, lease.ID)
	time.Sleep(1100 * time.Millisecond) // expire_time has second resolution
	renewed, err := c.Renew(ctx, lease.ID, 10*time.Minute)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if renewed.ID != lease.ID || renewed.TTL != 10*time.Minute {
		t.Fatalf("Renew = %+v", renewed)
	}
	if after := leaseExpiry(t, b, lease.ID); !after.After(before.Add(5 * time.Minute)) {
		t.Fatalf("expiry %v -> %v: not moved by the renewal", before, after)
	}

	if err := c.Revoke(ctx, lease.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	admin, err := pgx.Connect(ctx, pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, "select count(*) from pg_roles where rolname = $1", user).Scan(&n); err != nil || n != 0 {
		t.Fatalf("role %q still in PostgreSQL after revoke (count %d, %v)", user, n, err)
	}
	if _, err := c.Renew(ctx, lease.ID, time.Minute); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("Renew of a revoked lease: err = %v, want ErrNotFound", err)
	}
}

func leaseExpiry(t *testing.T, b *testenv.OpenBao, id string) time.Time {
	t.Helper()
	s := write(t, b, "sys/leases/lookup", map[string]any{"lease_id": id})
	exp, err := time.Parse(time.RFC3339, s.Data["expire_time"].(string))
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

func TestTransitDecrypt(t *testing.T) {
	b := testenv.StartOpenBao(t)
	seed(t, b)
	if err := b.Client.Sys().MountWithContext(t.Context(), "transit", &api.MountInput{Type: "transit"}); err != nil {
		t.Fatal(err)
	}
	write(t, b, "transit/keys/app", nil)
	write(t, b, "transit/keys/other", nil)
	const plaintext = "api-key-7f3c9"
	ct := write(t, b, "transit/encrypt/app", map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(plaintext))}).Data["ciphertext"].(string)
	rid, sid := appRole(t, b, "approle", nil)
	c := appRoleClient(t, b, "approle", rid, sid)

	got, err := c.Decrypt(t.Context(), "", "app", ct)
	if err != nil || string(got) != plaintext {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
	for name, key := range map[string]string{"wrong key": "other", "missing key": "nope"} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Decrypt(t.Context(), "transit", key, ct)
			if err == nil {
				t.Fatal("Decrypt with the wrong key succeeded")
			}
			for _, msg := range []string{err.Error(), provider.SafeMessage(err)} {
				if strings.Contains(msg, ct) || strings.Contains(msg, strings.SplitN(ct, ":", 3)[2]) || strings.Contains(msg, plaintext) {
					t.Fatalf("message leaks a value: %q", msg)
				}
			}
			if !strings.Contains(provider.SafeMessage(err), strconv.Quote(key)) {
				t.Fatalf("message does not name the key: %q", provider.SafeMessage(err))
			}
		})
	}
	t.Run("bad ciphertext", func(t *testing.T) {
		_, err := c.Decrypt(t.Context(), "transit", "app", "vault:v1:bm90LWEtY2lwaGVydGV4dA==")
		if !errors.Is(err, provider.ErrInvalid) || strings.Contains(provider.SafeMessage(err), "bm90") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestNamespace(t *testing.T) {
	b := testenv.StartOpenBao(t)
	write(t, b, "sys/namespaces/team", nil)
	nsClient := b.Client.WithNamespace("team")
	if err := nsClient.Sys().MountWithContext(t.Context(), "kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := nsClient.KVv2("kv").Put(t.Context(), "app", map[string]any{"in": "team"}); err != nil {
		t.Fatal(err)
	}
	c := tokenClient(t, b, func(v *v1alpha1.VaultProvider) { v.Namespace, v.Path = "team", "kv" })
	got, err := c.GetSecret(t.Context(), provider.Ref{Key: "app"})
	if err != nil || string(got.Value) != `{"in":"team"}` {
		t.Fatalf("GetSecret in namespace = %s, %v", got.Value, err)
	}
	root := tokenClient(t, b, func(v *v1alpha1.VaultProvider) { v.Path = "kv" })
	if _, err := root.GetSecret(t.Context(), provider.Ref{Key: "app"}); err == nil {
		t.Fatal("the secret is visible outside its namespace: X-Vault-Namespace was not what separated them")
	}
}

func TestUnavailable(t *testing.T) {
	b := testenv.StartOpenBao(t)
	seed(t, b)
	rid, sid := appRole(t, b, "approle", nil)
	c := appRoleClient(t, b, "approle", rid, sid)
	checkReads(t, c)

	b.Seal(t)
	_, err := c.GetSecret(t.Context(), provider.Ref{Key: "app/db"})
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("sealed: err = %v, want ErrUnavailable", err)
	}
	if err := c.Check(t.Context()); !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("sealed Check: err = %v, want ErrUnavailable", err)
	}
	b.Unseal(t)
	checkReads(t, c)
	if c.Logins() != 1 {
		t.Fatalf("logins = %d after an outage, want 1 (the token survives a seal)", c.Logins())
	}

	b.Stop(t)
	// A refused connection is retried (it may be a failover) until the call's
	// deadline: a short one keeps this test fast and shows the bound holds.
	const timeout = 2 * time.Second
	c = appRoleClient(t, b, "approle", rid, sid, vault.WithTimeout(timeout))
	start := time.Now()
	_, err = c.GetSecret(t.Context(), provider.Ref{Key: "app/db"})
	if !errors.Is(err, provider.ErrUnavailable) || strings.Contains(provider.SafeMessage(err), "127.0.0.1") {
		t.Fatalf("stopped: err = %v (%q), want ErrUnavailable without the raw cause", err, provider.SafeMessage(err))
	}
	if d := time.Since(start); d > timeout+time.Second {
		t.Fatalf("a call against a stopped server took %s, beyond its %s deadline", d, timeout)
	}
	fresh := appRoleClient(t, b, "approle", rid, sid, vault.WithTimeout(timeout))
	if err := fresh.Check(t.Context()); !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("login against a stopped server: err = %v, want ErrUnavailable", err)
	}
}

func TestTLS(t *testing.T) {
	b := testenv.StartOpenBao(t, testenv.OpenBaoTLS())
	seed(t, b)
	caB64 := base64.StdEncoding.EncodeToString(b.CACert)
	tokenStore := func(mutate func(*v1alpha1.VaultProvider)) *v1alpha1.SecretStore {
		return vaultStore(b.Addr, func(v *v1alpha1.VaultProvider) {
			v.Auth.TokenSecretRef = &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}
			mutate(v)
		})
	}
	kube := secretsKube{"team-a/vault-token/token": b.RootToken, "team-a/vault-ca/ca.crt": string(b.CACert),
		"configmap:team-a/vault-ca/ca.crt": string(b.CACert)}

	t.Run("caBundle", func(t *testing.T) {
		c := newClient(t, vault.New(), tokenStore(func(v *v1alpha1.VaultProvider) { v.CABundle = caB64 }), kube)
		checkReads(t, c)
	})
	t.Run("caProvider Secret", func(t *testing.T) {
		c := newClient(t, vault.New(), tokenStore(func(v *v1alpha1.VaultProvider) {
			v.CAProvider = &v1alpha1.CAProvider{Type: "Secret", Name: "vault-ca", Key: "ca.crt"}
		}), kube)
		checkReads(t, c)
	})
	t.Run("caProvider Secret missing is ErrCredentials", func(t *testing.T) {
		_, err := vault.New().NewClient(t.Context(), tokenStore(func(v *v1alpha1.VaultProvider) {
			v.CAProvider = &v1alpha1.CAProvider{Type: "Secret", Name: "nope", Key: "ca.crt"}
		}), kube, "team-a")
		if !errors.Is(err, provider.ErrCredentials) {
			t.Fatalf("err = %v, want ErrCredentials", err)
		}
	})
	t.Run("caProvider ConfigMap", func(t *testing.T) {
		c := newClient(t, vault.New(), tokenStore(func(v *v1alpha1.VaultProvider) {
			v.CAProvider = &v1alpha1.CAProvider{Type: "ConfigMap", Name: "vault-ca", Key: "ca.crt"}
		}), kube)
		checkReads(t, c)
	})
	t.Run("caProvider ConfigMap without the key names the field", func(t *testing.T) {
		_, err := vault.New().NewClient(t.Context(), tokenStore(func(v *v1alpha1.VaultProvider) {
			v.CAProvider = &v1alpha1.CAProvider{Type: "ConfigMap", Name: "vault-ca", Key: "tls.crt"}
		}), kube, "team-a")
		if !errors.Is(err, provider.ErrCredentials) || !strings.Contains(provider.SafeMessage(err), `spec.provider.vault.caProvider: configmap team-a/vault-ca has no key "tls.crt"`) {
			t.Fatalf("err = %v, want ErrCredentials naming spec.provider.vault.caProvider", err)
		}
	})
	t.Run("an untrusted server certificate is refused", func(t *testing.T) {
		c := newClient(t, vault.New(), tokenStore(func(*v1alpha1.VaultProvider) {}), kube)
		if err := c.Check(t.Context()); !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
}
