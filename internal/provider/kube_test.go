package provider_test

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/scheme"
)

func vaultCAStore(kind string, cp v1alpha1.CAProvider) v1alpha1.GenericStore {
	spec := v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "https://vault.example",
		CAProvider: &cp, Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token", Namespace: cp.Namespace}}}}}
	if kind == "ClusterSecretStore" {
		return &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: spec}
	}
	return &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "s"}, Spec: spec}
}

// A CA bundle in a ConfigMap is part of the store's credential identity, with the
// same namespace rules as a Secret: editing it changes the identity.
func TestCredentialVersionsTrackConfigMaps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		store     v1alpha1.GenericStore
		namespace string // where the ConfigMap and the token Secret live
	}{
		{"SecretStore: its own namespace", vaultCAStore("SecretStore", v1alpha1.CAProvider{Type: "ConfigMap", Name: "ca", Key: "ca.crt"}), "team-a"},
		{"ClusterSecretStore: the ref's namespace", vaultCAStore("ClusterSecretStore", v1alpha1.CAProvider{Type: "ConfigMap", Name: "ca", Key: "ca.crt", Namespace: "platform"}), "platform"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: tc.namespace, Name: "ca"}, Data: map[string]string{"ca.crt": "PEM"}}
			tok := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: tc.namespace, Name: "tok"}, Data: map[string][]byte{"token": []byte("t")}}
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(cm, tok).Build()

			refs := provider.CredentialRefs(tc.store)
			if len(refs) != 2 || refs[0].Kind != "ConfigMap" || refs[0].Namespace != tc.namespace {
				t.Fatalf("CredentialRefs = %+v", refs)
			}
			before, err := provider.CredentialVersions(t.Context(), c, tc.store)
			if err != nil {
				t.Fatal(err)
			}
			cm.Data["ca.crt"] = "NEW PEM"
			if err := c.Update(t.Context(), cm); err != nil {
				t.Fatal(err)
			}
			after, err := provider.CredentialVersions(t.Context(), c, tc.store)
			if err != nil || after == before {
				t.Fatalf("identity %q -> %q (%v): a CA change must change it", before, after, err)
			}
			if err := c.Delete(t.Context(), cm); err != nil {
				t.Fatal(err)
			}
			_, err = provider.CredentialVersions(t.Context(), c, tc.store)
			if !errors.Is(err, provider.ErrCredentials) || !strings.Contains(err.Error(), "configmap "+tc.namespace+"/ca") {
				t.Fatalf("deleted ConfigMap: err = %v, want ErrCredentials naming it", err)
			}
		})
	}
}

func TestKubeClientConfigMapKey(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ca"},
		Data: map[string]string{"ca.crt": "text"}, BinaryData: map[string][]byte{"ca.der": {1, 2}}}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(cm).Build()
	k := provider.KubeClient{Reader: c, Writer: c}
	for _, tc := range []struct {
		name, cm, key, want string
		wantErr             error
	}{
		{"data", "ca", "ca.crt", "text", nil},
		{"binaryData", "ca", "ca.der", "\x01\x02", nil},
		{"missing key", "ca", "nope", "", provider.ErrCredentials},
		{"missing ConfigMap", "other", "ca.crt", "", provider.ErrCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := k.ConfigMapKey(t.Context(), "ns", tc.cm, tc.key)
			if !errors.Is(err, tc.wantErr) || string(got) != tc.want {
				t.Fatalf("ConfigMapKey = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

var _ provider.ConfigMapReader = provider.KubeClient{}
