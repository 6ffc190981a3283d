package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/operator"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/provider/providertest"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
	"github.com/secretsync/secretsync/test/awsemu"
)

// secBackendTimeout is the operator's --backend-timeout in this test: short enough
// to watch a black-hole check end, long enough that a store checked "well under" it
// can only have been checked on another worker.
const secBackendTimeout = 10 * time.Second

// apiServerAudience asks the API server for a token with no audiences (as the
// kubelet does for a pod's own token) and learns its audience the way the operator
// does at start, from a token file.
func apiServerAudience(t *testing.T, kube *testenv.Kube, ns string) []string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}}
	if err := kube.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{}
	if err := kube.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(tr.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	aud, err := provider.LearnAPIServerAudiences(path)
	if err != nil || len(aud) == 0 {
		t.Fatalf("learn audiences: %v %v", aud, err)
	}
	return aud
}

func secStoreCond(t *testing.T, c client.Client, obj client.Object) *metav1.Condition {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		return nil
	}
	st := obj.(v1alpha1.GenericStore)
	if st.GetStatus().ObservedGeneration != st.GetGeneration() {
		return nil
	}
	return meta.FindStatusCondition(st.GetStatus().Conditions, v1alpha1.ConditionReady)
}

// secWaitStore waits until the store's Ready reason is reason and returns the condition.
func secWaitStore(t *testing.T, c client.Client, timeout time.Duration, obj client.Object, reason string) *metav1.Condition {
	t.Helper()
	var last *metav1.Condition
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if last = secStoreCond(t, c, obj); last != nil && last.Reason == reason {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %T %s reason %s; last Ready condition: %+v", timeout,
		obj, client.ObjectKeyFromObject(obj), reason, last)
	return nil
}

func TestSecurityIdentity(t *testing.T) {
	kube := testenv.StartKube(t)
	c := kube.Client
	ctx := context.Background()
	emu := awsemu.NewTestServer(t, awsemu.Options{})
	akid, secret := emu.StaticCredentials()
	admin := sm.NewFromConfig(awssdk.Config{Region: "eu-west-1", BaseEndpoint: awssdk.String(emu.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")})
	putSecret := func(name, value string) {
		t.Helper()
		if _, err := admin.CreateSecret(ctx, &sm.CreateSecretInput{Name: awssdk.String(name), SecretString: awssdk.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	// The operator's own ("ambient") AWS identity: the default credential chain finds
	// the emulator's keys in the environment, so borrowing it would really work.
	t.Setenv("AWS_ACCESS_KEY_ID", akid)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)

	aud := apiServerAudience(t, kube, kube.Namespace(t, nil))
	fast := awsp.Options{MaxAttempts: 2, MaxBackoff: 20 * time.Millisecond, Timeout: secBackendTimeout}
	reg := provider.NewRegistry(secretsmanager.NewWithOptions(fast), parameterstore.NewWithOptions(fast), vault.New(vault.WithTimeout(secBackendTimeout)))
	StartOperator(t, kube, reg, func(o *operator.Options) {
		o.BackendTimeout = secBackendTimeout
		o.APIServerAudiences = aud
	})

	awsStore := func(ns, name string, mutate func(*v1alpha1.AWSProvider)) *v1alpha1.SecretStore {
		p := &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceSecretsManager, Region: "eu-west-1", Endpoint: emu.URL()}
		mutate(p)
		s := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: p}}}
		must(t, c.Create(ctx, s))
		return s
	}
	staticKeys := func(ns string) func(*v1alpha1.AWSProvider) {
		must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "aws-creds"},
			StringData: map[string]string{"id": akid, "secret": secret}}))
		return func(p *v1alpha1.AWSProvider) {
			p.Auth = &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
				AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "id"},
				SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "secret"},
			}}
		}
	}
	externalSecret := func(ns, name string, ref v1alpha1.StoreRef, key string) {
		must(t, c.Create(ctx, &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ExternalSecretSpec{
			SecretStoreRef: ref, Data: []v1alpha1.DataItem{{SecretKey: "v", RemoteRef: &v1alpha1.RemoteRef{Key: key}}}}}))
	}

	t.Run("a namespaced AWS store without auth does not borrow the operator's identity", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		putSecret(ns+"/db", "borrowed")
		cases := []struct {
			store  string
			mutate func(*v1alpha1.AWSProvider)
			inMsg  string
		}{
			{"no-auth", func(*v1alpha1.AWSProvider) {}, "spec.provider.aws.auth: required in a namespaced SecretStore"},
			{"role-no-auth", func(p *v1alpha1.AWSProvider) { p.Role = "arn:aws:iam::123456789012:role/app" }, "spec.provider.aws.role"},
		}
		for _, tc := range cases {
			s := awsStore(ns, tc.store, tc.mutate)
			cond := secWaitStore(t, c, 30*time.Second, s, v1alpha1.ReasonInvalidSpec)
			if cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, tc.inMsg) {
				t.Errorf("store %s: Ready = %+v, want False naming %q", tc.store, cond, tc.inMsg)
			}
			externalSecret(ns, tc.store, v1alpha1.StoreRef{Name: tc.store}, ns+"/db")
			WaitESReason(t, c, 30*time.Second, ns, tc.store, v1alpha1.ReasonStoreNotReady)
		}
		// Give a wrongly built client time to sync anyway: still no data.
		LetTimePass(t, 2*time.Second, "a wrongly built client would have synced by now")
		for _, tc := range cases {
			if s := GetSecret(t, c, ns, tc.store); s != nil {
				t.Errorf("Secret %s/%s was written from a store without auth: %v", ns, tc.store, s.Data)
			}
		}

		// The same store made by the platform team as a ClusterSecretStore uses the
		// operator's identity, as documented.
		css := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "ambient-" + ns}, Spec: v1alpha1.SecretStoreSpec{
			Provider:   v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceSecretsManager, Region: "eu-west-1", Endpoint: emu.URL()}},
			Conditions: []v1alpha1.StoreCondition{{Namespaces: []string{ns}}}}}
		must(t, c.Create(ctx, css))
		t.Cleanup(func() { _ = c.Delete(context.Background(), css) })
		secWaitStore(t, c, 30*time.Second, css, v1alpha1.ReasonValid)
		externalSecret(ns, "cluster", v1alpha1.StoreRef{Name: css.Name, Kind: v1alpha1.KindClusterSecretStore}, ns+"/db")
		WaitESReason(t, c, 30*time.Second, ns, "cluster", v1alpha1.ReasonSynced)
	})

	t.Run("a store asking for a token with the API server's audience is InvalidSpec", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		must(t, c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}))
		vaultK8s := func(name string, audiences ...string) *v1alpha1.SecretStore {
			s := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{
				Vault: &v1alpha1.VaultProvider{Server: "http://127.0.0.1:1", Auth: v1alpha1.VaultAuth{Kubernetes: &v1alpha1.VaultKubernetesAuth{
					Role: "app", ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app", Audiences: audiences}}}}}}}
			must(t, c.Create(ctx, s))
			return s
		}
		cases := []struct {
			store *v1alpha1.SecretStore
			inMsg string
		}{
			// The audience this API server actually accepts, learned from a token.
			{vaultK8s("learned", "vault", aud[0]), "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences[1]"},
			{vaultK8s("well-known", "https://kubernetes.default.svc"), "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences[0]"},
			{awsStore(ns, "irsa", func(p *v1alpha1.AWSProvider) {
				p.Role = "arn:aws:iam::123456789012:role/app"
				p.Auth = &v1alpha1.AWSAuth{JWT: &v1alpha1.AWSJWTAuth{ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app", Audiences: aud}}}
			}), "spec.provider.aws.auth.jwt.serviceAccountRef.audiences[0]"},
		}
		for _, tc := range cases {
			cond := secWaitStore(t, c, 30*time.Second, tc.store, v1alpha1.ReasonInvalidSpec)
			if !strings.Contains(cond.Message, tc.inMsg) || !strings.Contains(cond.Message, "audience of the Kubernetes API server") {
				t.Errorf("store %s: Ready = %+v, want a message naming %q", tc.store.Name, cond, tc.inMsg)
			}
		}
	})

	t.Run("a tenant's black-hole stores do not stall another tenant's store", func(t *testing.T) {
		hole := providertest.NewBlackHole(t)
		nsA, nsB := kube.Namespace(t, nil), kube.Namespace(t, nil)
		must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "tok"}, StringData: map[string]string{"token": "t"}}))
		// More black holes than the store controller has workers.
		var holes []*v1alpha1.SecretStore
		for i := range 6 {
			s := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: fmt.Sprintf("hole-%d", i)}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{
				Vault: &v1alpha1.VaultProvider{Server: hole.URL(), Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token"}}}}}}
			must(t, c.Create(ctx, s))
			holes = append(holes, s)
		}
		Eventually(t, 10*time.Second, "a check connected to the black hole", func() bool { return hole.Accepted() > 0 })

		putSecret(nsB+"/db", "b-value")
		start := time.Now()
		b := awsStore(nsB, "aws", staticKeys(nsB))
		externalSecret(nsB, "db", v1alpha1.StoreRef{Name: "aws"}, nsB+"/db")
		// Well under the backend timeout: B cannot have waited for a black-hole check.
		bound := secBackendTimeout / 2
		secWaitStore(t, c, bound, b, v1alpha1.ReasonValid)
		WaitESReason(t, c, max(bound-time.Since(start), 100*time.Millisecond), nsB, "db", v1alpha1.ReasonSynced)
		if s := GetSecret(t, c, nsB, "db"); s == nil || string(s.Data["v"]) != "b-value" {
			t.Fatalf("namespace B's Secret = %+v", s)
		}
		t.Logf("namespace B synced %s after its store was created, with %d black-hole connections open", time.Since(start).Round(time.Millisecond), hole.Accepted())

		// The first black-hole check ends at the backend timeout, as a transient
		// failure; until then it was the only one of namespace A (one worker at most).
		var failed *metav1.Condition
		Eventually(t, secBackendTimeout+15*time.Second, "a black-hole store BackendUnreachable", func() bool {
			for _, h := range holes {
				if cond := secStoreCond(t, c, h); cond != nil && cond.Reason == v1alpha1.ReasonBackendUnreachable {
					failed = cond
					return true
				}
			}
			return false
		})
		if n := hole.Accepted(); n > 2 {
			t.Errorf("%d connections to the black hole within one backend timeout: namespace A held more than one worker", n)
		}
		if failed.Status != metav1.ConditionFalse || !strings.Contains(failed.Message, "did not answer within "+secBackendTimeout.String()) {
			t.Errorf("black-hole store: %+v", failed)
		}
	})
}
