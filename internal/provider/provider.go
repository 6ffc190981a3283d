// Package provider defines what a secret backend must offer the sync engine: a
// Provider that validates store specs and builds Clients, the Client calls, optional
// capabilities found by type assertion, sentinel errors, and an explicit registry.
package provider

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// Sentinel errors. Backends wrap one of these so the engine can pick a condition
// reason and a retry policy without knowing the backend.
var (
	ErrNotFound     = errors.New("not found")
	ErrAccessDenied = errors.New("access denied")
	ErrAuth         = errors.New("authentication failed")
	ErrThrottled    = errors.New("throttled")
	ErrUnavailable  = errors.New("backend unavailable")
	ErrInvalid      = errors.New("invalid request")
	// ErrCredentials means a credential the store references is missing from Kubernetes.
	ErrCredentials = errors.New("credentials not found")
	// ErrNotAllowed means a Find listed a key FindQuery.Allowed refuses: the find
	// stops before that key's value is read.
	ErrNotAllowed = errors.New("found key not allowed")
	// ErrSpec marks (as the cause under an ErrInvalid) a request the spec asks for
	// that no backend could answer: a malformed version selector, a non-canonical
	// key. The ExternalSecret reports InvalidSpec for it, not ProviderError (which
	// an ErrInvalid from the backend itself, e.g. a missing Vault mount, stays).
	ErrSpec = errors.New("invalid in the spec")
)

// Ref addresses one remote value.
type Ref struct {
	Key     string
	Version string
}

// Secret is one value read from a backend and the version actually read
// (Secrets Manager VersionId, SSM version number, Vault KV v2 version; may be empty).
type Secret struct {
	Value   []byte
	Version string
	// Key is, for Find results, the secret's key as a remoteRef.key in the same
	// store would name it (SSM/SM: the full name; Vault: the path relative to the KV
	// mount). allowedKeys are checked against it. Empty for GetSecret results.
	Key string
}

// FindQuery selects many remote secrets. Path is a prefix/hierarchy/folder; NameRegexp
// and Tags filter further. Results are keyed by the full remote name (see api.md).
type FindQuery struct {
	Path       string
	NameRegexp string
	Tags       map[string]string
	// Allowed, when set, is asked about every key the find would return (the key
	// as Secret.Key names it) BEFORE its value is read; a refused key fails the
	// whole find with ErrNotAllowed. A ClusterSecretStore's allowedKeys thus keep
	// the store's identity from reading other tenants' values at all. It is not
	// part of the query's identity: coalesced and cached finds are checked again
	// by the caller.
	Allowed func(key string) bool
}

// Client talks to one backend as one identity. Implementations must be safe for
// concurrent use: one Client serves every reconcile of a store identity.
type Client interface {
	// GetSecret reads one value; a missing key wraps ErrNotFound. Structured values
	// (Vault KV maps) are returned as their JSON text so properties apply uniformly.
	GetSecret(ctx context.Context, ref Ref) (Secret, error)
	// Find returns every matching secret keyed by its remote name.
	Find(ctx context.Context, q FindQuery) (map[string]Secret, error)
	// Check makes one cheap authenticated call.
	Check(ctx context.Context) error
	// Close releases the identity (e.g. revokes a Vault token the client logged in for).
	Close(ctx context.Context) error
}

// Result is one answer of a batch: either Secret or Err.
type Result struct {
	Secret Secret
	Err    error
}

// BatchGetter is implemented by clients that can read many keys in few calls.
// The result slice is aligned with refs.
type BatchGetter interface {
	GetSecrets(ctx context.Context, refs []Ref) ([]Result, error)
	// MaxBatch is the most refs one backend call can take.
	MaxBatch() int
}

// Paced is implemented by clients whose backend throttles by calls per second (AWS
// quotas are per account and region). The fetch layer keeps each client's calls
// under this rate, smoothing a refresh round's batch calls instead of bursting them.
type Paced interface {
	MaxCallsPerSecond() float64
}

// Lease is a dynamic secret's lease as the backend reports it.
type Lease struct {
	ID        string
	TTL       time.Duration
	Renewable bool
	// Certificate: the answer carried no lease but a certificate (PKI): ID is its
	// serial number and TTL runs to its expiration. It is never renewed, and a
	// superseded one is not revoked (pods may still serve it): only on delete.
	Certificate bool
}

// CertRevoker is implemented by clients that can revoke a certificate they issued
// from a dynamic path (Vault PKI: <mount>/revoke by serial number).
type CertRevoker interface {
	RevokeCertificate(ctx context.Context, path, serial string) error
}

// DynamicRequest issues a dynamic secret.
type DynamicRequest struct {
	Path       string
	Method     string // GET or POST
	Parameters map[string]string
}

// Leaser is implemented by clients that issue dynamic secrets with leases.
type Leaser interface {
	Issue(ctx context.Context, req DynamicRequest) (map[string][]byte, Lease, error)
	Renew(ctx context.Context, leaseID string, increment time.Duration) (Lease, error)
	Revoke(ctx context.Context, leaseID string) error
}

// Decrypter is implemented by clients that can decrypt ciphertext (Vault Transit).
type Decrypter interface {
	Decrypt(ctx context.Context, mount, key, ciphertext string) ([]byte, error)
}

// Provider builds Clients for one kind of backend.
type Provider interface {
	// Name is the registry key, e.g. "aws-secretsmanager", "aws-parameterstore", "vault".
	Name() string
	// ValidateStore checks what admission (CEL) cannot, without network calls.
	// Errors name the field path.
	ValidateStore(store v1alpha1.GenericStore) error
	// NewClient builds an authenticated client. namespace is the ExternalSecret's
	// namespace; it matters only for ClusterSecretStore ServiceAccount references
	// without a namespace.
	NewClient(ctx context.Context, store v1alpha1.GenericStore, kube Kube, namespace string) (Client, error)
}

// Registry maps provider names to Providers. It is built explicitly in main.go.
type Registry struct{ m map[string]Provider }

// NewRegistry registers ps; a duplicate name is a programming error.
func NewRegistry(ps ...Provider) *Registry {
	r := &Registry{m: map[string]Provider{}}
	for _, p := range ps {
		if _, dup := r.m[p.Name()]; dup {
			panic("provider registered twice: " + p.Name())
		}
		r.m[p.Name()] = p
	}
	return r
}

// Names lists the registered providers.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.m))
	for n := range r.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// For returns the provider for a store spec.
func (r *Registry) For(spec *v1alpha1.SecretStoreSpec) (Provider, error) {
	name := NameFor(spec)
	if name == "" {
		return nil, fmt.Errorf("spec.provider: %w: no provider set", ErrInvalid)
	}
	p, ok := r.m[name]
	if !ok {
		return nil, fmt.Errorf("spec.provider: %w: provider %q is not built into this operator", ErrInvalid, name)
	}
	return p, nil
}

// NameFor names the provider a store spec selects.
func NameFor(spec *v1alpha1.SecretStoreSpec) string {
	switch {
	case spec.Provider.AWS != nil && spec.Provider.AWS.Service == v1alpha1.AWSServiceParameterStore:
		return "aws-parameterstore"
	case spec.Provider.AWS != nil:
		return "aws-secretsmanager"
	case spec.Provider.Vault != nil:
		return "vault"
	}
	return ""
}
