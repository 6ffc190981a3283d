package provider

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// The identity rules: a tenant who may create a namespaced SecretStore must not be
// able to borrow the operator's identity, neither its cloud credentials (a store
// without auth) nor its standing with the Kubernetes API server (a ServiceAccount
// token whose audience the API server accepts, sent to a server the tenant names).
// The rules are pure functions of the store and the operator's policy, so the store
// controller (Ready=False InvalidSpec, no network call) and the fetch layer (no client
// is ever built without them) apply exactly the same ones.

// WellKnownAPIServerAudiences are the audiences Kubernetes API servers accept in most
// distributions (the in-cluster Service names). They are refused whatever audiences
// the operator learned or was told at start.
var WellKnownAPIServerAudiences = []string{
	"https://kubernetes.default.svc",
	"https://kubernetes.default.svc.cluster.local",
	"kubernetes.default.svc",
}

// DefaultServiceAccountTokenPath is where the kubelet mounts the operator's own
// ServiceAccount token; its aud claim names the API server's audiences.
const DefaultServiceAccountTokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// errPolicy renders with our field path in SafeMessage (a bare sentinel would be
// rendered as "invalid request" alone).
var errPolicy = Wrap(ErrInvalid, "", nil)

// IdentityPolicy is what the operator lets a store's identity be. The zero value is
// the strict default: no ambient credentials in namespaced stores, and only the
// well-known API server audiences known.
type IdentityPolicy struct {
	// AllowAmbientInNamespacedStores lets a namespaced SecretStore without auth use
	// the operator's own credentials (AWS default credential chain, and role
	// assumption with it). A trust decision: every tenant who may create a
	// SecretStore then acts as the operator.
	AllowAmbientInNamespacedStores bool
	// APIServerAudiences are the audiences the Kubernetes API server accepts, as
	// learned at start (--api-server-audiences, or the aud claim of the operator's own
	// token). WellKnownAPIServerAudiences are always added.
	APIServerAudiences []string
}

// Check applies the policy to a store spec, without network calls. Errors name the
// field path and wrap ErrInvalid.
func (p IdentityPolicy) Check(store v1alpha1.GenericStore) error {
	if err := CheckIdentity(store, p.AllowAmbientInNamespacedStores); err != nil {
		return err
	}
	for _, sa := range serviceAccountRefs(store) {
		if err := p.CheckAudiences(sa.field+".audiences", sa.ref.Audiences); err != nil {
			return err
		}
	}
	return nil
}

// CheckAudiences refuses a token request whose audiences the API server accepts:
// such a token works against the Kubernetes API as the ServiceAccount, in the hands
// of whatever server the store names. No audiences at all is refused too, because
// the API server then issues the token for its own audiences. field names the spec
// path (or the request) in the error.
func (p IdentityPolicy) CheckAudiences(field string, audiences []string) error {
	if len(audiences) == 0 {
		return fmt.Errorf("%s: a token without audiences is issued for the Kubernetes API server: %w", field, errPolicy)
	}
	for i, a := range audiences {
		if p.isAPIServerAudience(a) {
			return fmt.Errorf("%s[%d]: %q is an audience of the Kubernetes API server; a token for it would be accepted by the API server: %w", field, i, a, errPolicy)
		}
	}
	return nil
}

func (p IdentityPolicy) isAPIServerAudience(a string) bool {
	n := normalAudience(a)
	if n == "" {
		return true // an empty entry is no audience at all
	}
	for _, list := range [][]string{WellKnownAPIServerAudiences, p.APIServerAudiences} {
		for _, s := range list {
			if normalAudience(s) == n {
				return true
			}
		}
	}
	return false
}

// normalAudience compares audiences the way a careless server might: the API server
// matches exactly, but refusing "https://kubernetes.default.svc/" and different
// case too costs nothing legitimate.
func normalAudience(a string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(a)), "/")
}

// CheckIdentity refuses a namespaced SecretStore that would authenticate as the
// operator: AWS without auth.secretRef or auth.jwt (the operator's default credential
// chain, and role assumption with it), Vault without an auth method. A
// ClusterSecretStore may: the platform team that creates it decides what the
// operator's identity may be used for. allowAmbient is the operator's flag that makes
// the same trust decision for every namespaced SecretStore.
func CheckIdentity(store v1alpha1.GenericStore, allowAmbient bool) error {
	if store.GetKind() == "ClusterSecretStore" || allowAmbient {
		return nil
	}
	p := store.GetSpec().Provider
	if a := p.AWS; a != nil && (a.Auth == nil || (a.Auth.SecretRef == nil && a.Auth.JWT == nil)) {
		if a.Role != "" {
			return fmt.Errorf("spec.provider.aws.auth: required in a namespaced SecretStore, also to assume spec.provider.aws.role (the role would be assumed with the operator's own AWS credentials; set auth.secretRef or auth.jwt, or use a ClusterSecretStore): %w", errPolicy)
		}
		return fmt.Errorf("spec.provider.aws.auth: required in a namespaced SecretStore (without it the store would use the operator's own AWS credentials; set auth.secretRef or auth.jwt, or use a ClusterSecretStore): %w", errPolicy)
	}
	if v := p.Vault; v != nil {
		a := v.Auth
		if a.TokenSecretRef == nil && a.AppRole == nil && a.Kubernetes == nil && a.JWT == nil {
			return fmt.Errorf("spec.provider.vault.auth: required in a namespaced SecretStore: %w", errPolicy)
		}
	}
	return nil
}

type saRef struct {
	field string
	ref   v1alpha1.ServiceAccountSelector
}

// serviceAccountRefs lists the ServiceAccounts a store requests tokens for, with
// their spec paths.
func serviceAccountRefs(store v1alpha1.GenericStore) []saRef {
	p := store.GetSpec().Provider
	var out []saRef
	if p.AWS != nil && p.AWS.Auth != nil && p.AWS.Auth.JWT != nil {
		out = append(out, saRef{"spec.provider.aws.auth.jwt.serviceAccountRef", p.AWS.Auth.JWT.ServiceAccountRef})
	}
	if p.Vault != nil {
		if k := p.Vault.Auth.Kubernetes; k != nil {
			out = append(out, saRef{"spec.provider.vault.auth.kubernetes.serviceAccountRef", k.ServiceAccountRef})
		}
		if j := p.Vault.Auth.JWT; j != nil && j.KubernetesServiceAccountToken != nil {
			out = append(out, saRef{"spec.provider.vault.auth.jwt.kubernetesServiceAccountToken.serviceAccountRef", j.KubernetesServiceAccountToken.ServiceAccountRef})
		}
	}
	// An empty audiences list is legal in the spec: each provider requests its own
	// default audience then (AWS sts.amazonaws.com, Vault "vault"), never none.
	return slices.DeleteFunc(out, func(s saRef) bool { return len(s.ref.Audiences) == 0 })
}

// PolicyHolder is implemented by a Kube that carries the operator's policy
// (KubeClient). The fetch layer finds the policy through the Kube it already holds.
type PolicyHolder interface {
	IdentityPolicy() IdentityPolicy
}

// PolicyOf returns kube's policy, or the strict default for a Kube without one.
func PolicyOf(kube Kube) IdentityPolicy {
	if h, ok := kube.(PolicyHolder); ok {
		return h.IdentityPolicy()
	}
	return IdentityPolicy{}
}

// ParseAudiences splits a comma-separated flag value, dropping empty entries.
func ParseAudiences(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// LearnAPIServerAudiences reads the aud claim of the ServiceAccount token at path
// (the operator's own, issued by the API server for its own audiences). The token is
// decoded, not verified: it is our own file, and only its audiences are used, to
// refuse them. A missing file (running outside a pod) learns nothing and is no error.
func LearnAPIServerAudiences(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read ServiceAccount token %s: %w", path, err)
	}
	parts := strings.Split(strings.TrimSpace(string(raw)), ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("ServiceAccount token %s: not a JWT", path)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("ServiceAccount token %s: payload is not base64url", path)
	}
	var claims struct {
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("ServiceAccount token %s: payload is not JSON", path)
	}
	// aud is a string or an array of strings (RFC 7519 section 4.1.3).
	var one string
	if err := json.Unmarshal(claims.Aud, &one); err == nil && one != "" {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(claims.Aud, &many); err == nil && len(many) > 0 {
		return many, nil
	}
	return nil, fmt.Errorf("ServiceAccount token %s: no aud claim", path)
}
