package provider

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// Kube is the Kubernetes access a provider may use while building a client:
// reading credential Secrets and requesting ServiceAccount tokens (and, through the
// optional ConfigMapReader, reading ConfigMaps). Namespace resolution (SecretStore vs
// ClusterSecretStore) is done by the helpers below, so every provider applies the
// same rules.
type Kube interface {
	// SecretKey reads one key of a Secret (a direct GET: credential Secrets are not
	// in the operator's cache, which holds only managed targets).
	SecretKey(ctx context.Context, namespace, name, key string) ([]byte, error)
	// ServiceAccountToken requests a token for namespace/name with the audiences.
	ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, ttl time.Duration) (string, error)
}

// ConfigMapReader is the optional capability of a Kube to read ConfigMaps (public
// material such as a CA bundle). KubeClient has it; it is separate from Kube so
// that test doubles which never read ConfigMaps need not implement it.
type ConfigMapReader interface {
	// ConfigMapKey reads one key of a ConfigMap (data, then binaryData) with a
	// direct GET, like SecretKey.
	ConfigMapKey(ctx context.Context, namespace, name, key string) ([]byte, error)
}

// KubeClient implements Kube with a controller-runtime client. Reader must be an
// uncached reader (the manager's APIReader).
type KubeClient struct {
	Reader client.Reader
	Writer client.Client
	// Policy is the operator's identity policy. ServiceAccountToken enforces its
	// audience rule on every request, and the fetch layer finds it here (PolicyOf) to
	// check a store before building its client. The zero value is the strict default.
	Policy IdentityPolicy
}

// IdentityPolicy implements PolicyHolder.
func (k KubeClient) IdentityPolicy() IdentityPolicy { return k.Policy }

func (k KubeClient) SecretKey(ctx context.Context, namespace, name, key string) ([]byte, error) {
	var s corev1.Secret
	if err := k.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, ErrCredentials)
		}
		return nil, fmt.Errorf("get secret %s/%s: %w", namespace, name, err)
	}
	v, ok := s.Data[key]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s has no key %q: %w", namespace, name, key, ErrCredentials)
	}
	return v, nil
}

func (k KubeClient) ConfigMapKey(ctx context.Context, namespace, name, key string) ([]byte, error) {
	var cm corev1.ConfigMap
	if err := k.Reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("configmap %s/%s: %w", namespace, name, ErrCredentials)
		}
		return nil, fmt.Errorf("get configmap %s/%s: %w", namespace, name, err)
	}
	if v, ok := cm.Data[key]; ok {
		return []byte(v), nil
	}
	if v, ok := cm.BinaryData[key]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("configmap %s/%s has no key %q: %w", namespace, name, key, ErrCredentials)
}

// ServiceAccountToken refuses, before any request, audiences the API server accepts
// (and none at all, which the API server would fill with its own): every token the
// operator requests is handed to a backend a store names, and such a token would let
// that backend act as the ServiceAccount against the Kubernetes API. Checked here as
// well as in the static validation so that no provider can forget it.
func (k KubeClient) ServiceAccountToken(ctx context.Context, namespace, name string, audiences []string, ttl time.Duration) (string, error) {
	if err := k.Policy.CheckAudiences("serviceAccountRef.audiences", audiences); err != nil {
		return "", fmt.Errorf("token request for serviceaccount %s/%s: %w", namespace, name, err)
	}
	secs := int64(ttl / time.Second)
	sa := &corev1.ServiceAccount{}
	sa.Namespace, sa.Name = namespace, name
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &secs}}
	if err := k.Writer.SubResource("token").Create(ctx, sa, tr); err != nil {
		if apierrors.IsNotFound(err) {
			return "", fmt.Errorf("serviceaccount %s/%s: %w", namespace, name, ErrCredentials)
		}
		return "", fmt.Errorf("token request for serviceaccount %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// SecretNamespace resolves the namespace of a Secret (or ConfigMap) reference inside
// store: a SecretStore's own namespace, a ClusterSecretStore's explicit one.
func SecretNamespace(store v1alpha1.GenericStore, refNamespace string) string {
	if store.GetKind() == "ClusterSecretStore" {
		return refNamespace
	}
	return store.GetNamespace()
}

// ServiceAccountNamespace resolves a ServiceAccount reference: a SecretStore's own
// namespace; in a ClusterSecretStore the explicit namespace, else the consumer's.
func ServiceAccountNamespace(store v1alpha1.GenericStore, sa v1alpha1.ServiceAccountSelector, consumer string) string {
	if store.GetKind() != "ClusterSecretStore" {
		return store.GetNamespace()
	}
	if sa.Namespace != "" {
		return sa.Namespace
	}
	return consumer
}

// ReadSecretKey resolves sel inside store and reads it.
func ReadSecretKey(ctx context.Context, kube Kube, store v1alpha1.GenericStore, sel v1alpha1.SecretKeySelector) ([]byte, error) {
	return kube.SecretKey(ctx, SecretNamespace(store, sel.Namespace), sel.Name, sel.Key)
}

// ReadConfigMapKey resolves a ConfigMap reference inside store (the same namespace
// rules as a Secret's) and reads it; kube must be a ConfigMapReader.
func ReadConfigMapKey(ctx context.Context, kube Kube, store v1alpha1.GenericStore, namespace, name, key string) ([]byte, error) {
	r, ok := kube.(ConfigMapReader)
	if !ok {
		return nil, fmt.Errorf("configmap %s: this operator cannot read ConfigMaps: %w", name, Wrap(ErrInvalid, "", nil))
	}
	return r.ConfigMapKey(ctx, SecretNamespace(store, namespace), name, key)
}

// CredentialRef is a Kubernetes object a store's client is built from.
type CredentialRef struct {
	// Kind is "Secret" or "ConfigMap" (core/v1).
	Kind string
	types.NamespacedName
}

// CredentialRefs lists the Secrets and ConfigMaps a store references, so the fetch
// layer can key clients by their resourceVersions (CredentialVersions) and rebuild a
// client when credentials or a CA bundle rotate.
func CredentialRefs(store v1alpha1.GenericStore) []CredentialRef {
	var out []CredentialRef
	add := func(s *v1alpha1.SecretKeySelector) {
		if s != nil {
			out = append(out, CredentialRef{Kind: "Secret", NamespacedName: types.NamespacedName{Namespace: SecretNamespace(store, s.Namespace), Name: s.Name}})
		}
	}
	p := store.GetSpec().Provider
	if p.AWS != nil && p.AWS.Auth != nil && p.AWS.Auth.SecretRef != nil {
		add(&p.AWS.Auth.SecretRef.AccessKeyIDSecretRef)
		add(&p.AWS.Auth.SecretRef.SecretAccessKeySecretRef)
		add(p.AWS.Auth.SecretRef.SessionTokenSecretRef)
	}
	if v := p.Vault; v != nil {
		if cp := v.CAProvider; cp != nil {
			kind := "Secret"
			if cp.Type == v1alpha1.CAProviderConfigMap {
				kind = "ConfigMap"
			}
			out = append(out, CredentialRef{Kind: kind, NamespacedName: types.NamespacedName{Namespace: SecretNamespace(store, cp.Namespace), Name: cp.Name}})
		}
		add(v.Auth.TokenSecretRef)
		if v.Auth.AppRole != nil {
			add(&v.Auth.AppRole.SecretRef)
			add(v.Auth.AppRole.RoleRef)
		}
		if v.Auth.JWT != nil {
			add(v.Auth.JWT.SecretRef)
		}
	}
	return out
}

// CredentialVersions is the credential part of a store's client identity: the
// resourceVersion of every object in CredentialRefs, in a stable order. It reads
// metadata only, through reader (an uncached reader: credential objects are not in
// the operator's cache). A missing object is ErrCredentials.
func CredentialVersions(ctx context.Context, reader client.Reader, store v1alpha1.GenericStore) (string, error) {
	refs := CredentialRefs(store)
	slices.SortFunc(refs, func(a, b CredentialRef) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.String(), b.String()))
	})
	refs = slices.Compact(refs)
	var b strings.Builder
	for _, r := range refs {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(r.Kind))
		if err := reader.Get(ctx, r.NamespacedName, m); err != nil {
			kind := strings.ToLower(r.Kind)
			if apierrors.IsNotFound(err) {
				return "", fmt.Errorf("%s %s: %w", kind, r, ErrCredentials)
			}
			return "", fmt.Errorf("read %s %s: %w", kind, r, err)
		}
		fmt.Fprintf(&b, "%s:%s=%s;", r.Kind, r, m.ResourceVersion)
	}
	return b.String(), nil
}

// UsesConsumerNamespace reports whether a client for store depends on the consumer's
// namespace (a ClusterSecretStore ServiceAccount reference without a namespace), so the
// fetch layer must keep one client per consuming namespace.
func UsesConsumerNamespace(store v1alpha1.GenericStore) bool {
	if store.GetKind() != "ClusterSecretStore" {
		return false
	}
	p := store.GetSpec().Provider
	var sas []v1alpha1.ServiceAccountSelector
	if p.AWS != nil && p.AWS.Auth != nil && p.AWS.Auth.JWT != nil {
		sas = append(sas, p.AWS.Auth.JWT.ServiceAccountRef)
	}
	if p.Vault != nil {
		if k := p.Vault.Auth.Kubernetes; k != nil {
			sas = append(sas, k.ServiceAccountRef)
		}
		if j := p.Vault.Auth.JWT; j != nil && j.KubernetesServiceAccountToken != nil {
			sas = append(sas, j.KubernetesServiceAccountToken.ServiceAccountRef)
		}
	}
	for _, sa := range sas {
		if sa.Namespace == "" {
			return true
		}
	}
	return false
}
