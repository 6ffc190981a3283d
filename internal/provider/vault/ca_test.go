package vault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// objectKube serves Secret and ConfigMap keys from maps ("ns/name/key").
type objectKube struct {
	secrets, configMaps map[string]string
}

func (k objectKube) SecretKey(_ context.Context, ns, name, key string) ([]byte, error) {
	return lookup(k.secrets, "secret", ns, name, key)
}

func (k objectKube) ConfigMapKey(_ context.Context, ns, name, key string) ([]byte, error) {
	return lookup(k.configMaps, "configmap", ns, name, key)
}

func (objectKube) ServiceAccountToken(context.Context, string, string, []string, time.Duration) (string, error) {
	return "", errors.New("no service accounts here")
}

func lookup(m map[string]string, kind, ns, name, key string) ([]byte, error) {
	v, ok := m[ns+"/"+name+"/"+key]
	if !ok {
		return nil, fmt.Errorf("%s %s/%s has no key %q: %w", kind, ns, name, key, provider.ErrCredentials)
	}
	return []byte(v), nil
}

// secretsOnly is a Kube without the ConfigMapReader capability.
type secretsOnly struct{ kube objectKube }

func (k secretsOnly) SecretKey(ctx context.Context, ns, name, key string) ([]byte, error) {
	return k.kube.SecretKey(ctx, ns, name, key)
}

func (k secretsOnly) ServiceAccountToken(ctx context.Context, ns, name string, aud []string, ttl time.Duration) (string, error) {
	return k.kube.ServiceAccountToken(ctx, ns, name, aud, ttl)
}

func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(0, 0).Add(100 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestCABundleFromProvider(t *testing.T) {
	ca := selfSignedPEM(t)
	kube := objectKube{
		secrets:    map[string]string{"ns/ca/ca.crt": ca, "platform/ca/ca.crt": ca},
		configMaps: map[string]string{"ns/ca/ca.crt": ca, "platform/ca/ca.crt": ca, "ns/ca/garbage": "hello"},
	}
	cluster := func(v *v1alpha1.VaultProvider) v1alpha1.GenericStore {
		return &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: v}}}
	}
	namespaced := func(v *v1alpha1.VaultProvider) v1alpha1.GenericStore { return store(v) }
	for _, tc := range []struct {
		name    string
		kube    provider.Kube
		kind    func(*v1alpha1.VaultProvider) v1alpha1.GenericStore
		cp      v1alpha1.CAProvider
		wantErr error  // nil: the bundle is read
		inMsg   string // the message names this
	}{
		{"Secret in the store's namespace", kube, namespaced, v1alpha1.CAProvider{Type: "Secret", Name: "ca", Key: "ca.crt"}, nil, ""},
		{"ConfigMap in the store's namespace", kube, namespaced, v1alpha1.CAProvider{Type: "ConfigMap", Name: "ca", Key: "ca.crt"}, nil, ""},
		{"ConfigMap of a ClusterSecretStore in the ref's namespace", kube, cluster, v1alpha1.CAProvider{Type: "ConfigMap", Name: "ca", Key: "ca.crt", Namespace: "platform"}, nil, ""},
		{"ConfigMap without the key", kube, namespaced, v1alpha1.CAProvider{Type: "ConfigMap", Name: "ca", Key: "tls.crt"}, provider.ErrCredentials,
			`spec.provider.vault.caProvider: configmap ns/ca has no key "tls.crt"`},
		{"ConfigMap missing", kube, namespaced, v1alpha1.CAProvider{Type: "ConfigMap", Name: "nope", Key: "ca.crt"}, provider.ErrCredentials,
			"spec.provider.vault.caProvider: configmap ns/nope"},
		{"ConfigMap key not PEM", kube, namespaced, v1alpha1.CAProvider{Type: "ConfigMap", Name: "ca", Key: "garbage"}, provider.ErrInvalid,
			`spec.provider.vault.caProvider: configmap key "garbage": no PEM CERTIFICATE block`},
		{"a Kube that cannot read ConfigMaps", secretsOnly{kube}, namespaced, v1alpha1.CAProvider{Type: "ConfigMap", Name: "ca", Key: "ca.crt"}, provider.ErrInvalid,
			"spec.provider.vault.caProvider: configmap ca: this operator cannot read ConfigMaps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := appRoleSpec()
			cp := tc.cp
			spec.CAProvider = &cp
			got, err := caBundle(t.Context(), tc.kind(spec), tc.kube)
			if tc.wantErr == nil {
				if err != nil || string(got) != ca {
					t.Fatalf("caBundle = %d bytes, %v; want the bundle", len(got), err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(provider.SafeMessage(err), tc.inMsg) {
				t.Fatalf("err = %v (safe: %q), want %v naming %q", err, provider.SafeMessage(err), tc.wantErr, tc.inMsg)
			}
		})
	}
}
