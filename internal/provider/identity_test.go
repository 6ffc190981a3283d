package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

func namespaced(p v1alpha1.StoreProvider) v1alpha1.GenericStore {
	return &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "s"}, Spec: v1alpha1.SecretStoreSpec{Provider: p}}
}

func cluster(p v1alpha1.StoreProvider) v1alpha1.GenericStore {
	return &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: v1alpha1.SecretStoreSpec{Provider: p}}
}

func awsWith(mutate func(*v1alpha1.AWSProvider)) v1alpha1.StoreProvider {
	a := &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceSecretsManager, Region: "eu-west-1"}
	mutate(a)
	return v1alpha1.StoreProvider{AWS: a}
}

func vaultWith(auth v1alpha1.VaultAuth) v1alpha1.StoreProvider {
	return v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "https://vault.example:8200", Auth: auth}}
}

var (
	staticKeys = &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
		AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "c", Key: "id"},
		SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "c", Key: "secret"},
	}}
	webIdentity = func(aud ...string) *v1alpha1.AWSAuth {
		return &v1alpha1.AWSAuth{JWT: &v1alpha1.AWSJWTAuth{ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app", Audiences: aud}}}
	}
	vaultK8s = func(aud ...string) v1alpha1.VaultAuth {
		return v1alpha1.VaultAuth{Kubernetes: &v1alpha1.VaultKubernetesAuth{Role: "app", ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app", Audiences: aud}}}
	}
	vaultJWTSA = func(aud ...string) v1alpha1.VaultAuth {
		return v1alpha1.VaultAuth{JWT: &v1alpha1.VaultJWTAuth{Role: "app", KubernetesServiceAccountToken: &v1alpha1.VaultServiceAccountToken{
			ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app", Audiences: aud}}}}
	}
)

func TestIdentityPolicyCheck(t *testing.T) {
	learned := IdentityPolicy{APIServerAudiences: []string{"https://oidc.eks.example/id/ABC"}}
	cases := []struct {
		name     string
		store    v1alpha1.GenericStore
		policy   IdentityPolicy
		wantPath string // "" = allowed
	}{
		{"namespaced AWS without auth uses the operator's credentials", namespaced(awsWith(func(*v1alpha1.AWSProvider) {})), IdentityPolicy{}, "spec.provider.aws.auth: required in a namespaced SecretStore"},
		{"namespaced AWS with an empty auth block", namespaced(awsWith(func(a *v1alpha1.AWSProvider) { a.Auth = &v1alpha1.AWSAuth{} })), IdentityPolicy{}, "spec.provider.aws.auth: required"},
		{"namespaced AWS role without auth would assume it as the operator", namespaced(awsWith(func(a *v1alpha1.AWSProvider) { a.Role = "arn:aws:iam::1:role/x" })), IdentityPolicy{}, "also to assume spec.provider.aws.role"},
		{"namespaced AWS with static keys", namespaced(awsWith(func(a *v1alpha1.AWSProvider) { a.Auth = staticKeys })), IdentityPolicy{}, ""},
		{"namespaced AWS static keys and a role", namespaced(awsWith(func(a *v1alpha1.AWSProvider) { a.Auth, a.Role = staticKeys, "arn:aws:iam::1:role/x" })), IdentityPolicy{}, ""},
		{"namespaced AWS web identity, default audience", namespaced(awsWith(func(a *v1alpha1.AWSProvider) { a.Auth, a.Role = webIdentity(), "arn:aws:iam::1:role/x" })), IdentityPolicy{}, ""},
		{"namespaced AWS without auth, operator allows ambient", namespaced(awsWith(func(a *v1alpha1.AWSProvider) { a.Role = "arn:aws:iam::1:role/x" })), IdentityPolicy{AllowAmbientInNamespacedStores: true}, ""},
		{"cluster store without auth uses the operator's credentials", cluster(awsWith(func(a *v1alpha1.AWSProvider) { a.Role = "arn:aws:iam::1:role/x" })), IdentityPolicy{}, ""},
		{"namespaced Vault without auth", namespaced(vaultWith(v1alpha1.VaultAuth{})), IdentityPolicy{}, "spec.provider.vault.auth: required in a namespaced SecretStore"},
		{"namespaced Vault token", namespaced(vaultWith(v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "t", Key: "t"}})), IdentityPolicy{}, ""},
		{"Vault kubernetes auth, default audience", namespaced(vaultWith(vaultK8s())), IdentityPolicy{}, ""},
		{"Vault kubernetes auth, audience vault", namespaced(vaultWith(vaultK8s("vault"))), IdentityPolicy{}, ""},
		{"Vault kubernetes auth, well-known API server audience", namespaced(vaultWith(vaultK8s("vault", "https://kubernetes.default.svc"))), IdentityPolicy{}, "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences[1]"},
		{"Vault kubernetes auth, well-known audience spelt differently", namespaced(vaultWith(vaultK8s("HTTPS://kubernetes.default.svc.cluster.local/"))), IdentityPolicy{}, "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences[0]"},
		{"Vault kubernetes auth, empty audience entry", namespaced(vaultWith(vaultK8s(" "))), IdentityPolicy{}, "serviceAccountRef.audiences[0]"},
		{"Vault jwt auth with a token, learned API server audience", namespaced(vaultWith(vaultJWTSA("https://oidc.eks.example/id/ABC"))), learned, "spec.provider.vault.auth.jwt.kubernetesServiceAccountToken.serviceAccountRef.audiences[0]"},
		{"learned audience is refused in a cluster store too", cluster(vaultWith(vaultK8s("https://oidc.eks.example/id/ABC"))), learned, "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences[0]"},
		{"AWS web identity with the API server audience", cluster(awsWith(func(a *v1alpha1.AWSProvider) { a.Auth, a.Role = webIdentity("kubernetes.default.svc"), "r" })), IdentityPolicy{}, "spec.provider.aws.auth.jwt.serviceAccountRef.audiences[0]"},
		{"allowing ambient credentials does not allow the API server audience", namespaced(vaultWith(vaultK8s("https://kubernetes.default.svc"))), IdentityPolicy{AllowAmbientInNamespacedStores: true}, "audiences[0]"},
		{"no provider is not this check's business", namespaced(v1alpha1.StoreProvider{}), IdentityPolicy{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.policy.Check(c.store)
			if c.wantPath == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want an error naming %q", c.wantPath)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			// What reaches the store's condition keeps the field path.
			if msg := SafeMessage(err); !strings.Contains(msg, c.wantPath) {
				t.Errorf("SafeMessage = %q, want it to name %q", msg, c.wantPath)
			}
		})
	}
}

func TestPolicyOf(t *testing.T) {
	p := IdentityPolicy{AllowAmbientInNamespacedStores: true, APIServerAudiences: []string{"x"}}
	if got := PolicyOf(KubeClient{Policy: p}); !got.AllowAmbientInNamespacedStores || !slices.Equal(got.APIServerAudiences, []string{"x"}) {
		t.Errorf("PolicyOf(KubeClient) = %+v", got)
	}
	// A Kube without a policy gets the strict default, never an open one.
	if got := PolicyOf(noPolicyKube{}); got.AllowAmbientInNamespacedStores {
		t.Errorf("PolicyOf(other Kube) = %+v, want the strict default", got)
	}
}

type noPolicyKube struct{ Kube }

func TestServiceAccountTokenRefusesAPIServerAudiences(t *testing.T) {
	var sent [][]string
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		SubResourceCreate: func(_ context.Context, _ client.Client, sub string, _ client.Object, req client.Object, _ ...client.SubResourceCreateOption) error {
			tr := req.(*authenticationv1.TokenRequest)
			sent = append(sent, tr.Spec.Audiences)
			tr.Status.Token = "tok"
			return nil
		},
	}).Build()
	k := KubeClient{Reader: c, Writer: c, Policy: IdentityPolicy{APIServerAudiences: []string{"https://127.0.0.1:6443/"}}}
	cases := []struct {
		name      string
		audiences []string
		refused   bool
	}{
		{"no audiences (the API server would use its own)", nil, true},
		{"empty list", []string{}, true},
		{"well-known in-cluster name", []string{"https://kubernetes.default.svc"}, true},
		{"learned audience", []string{"vault", "https://127.0.0.1:6443"}, true},
		{"vault", []string{"vault"}, false},
		{"sts", []string{"sts.amazonaws.com"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sent = nil
			tok, err := k.ServiceAccountToken(context.Background(), "team-a", "app", tc.audiences, time.Hour)
			if tc.refused {
				if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(SafeMessage(err), "serviceAccountRef.audiences") {
					t.Fatalf("err = %v, want ErrInvalid naming serviceAccountRef.audiences", err)
				}
				if len(sent) != 0 {
					t.Fatalf("a TokenRequest was sent: %v", sent)
				}
				return
			}
			if err != nil || tok != "tok" || len(sent) != 1 || !slices.Equal(sent[0], tc.audiences) {
				t.Fatalf("tok=%q err=%v sent=%v", tok, err, sent)
			}
		})
	}
}

func jwtWith(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

func TestLearnAPIServerAudiences(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		content *string // nil: no file
		want    []string
		wantErr bool
	}{
		{"no token mounted", nil, nil, false},
		{"aud array", ptr(jwtWith(`{"aud":["https://kubernetes.default.svc.cluster.local","k3s"],"sub":"system:serviceaccount:x:y"}`) + "\n"), []string{"https://kubernetes.default.svc.cluster.local", "k3s"}, false},
		{"aud string", ptr(jwtWith(`{"aud":"https://oidc.example/abc"}`)), []string{"https://oidc.example/abc"}, false},
		{"no aud", ptr(jwtWith(`{"sub":"x"}`)), nil, true},
		{"not a JWT", ptr("garbage"), nil, true},
		{"payload not JSON", ptr("a.bm90IGpzb24.c"), nil, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "token"+string(rune('a'+i)))
			if c.content != nil {
				if err := os.WriteFile(path, []byte(*c.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := LearnAPIServerAudiences(path)
			if (err != nil) != c.wantErr || !slices.Equal(got, c.want) {
				t.Fatalf("LearnAPIServerAudiences = %v, %v; want %v, err %v", got, err, c.want, c.wantErr)
			}
			if err != nil && c.content != nil && strings.Contains(err.Error(), *c.content) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func TestParseAudiences(t *testing.T) {
	if got := ParseAudiences(" a, ,b,"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("ParseAudiences = %v", got)
	}
	if got := ParseAudiences(""); got != nil {
		t.Errorf("ParseAudiences(\"\") = %v", got)
	}
}

func ptr[T any](v T) *T { return &v }
