package vault

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// serviceAccountTokenTTL is what a TokenRequest asks for: the token is used once, to
// log in, so the API server's minimum is plenty.
const serviceAccountTokenTTL = 10 * time.Minute

// DefaultAudience is the audience of ServiceAccount tokens requested for kubernetes
// and jwt auth when serviceAccountRef.audiences is empty. A TokenRequest is never sent
// without audiences: the API server would then issue the token for its own audience,
// and Vault (a server the store names) would hold a token that works against the
// Kubernetes API. Vault roles check it with `audience` / `bound_audiences`.
const DefaultAudience = "vault"

// tokenInfo is a Vault token and what the client may do with it.
type tokenInfo struct {
	token     string
	ttl       time.Duration // time left; 0: never expires (or unknown)
	renewable bool
	// increment is what a renewal asks for: the login's TTL, or a user token's
	// creation TTL.
	increment time.Duration
	owned     bool // the client logged in for it, so Close revokes it
}

// authenticator produces a token; login is called with the client's lock held, so
// implementations never run concurrently for one client.
type authenticator interface {
	login(ctx context.Context, va vaultAPI) (tokenInfo, error)
	// method names the auth method for logs and login counting.
	method() string
}

// staticToken is tokenSecretRef: the user's token, read once when the client is built.
// It is never revoked (its lifecycle belongs to the user), but a renewable token
// with a TTL is renewed like one the client logged in for, so it does not expire
// while the store uses it (see Client.watchUserToken).
type staticToken struct{ token string }

func (s staticToken) method() string { return "token" }
func (s staticToken) login(context.Context, vaultAPI) (tokenInfo, error) {
	return tokenInfo{token: s.token}, nil
}

// loginAuth posts credentials to auth/<mount>/login. body is called per login, so a
// ServiceAccount token is requested fresh each time.
type loginAuth struct {
	name  string
	path  string
	field string // spec path for error messages
	body  func(ctx context.Context) (map[string]any, error)
}

func (l loginAuth) method() string { return l.name }

func (l loginAuth) login(ctx context.Context, va vaultAPI) (tokenInfo, error) {
	body, err := l.body(ctx)
	if err != nil {
		if provider.Classify(err) == nil {
			// A TokenRequest the API server refused: an auth failure, named without
			// the API server's raw text.
			err = provider.Wrap(provider.ErrAuth, "TokenRequest", err)
		}
		return tokenInfo{}, fmt.Errorf("%s: %w", l.field, err)
	}
	sec, err := va.Write(ctx, "", l.path, body)
	if err != nil {
		return tokenInfo{}, fmt.Errorf("%s: vault login at %s: %w", l.field, l.path, loginError(err))
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return tokenInfo{}, fmt.Errorf("%s: vault login at %s returned no token: %w", l.field, l.path, errAuth)
	}
	ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second
	return tokenInfo{token: sec.Auth.ClientToken, ttl: ttl, increment: ttl, renewable: sec.Auth.Renewable, owned: true}, nil
}

// loginError: Vault answers bad credentials with 400 (invalid role or secret id) or
// 403, and an unknown auth mount with 400/404; all of them are an auth failure, not
// a missing secret. Outages stay outages.
func loginError(err error) error {
	switch code := statusOf(err); {
	case code == http.StatusTooManyRequests || code >= 500:
		return classify(err)
	case code >= 400:
		return wrap(provider.ErrAuth, fmt.Sprint(code), err)
	}
	return classify(err)
}

func newAuthenticator(ctx context.Context, store v1alpha1.GenericStore, kube provider.Kube, consumerNS string) (authenticator, error) {
	a := store.GetSpec().Provider.Vault.Auth
	secret := func(field string, sel v1alpha1.SecretKeySelector) (string, error) {
		b, err := provider.ReadSecretKey(ctx, kube, store, sel)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s: secret key %q is empty: %w", field, sel.Key, provider.ErrCredentials)
		}
		return s, nil
	}
	saToken := func(sa v1alpha1.ServiceAccountSelector) func(ctx context.Context) (string, error) {
		ns := provider.ServiceAccountNamespace(store, sa, consumerNS)
		aud := sa.Audiences
		if len(aud) == 0 {
			aud = []string{DefaultAudience}
		}
		return func(ctx context.Context) (string, error) {
			return kube.ServiceAccountToken(ctx, ns, sa.Name, aud, serviceAccountTokenTTL)
		}
	}

	switch {
	case a.TokenSecretRef != nil:
		tok, err := secret("spec.provider.vault.auth.tokenSecretRef", *a.TokenSecretRef)
		if err != nil {
			return nil, err
		}
		return staticToken{token: tok}, nil

	case a.AppRole != nil:
		r := a.AppRole
		roleID := r.RoleID
		if r.RoleRef != nil {
			var err error
			if roleID, err = secret("spec.provider.vault.auth.appRole.roleRef", *r.RoleRef); err != nil {
				return nil, err
			}
		}
		secretID, err := secret("spec.provider.vault.auth.appRole.secretRef", r.SecretRef)
		if err != nil {
			return nil, err
		}
		return loginAuth{
			name: "approle", path: "auth/" + mountOr(r.Path, "approle") + "/login", field: "spec.provider.vault.auth.appRole",
			body: func(context.Context) (map[string]any, error) {
				return map[string]any{"role_id": roleID, "secret_id": secretID}, nil
			},
		}, nil

	case a.Kubernetes != nil:
		k := a.Kubernetes
		tok := saToken(k.ServiceAccountRef)
		return loginAuth{
			name: "kubernetes", path: "auth/" + mountOr(k.MountPath, "kubernetes") + "/login", field: "spec.provider.vault.auth.kubernetes",
			body: func(ctx context.Context) (map[string]any, error) {
				jwt, err := tok(ctx)
				if err != nil {
					return nil, err
				}
				return map[string]any{"role": k.Role, "jwt": jwt}, nil
			},
		}, nil

	case a.JWT != nil:
		j := a.JWT
		var jwt func(ctx context.Context) (string, error)
		if j.SecretRef != nil {
			v, err := secret("spec.provider.vault.auth.jwt.secretRef", *j.SecretRef)
			if err != nil {
				return nil, err
			}
			jwt = func(context.Context) (string, error) { return v, nil }
		} else {
			jwt = saToken(j.KubernetesServiceAccountToken.ServiceAccountRef)
		}
		return loginAuth{
			name: "jwt", path: "auth/" + mountOr(j.Path, "jwt") + "/login", field: "spec.provider.vault.auth.jwt",
			body: func(ctx context.Context) (map[string]any, error) {
				t, err := jwt(ctx)
				if err != nil {
					return nil, err
				}
				return map[string]any{"role": j.Role, "jwt": t}, nil
			},
		}, nil
	}
	return nil, fmt.Errorf("spec.provider.vault.auth: no auth method set: %w", errInvalid)
}

func mountOr(path, def string) string {
	if p := strings.Trim(path, "/"); p != "" {
		return p
	}
	return def
}
