package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// fakeAPI is a scripted Vault: handle answers every call.
type fakeAPI struct {
	mu     sync.Mutex
	calls  []string
	handle func(method, token, path string, query url.Values, body map[string]any) (*api.Secret, error)
}

func (f *fakeAPI) do(method, token, path string, q url.Values, body map[string]any) (*api.Secret, error) {
	f.mu.Lock()
	f.calls = append(f.calls, method+" "+path)
	f.mu.Unlock()
	return f.handle(method, token, path, q, body)
}
func (f *fakeAPI) Read(_ context.Context, token, path string, q url.Values) (*api.Secret, error) {
	return f.do("GET", token, path, q, nil)
}
func (f *fakeAPI) List(_ context.Context, token, path string) (*api.Secret, error) {
	return f.do("LIST", token, path, nil, nil)
}
func (f *fakeAPI) Write(_ context.Context, token, path string, body map[string]any) (*api.Secret, error) {
	return f.do("PUT", token, path, nil, body)
}
func (f *fakeAPI) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

func respErr(code int, msgs ...string) error {
	return &api.ResponseError{StatusCode: code, Errors: msgs, HTTPMethod: "GET", URL: "http://127.0.0.1/v1/x"}
}

func store(v *v1alpha1.VaultProvider) *v1alpha1.SecretStore {
	return &v1alpha1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"},
		Spec:       v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: v}},
	}
}

func appRoleSpec() *v1alpha1.VaultProvider {
	return &v1alpha1.VaultProvider{Server: "http://127.0.0.1:8200", Auth: v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{
		RoleID: "r", SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"},
	}}}
}

// loginCounter is an authenticator that hands out tok-1, tok-2, ...
type loginCounter struct {
	n         atomic.Int64
	ttl       time.Duration
	renewable bool
}

func (l *loginCounter) method() string { return "test" }
func (l *loginCounter) login(context.Context, vaultAPI) (tokenInfo, error) {
	n := l.n.Add(1)
	return tokenInfo{token: "tok-" + strconv.FormatInt(n, 10), ttl: l.ttl, renewable: l.renewable, owned: true}, nil
}

// kvMount is the mount probe's answer for a KV mount of version v.
func kvMount(v string) *api.Secret {
	return &api.Secret{Data: map[string]any{"type": "kv", "path": "secret/", "options": map[string]any{"version": v}}}
}

func kvData(version int, data map[string]any) *api.Secret {
	return &api.Secret{Data: map[string]any{"data": data, "metadata": map[string]any{"version": json.Number(strconv.Itoa(version))}}}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want error
		code string
	}{
		{"404", respErr(404), provider.ErrNotFound, "404"},
		{"403", respErr(403, "permission denied"), provider.ErrAccessDenied, "403"},
		{"401", respErr(401), provider.ErrAuth, "401"},
		{"429", respErr(429), provider.ErrThrottled, "429"},
		{"503 sealed", respErr(503, "Vault is sealed"), provider.ErrUnavailable, "503"},
		{"500", respErr(500), provider.ErrUnavailable, "500"},
		{"400", respErr(400, "bad"), provider.ErrInvalid, "400"},
		{"connection refused", &url.Error{Op: "Get", URL: "http://127.0.0.1:1", Err: errors.New("connect: connection refused")}, provider.ErrUnavailable, "connection"},
		{"deadline", context.DeadlineExceeded, provider.ErrUnavailable, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(tc.err)
			if !errors.Is(got, tc.want) {
				t.Fatalf("classify = %v, want %v", got, tc.want)
			}
			var pe *provider.Error
			if !errors.As(got, &pe) || pe.Code != tc.code {
				t.Fatalf("code = %v, want %q", got, tc.code)
			}
			if msg := provider.SafeMessage(got); strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "sealed") || strings.Contains(msg, "permission") {
				t.Fatalf("SafeMessage leaks the raw error: %q", msg)
			}
		})
	}
}

func TestGetSecretKVv2(t *testing.T) {
	f := &fakeAPI{handle: func(_, _, path string, q url.Values, _ map[string]any) (*api.Secret, error) {
		switch {
		case path == "secret/data/app" && q.Get("version") == "":
			return kvData(3, map[string]any{"user": "u", "port": json.Number("5432"), "html": "<&>"}), nil
		case path == "secret/data/app" && q.Get("version") == "2":
			// a deleted version: metadata, null data
			return &api.Secret{Data: map[string]any{"data": nil, "metadata": map[string]any{"version": json.Number("2"), "deletion_time": "2026-01-01T00:00:00Z"}}}, nil
		case path == "sys/internal/ui/mounts/secret":
			return kvMount("2"), nil
		case path == "secret/data/app" && q.Get("version") == "1":
			return kvData(1, map[string]any{"user": "old"}), nil
		}
		return nil, respErr(404)
	}}
	c := newClient(f, staticToken{token: "t"}, appRoleSpec(), clocktesting.NewFakeClock(time.Now()), nil)
	ctx := t.Context()

	got, err := c.GetSecret(ctx, provider.Ref{Key: "/app"})
	if err != nil || got.Version != "3" || string(got.Value) != `{"html":"<&>","port":5432,"user":"u"}` {
		t.Fatalf("latest = %s@%s, %v", got.Value, got.Version, err)
	}
	got, err = c.GetSecret(ctx, provider.Ref{Key: "app", Version: "1"})
	if err != nil || got.Version != "1" || string(got.Value) != `{"user":"old"}` {
		t.Fatalf("v1 = %s@%s, %v", got.Value, got.Version, err)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "app", Version: "2"}); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("deleted version: err = %v, want ErrNotFound", err)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "missing"}); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("missing: err = %v, want ErrNotFound", err)
	}
	_, err = c.GetSecret(ctx, provider.Ref{Key: "app", Version: "latest"})
	if !errors.Is(err, provider.ErrInvalid) || !strings.Contains(provider.SafeMessage(err), `version "latest"`) {
		t.Fatalf("bad version: err = %q, want ErrInvalid naming the version", provider.SafeMessage(err))
	}
}

func TestTokenReuseAndRelogin(t *testing.T) {
	var revoked atomic.Value
	revoked.Store("")
	f := &fakeAPI{handle: func(_, token, path string, _ url.Values, _ map[string]any) (*api.Secret, error) {
		if token == revoked.Load().(string) {
			return nil, respErr(403, "permission denied")
		}
		switch path {
		case "secret/data/app":
			return kvData(1, map[string]any{"a": "b"}), nil
		case "secret/data/forbidden":
			return nil, respErr(403, "permission denied")
		case "auth/token/lookup-self", "auth/token/revoke-self":
			return &api.Secret{}, nil
		}
		return nil, respErr(404)
	}}
	auth := &loginCounter{}
	c := newClient(f, auth, appRoleSpec(), clocktesting.NewFakeClock(time.Now()), nil)
	ctx := t.Context()

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := c.GetSecret(ctx, provider.Ref{Key: "app"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c.Logins() != 1 {
		t.Fatalf("logins = %d after 50 concurrent reads, want 1", c.Logins())
	}

	// A policy denial with a valid token: no new login, ErrAccessDenied.
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "forbidden"}); !errors.Is(err, provider.ErrAccessDenied) {
		t.Fatalf("forbidden: err = %v, want ErrAccessDenied", err)
	}
	if c.Logins() != 1 {
		t.Fatalf("a policy denial logged in again (logins = %d)", c.Logins())
	}

	// The token is revoked behind our back: exactly one new login, then success.
	revoked.Store("tok-1")
	for range 5 {
		if _, err := c.GetSecret(ctx, provider.Ref{Key: "app"}); err != nil {
			t.Fatalf("after revocation: %v", err)
		}
	}
	if c.Logins() != 2 {
		t.Fatalf("logins = %d after revocation, want 2", c.Logins())
	}

	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if f.count("PUT auth/token/revoke-self") != 1 {
		t.Fatalf("Close did not revoke the token it logged in for: %v", f.calls)
	}
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "app"}); err == nil {
		t.Fatal("GetSecret after Close succeeded")
	}
}

func TestStaticTokenNotRevokedAndNoRetryLoop(t *testing.T) {
	f := &fakeAPI{handle: func(_, _, path string, _ url.Values, _ map[string]any) (*api.Secret, error) {
		return nil, respErr(403, "permission denied") // the user's token was revoked
	}}
	c := newClient(f, staticToken{token: "user"}, appRoleSpec(), clocktesting.NewFakeClock(time.Now()), nil)
	_, err := c.GetSecret(t.Context(), provider.Ref{Key: "app"})
	if !errors.Is(err, provider.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if c.Logins() != 0 {
		t.Fatalf("a Secret token counted as a login")
	}
	if err := c.Close(t.Context()); err != nil || f.count("PUT auth/token/revoke-self") != 0 {
		t.Fatalf("Close revoked the user's token (err %v, calls %v)", err, f.calls)
	}
}

func TestRenewal(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	renewed := make(chan struct{}, 10)
	f := &fakeAPI{handle: func(_, token, path string, _ url.Values, body map[string]any) (*api.Secret, error) {
		switch path {
		case "auth/token/renew-self":
			renewed <- struct{}{}
			return &api.Secret{Auth: &api.SecretAuth{ClientToken: token, LeaseDuration: 60, Renewable: true}}, nil
		case "secret/data/app":
			return kvData(1, map[string]any{"a": "b"}), nil
		}
		return &api.Secret{}, nil
	}}
	auth := &loginCounter{ttl: time.Minute, renewable: true}
	c := newClient(f, auth, appRoleSpec(), clk, nil)
	defer c.Close(context.Background())
	if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "app"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// Step past two thirds of the TTL once the renewer waits on the clock.
		waitFor(t, clk.HasWaiters)
		clk.Step(41 * time.Second)
		select {
		case <-renewed:
		case <-time.After(5 * time.Second):
			t.Fatalf("renewal %d did not happen", i+1)
		}
	}
	if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "app"}); err != nil {
		t.Fatal(err)
	}
	if c.Logins() != 1 {
		t.Fatalf("logins = %d after 2 minutes with renewals, want 1", c.Logins())
	}
}

func TestNonRenewableTokenReloginsNearExpiry(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	f := &fakeAPI{handle: func(_, _, _ string, _ url.Values, _ map[string]any) (*api.Secret, error) {
		return kvData(1, map[string]any{"a": "b"}), nil
	}}
	auth := &loginCounter{ttl: time.Minute}
	c := newClient(f, auth, appRoleSpec(), clk, nil)
	ctx := t.Context()
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "app"}); err != nil {
		t.Fatal(err)
	}
	clk.Step(30 * time.Second)
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "app"}); err != nil || c.Logins() != 1 {
		t.Fatalf("half-way: logins %d, %v", c.Logins(), err)
	}
	clk.Step(25 * time.Second) // inside the last tenth of the TTL
	if _, err := c.GetSecret(ctx, provider.Ref{Key: "app"}); err != nil || c.Logins() != 2 {
		t.Fatalf("near expiry: logins %d, %v", c.Logins(), err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFind(t *testing.T) {
	tree := map[string][]any{
		"secret/metadata/app/":     {"db-user", "db-pass", "sub/", "api"},
		"secret/metadata/app/sub/": {"db-deep"},
	}
	tags := map[string]string{"app/db-user": "a", "app/db-pass": "b", "app/sub/db-deep": "a", "app/api": "a"}
	f := &fakeAPI{handle: func(method, _, path string, _ url.Values, _ map[string]any) (*api.Secret, error) {
		if method == "LIST" {
			if keys, ok := tree[path]; ok {
				return &api.Secret{Data: map[string]any{"keys": keys}}, nil
			}
			return nil, nil
		}
		if k, ok := strings.CutPrefix(path, "secret/metadata/"); ok {
			return &api.Secret{Data: map[string]any{"custom_metadata": map[string]any{"team": tags[k]}}}, nil
		}
		if k, ok := strings.CutPrefix(path, "secret/data/"); ok {
			return kvData(1, map[string]any{"k": k}), nil
		}
		return nil, respErr(404)
	}}
	c := newClient(f, staticToken{token: "t"}, appRoleSpec(), clocktesting.NewFakeClock(time.Now()), nil)
	got, err := c.Find(t.Context(), provider.FindQuery{Path: "/app/", NameRegexp: "db-", Tags: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got["db-user"].Value) != `{"k":"app/db-user"}` || got["sub/db-deep"].Version != "1" {
		t.Fatalf("Find = %v", got)
	}
	if _, err := c.Find(t.Context(), provider.FindQuery{Path: "app", NameRegexp: "("}); !errors.Is(err, provider.ErrInvalid) {
		t.Fatalf("bad regexp: %v", err)
	}
	all, err := c.Find(t.Context(), provider.FindQuery{Path: "app"})
	if err != nil || len(all) != 4 {
		t.Fatalf("Find(all) = %d keys, %v", len(all), err)
	}
}

func TestDecryptErrorsCarryNoValues(t *testing.T) {
	const ct = "vault:v1:c2VjcmV0LWNpcGhlcnRleHQ="
	f := &fakeAPI{handle: func(_, _, path string, _ url.Values, body map[string]any) (*api.Secret, error) {
		switch path {
		case "auth/token/lookup-self":
			return &api.Secret{Data: map[string]any{}}, nil
		case "transit/decrypt/good":
			return &api.Secret{Data: map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte("s3cret"))}}, nil
		}
		// Vault quotes what it got in some errors.
		return nil, respErr(400, "invalid ciphertext "+body["ciphertext"].(string)+" plaintext s3cret")
	}}
	c := newClient(f, staticToken{token: "t"}, appRoleSpec(), clocktesting.NewFakeClock(time.Now()), nil)
	pt, err := c.Decrypt(t.Context(), "", "good", ct)
	if err != nil || string(pt) != "s3cret" {
		t.Fatalf("Decrypt = %q, %v", pt, err)
	}
	_, err = c.Decrypt(t.Context(), "transit", "wrong", ct)
	if !errors.Is(err, provider.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	for _, msg := range []string{err.Error(), provider.SafeMessage(err)} {
		if strings.Contains(msg, "c2VjcmV0") || strings.Contains(msg, "s3cret") || strings.Contains(msg, "vault:v1") {
			t.Fatalf("error message leaks a value: %q", msg)
		}
		if !strings.Contains(msg, `"wrong"`) {
			t.Fatalf("error message does not name the key: %q", msg)
		}
	}
}

func TestLeases(t *testing.T) {
	f := &fakeAPI{handle: func(method, _, path string, _ url.Values, body map[string]any) (*api.Secret, error) {
		switch path {
		case "database/creds/ro":
			return &api.Secret{LeaseID: "database/creds/ro/abc", LeaseDuration: 3600, Renewable: true,
				Data: map[string]any{"username": "u", "password": "p", "n": json.Number("1")}}, nil
		case "sys/leases/renew":
			if body["lease_id"] == "gone" {
				return nil, respErr(400, "lease not found")
			}
			return &api.Secret{LeaseID: body["lease_id"].(string), LeaseDuration: 7200, Renewable: true}, nil
		case "sys/leases/revoke":
			return nil, nil
		}
		return nil, respErr(404)
	}}
	c := newClient(f, staticToken{token: "t"}, appRoleSpec(), clocktesting.NewFakeClock(time.Now()), nil)
	ctx := t.Context()
	data, lease, err := c.Issue(ctx, provider.DynamicRequest{Path: "database/creds/ro"})
	if err != nil || string(data["username"]) != "u" || string(data["n"]) != "1" || lease.ID != "database/creds/ro/abc" || lease.TTL != time.Hour || !lease.Renewable {
		t.Fatalf("Issue = %q %+v %v", data, lease, err)
	}
	l, err := c.Renew(ctx, lease.ID, time.Hour)
	if err != nil || l.TTL != 2*time.Hour {
		t.Fatalf("Renew = %+v, %v", l, err)
	}
	if _, err := c.Renew(ctx, "gone", time.Hour); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("Renew(gone) = %v, want ErrNotFound", err)
	}
	if err := c.Revoke(ctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Issue(ctx, provider.DynamicRequest{Path: "x", Method: "DELETE"}); !errors.Is(err, provider.ErrInvalid) {
		t.Fatalf("bad method: %v", err)
	}
}

type fakeKube struct {
	secrets map[string]string // ns/name/key -> value
	saCalls atomic.Int64
	lastSA  string
	mu      sync.Mutex
}

func (k *fakeKube) SecretKey(_ context.Context, ns, name, key string) ([]byte, error) {
	v, ok := k.secrets[ns+"/"+name+"/"+key]
	if !ok {
		return nil, provider.ErrCredentials
	}
	return []byte(v), nil
}
func (k *fakeKube) ServiceAccountToken(_ context.Context, ns, name string, aud []string, _ time.Duration) (string, error) {
	k.saCalls.Add(1)
	k.mu.Lock()
	k.lastSA = ns + "/" + name + "@" + strings.Join(aud, ",")
	k.mu.Unlock()
	return "sa-jwt", nil
}

func TestAuthenticators(t *testing.T) {
	kube := &fakeKube{secrets: map[string]string{"ns/approle/secret-id": "sid\n", "ns/role/id": "rid", "ns/jwt/token": "a.b.c"}}
	login := func(t *testing.T, a v1alpha1.VaultAuth, consumer string) (string, map[string]any) {
		t.Helper()
		spec := appRoleSpec()
		spec.Auth = a
		auth, err := newAuthenticator(t.Context(), store(spec), kube, consumer)
		if err != nil {
			t.Fatal(err)
		}
		var gotPath string
		var gotBody map[string]any
		f := &fakeAPI{handle: func(_, _, path string, _ url.Values, body map[string]any) (*api.Secret, error) {
			gotPath, gotBody = path, body
			return &api.Secret{Auth: &api.SecretAuth{ClientToken: "x", LeaseDuration: 60, Renewable: true}}, nil
		}}
		info, err := auth.login(t.Context(), f)
		if err != nil || info.token != "x" || info.ttl != time.Minute || !info.owned {
			t.Fatalf("login = %+v, %v", info, err)
		}
		return gotPath, gotBody
	}
	t.Run("approle with roleRef and custom path", func(t *testing.T) {
		p, b := login(t, v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{Path: "ar", RoleRef: &v1alpha1.SecretKeySelector{Name: "role", Key: "id"}, SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}, "")
		if p != "auth/ar/login" || b["role_id"] != "rid" || b["secret_id"] != "sid" {
			t.Fatalf("%s %v", p, b)
		}
	})
	t.Run("kubernetes defaults", func(t *testing.T) {
		p, b := login(t, v1alpha1.VaultAuth{Kubernetes: &v1alpha1.VaultKubernetesAuth{Role: "app", ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app"}}}, "")
		if p != "auth/kubernetes/login" || b["role"] != "app" || b["jwt"] != "sa-jwt" || kube.lastSA != "ns/app@vault" {
			t.Fatalf("%s %v %s", p, b, kube.lastSA)
		}
	})
	t.Run("jwt from secret", func(t *testing.T) {
		p, b := login(t, v1alpha1.VaultAuth{JWT: &v1alpha1.VaultJWTAuth{Role: "r", SecretRef: &v1alpha1.SecretKeySelector{Name: "jwt", Key: "token"}}}, "")
		if p != "auth/jwt/login" || b["jwt"] != "a.b.c" {
			t.Fatalf("%s %v", p, b)
		}
	})
	t.Run("jwt from service account", func(t *testing.T) {
		p, b := login(t, v1alpha1.VaultAuth{JWT: &v1alpha1.VaultJWTAuth{Path: "oidc", Role: "r", KubernetesServiceAccountToken: &v1alpha1.VaultServiceAccountToken{ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "sa", Audiences: []string{"x"}}}}}, "")
		if p != "auth/oidc/login" || b["jwt"] != "sa-jwt" || kube.lastSA != "ns/sa@x" {
			t.Fatalf("%s %v %s", p, b, kube.lastSA)
		}
	})
	t.Run("missing secret is ErrCredentials", func(t *testing.T) {
		spec := appRoleSpec()
		spec.Auth.AppRole.SecretRef.Name = "nope"
		_, err := newAuthenticator(t.Context(), store(spec), kube, "")
		if !errors.Is(err, provider.ErrCredentials) || !strings.Contains(err.Error(), "spec.provider.vault.auth.appRole.secretRef") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad credentials are ErrAuth", func(t *testing.T) {
		auth, _ := newAuthenticator(t.Context(), store(appRoleSpec()), kube, "")
		f := &fakeAPI{handle: func(string, string, string, url.Values, map[string]any) (*api.Secret, error) {
			return nil, respErr(400, "invalid secret id sid")
		}}
		_, err := auth.login(t.Context(), f)
		if !errors.Is(err, provider.ErrAuth) || strings.Contains(provider.SafeMessage(err), "sid") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestValidateStore(t *testing.T) {
	p := New()
	// A throw-away self-signed certificate is not needed: only the PEM structure and
	// x509 parse are checked, so a broken block must fail and garbage must fail.
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.VaultProvider)
		field  string
	}{
		{"valid", func(*v1alpha1.VaultProvider) {}, ""},
		{"server not a URL", func(v *v1alpha1.VaultProvider) { v.Server = "vault:8200" }, "spec.provider.vault.server"},
		{"caBundle not base64", func(v *v1alpha1.VaultProvider) { v.CABundle = "%%%" }, "spec.provider.vault.caBundle"},
		{"caBundle not PEM", func(v *v1alpha1.VaultProvider) { v.CABundle = base64.StdEncoding.EncodeToString([]byte("hello")) }, "spec.provider.vault.caBundle"},
		{"caBundle bad certificate", func(v *v1alpha1.VaultProvider) {
			v.CABundle = base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
		}, "spec.provider.vault.caBundle"},
		{"caProvider ConfigMap", func(v *v1alpha1.VaultProvider) {
			v.CAProvider = &v1alpha1.CAProvider{Type: "ConfigMap", Name: "ca", Key: "ca.crt"}
		}, ""},
		{"caProvider unknown type", func(v *v1alpha1.VaultProvider) {
			v.CAProvider = &v1alpha1.CAProvider{Type: "Node", Name: "ca", Key: "ca.crt"}
		}, "spec.provider.vault.caProvider.type"},
		{"two auth methods", func(v *v1alpha1.VaultProvider) {
			v.Auth.TokenSecretRef = &v1alpha1.SecretKeySelector{Name: "t", Key: "t"}
		}, "spec.provider.vault.auth"},
		{"bad version", func(v *v1alpha1.VaultProvider) { v.Version = "v3" }, "spec.provider.vault.version"},
		{"appRole path with traversal", func(v *v1alpha1.VaultProvider) { v.Auth.AppRole.Path = "approle/../../sys/policies/acl/x" }, "spec.provider.vault.auth.appRole.path"},
		{"appRole path nested mount", func(v *v1alpha1.VaultProvider) { v.Auth.AppRole.Path = "team-a/approle" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := appRoleSpec()
			tc.mutate(spec)
			err := p.ValidateStore(store(spec))
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, provider.ErrInvalid) || !strings.HasPrefix(provider.SafeMessage(err), tc.field+":") {
				t.Fatalf("err = %v, want ErrInvalid naming %s", err, tc.field)
			}
		})
	}
}
