package secretstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/scheme"
)

// fakeProvider stands in for a backend: it validates everything, counts the clients
// built and answers Check with check (nil: at once).
type fakeProvider struct {
	name    string
	clients atomic.Int64
	checks  atomic.Int64
	check   func(ctx context.Context, server string) error
}

func (p *fakeProvider) Name() string                              { return p.name }
func (p *fakeProvider) ValidateStore(v1alpha1.GenericStore) error { return nil }
func (p *fakeProvider) NewClient(_ context.Context, store v1alpha1.GenericStore, _ provider.Kube, _ string) (provider.Client, error) {
	p.clients.Add(1)
	server := ""
	if v := store.GetSpec().Provider.Vault; v != nil {
		server = v.Server
	}
	return fakeClient{p: p, server: server}, nil
}

type fakeClient struct {
	p      *fakeProvider
	server string
}

func (fakeClient) GetSecret(context.Context, provider.Ref) (provider.Secret, error) {
	return provider.Secret{}, provider.ErrNotFound
}
func (fakeClient) Find(context.Context, provider.FindQuery) (map[string]provider.Secret, error) {
	return nil, nil
}
func (c fakeClient) Check(ctx context.Context) error {
	c.p.checks.Add(1)
	if c.p.check == nil {
		return nil
	}
	return c.p.check(ctx, c.server)
}
func (fakeClient) Close(context.Context) error { return nil }

type env struct {
	c     client.Client
	aws   *fakeProvider
	vault *fakeProvider
	r     *Reconciler
}

func newEnv(t *testing.T, policy provider.IdentityPolicy, kind func() v1alpha1.GenericStore, objs ...client.Object) *env {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithStatusSubresource(&v1alpha1.SecretStore{}, &v1alpha1.ClusterSecretStore{}).
		WithObjects(objs...).Build()
	e := &env{c: c, aws: &fakeProvider{name: "aws-secretsmanager"}, vault: &fakeProvider{name: "vault"}}
	reg := provider.NewRegistry(e.aws, e.vault)
	kube := provider.KubeClient{Reader: c, Writer: c, Policy: policy}
	e.r = &Reconciler{Client: c, Registry: reg, Fetcher: fetch.New(reg, kube, c, fetch.Options{}),
		Recheck: time.Minute, New: kind, Identity: policy, BackendTimeout: 5 * time.Second}
	return e
}

func namespacedKind() v1alpha1.GenericStore { return &v1alpha1.SecretStore{} }
func clusterKind() v1alpha1.GenericStore    { return &v1alpha1.ClusterSecretStore{} }

func (e *env) reconcile(t *testing.T, obj client.Object) (reconcile.Result, *metav1.Condition, error) {
	t.Helper()
	res, err := e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
	got := e.r.New()
	if gerr := e.c.Get(context.Background(), client.ObjectKeyFromObject(obj), got.(client.Object)); gerr != nil {
		t.Fatal(gerr)
	}
	return res, meta.FindStatusCondition(got.GetStatus().Conditions, v1alpha1.ConditionReady), err
}

func awsStore(ns string, mutate func(*v1alpha1.AWSProvider)) v1alpha1.SecretStoreSpec {
	p := &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceSecretsManager, Region: "eu-west-1"}
	mutate(p)
	return v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: p}}
}

func vaultK8sSpec(server string, aud ...string) v1alpha1.SecretStoreSpec {
	return v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: server,
		Auth: v1alpha1.VaultAuth{Kubernetes: &v1alpha1.VaultKubernetesAuth{Role: "app",
			ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app", Audiences: aud}}}}}}
}

func ss(ns, name string, spec v1alpha1.SecretStoreSpec) *v1alpha1.SecretStore {
	return &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1}, Spec: spec}
}

// readyBefore marks a store Ready for its generation, as a previous operator run left it.
func readyBefore(s *v1alpha1.SecretStore) *v1alpha1.SecretStore {
	s.Status.ObservedGeneration = s.Generation
	s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid,
		ObservedGeneration: s.Generation, LastTransitionTime: metav1.Now()}}
	return s
}

func TestReconcileIdentity(t *testing.T) {
	noAuth := func(*v1alpha1.AWSProvider) {}
	withRole := func(p *v1alpha1.AWSProvider) { p.Role = "arn:aws:iam::123456789012:role/app" }
	cases := []struct {
		name       string
		obj        client.Object
		kind       func() v1alpha1.GenericStore
		policy     provider.IdentityPolicy
		wantReason string
		wantInMsg  string
	}{
		{"namespaced AWS store without auth", ss("team-a", "s", awsStore("team-a", noAuth)), namespacedKind, provider.IdentityPolicy{},
			v1alpha1.ReasonInvalidSpec, "spec.provider.aws.auth: required in a namespaced SecretStore"},
		{"namespaced AWS role assumption without tenant credentials", ss("team-a", "s", awsStore("team-a", withRole)), namespacedKind, provider.IdentityPolicy{},
			v1alpha1.ReasonInvalidSpec, "spec.provider.aws.role"},
		{"a store Ready before the restart is not trusted when the policy refuses it", readyBefore(ss("team-a", "s", awsStore("team-a", noAuth))), namespacedKind, provider.IdentityPolicy{},
			v1alpha1.ReasonInvalidSpec, "spec.provider.aws.auth"},
		{"the operator allows ambient credentials", ss("team-a", "s", awsStore("team-a", withRole)), namespacedKind, provider.IdentityPolicy{AllowAmbientInNamespacedStores: true},
			v1alpha1.ReasonValid, ""},
		{"a ClusterSecretStore uses the operator's credentials", &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "c", Generation: 1}, Spec: awsStore("", withRole)}, clusterKind, provider.IdentityPolicy{},
			v1alpha1.ReasonValid, ""},
		{"Vault token for the API server's well-known audience", ss("team-a", "s", vaultK8sSpec("https://vault.example", "https://kubernetes.default.svc")), namespacedKind, provider.IdentityPolicy{},
			v1alpha1.ReasonInvalidSpec, "spec.provider.vault.auth.kubernetes.serviceAccountRef.audiences[0]"},
		{"Vault token for the API server's learned audience", ss("team-a", "s", vaultK8sSpec("https://vault.example", "vault", "https://oidc.example/cluster")), namespacedKind, provider.IdentityPolicy{APIServerAudiences: []string{"https://oidc.example/cluster"}},
			v1alpha1.ReasonInvalidSpec, "serviceAccountRef.audiences[1]"},
		{"Vault token with the default audience", ss("team-a", "s", vaultK8sSpec("https://vault.example")), namespacedKind, provider.IdentityPolicy{},
			v1alpha1.ReasonValid, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.policy, c.kind, c.obj)
			res, cond, err := e.reconcile(t, c.obj)
			if cond == nil || cond.Reason != c.wantReason || !strings.Contains(cond.Message, c.wantInMsg) {
				t.Fatalf("Ready = %+v, want reason %s naming %q", cond, c.wantReason, c.wantInMsg)
			}
			built := e.aws.clients.Load() + e.vault.clients.Load()
			if c.wantReason == v1alpha1.ReasonInvalidSpec {
				if err != nil || res.RequeueAfter != 0 {
					t.Errorf("InvalidSpec is terminal: res=%+v err=%v", res, err)
				}
				if built != 0 {
					t.Errorf("%d client(s) built for a refused store", built)
				}
			} else if built != 1 {
				t.Errorf("%d client(s) built, want 1", built)
			}
		})
	}
}

// The fetch layer applies the same policy: an ExternalSecret never gets a client for a
// store the policy refuses, even when the store's status still says Ready.
func TestFetcherRefusesWhatThePolicyRefuses(t *testing.T) {
	store := readyBefore(ss("team-a", "s", awsStore("team-a", func(*v1alpha1.AWSProvider) {})))
	e := newEnv(t, provider.IdentityPolicy{}, namespacedKind, store)
	_, err := e.r.Fetcher.For(context.Background(), store, "team-a")
	if !errors.Is(err, provider.ErrInvalid) || !strings.Contains(provider.SafeMessage(err), "spec.provider.aws.auth") {
		t.Fatalf("For = %v, want ErrInvalid naming spec.provider.aws.auth", err)
	}
	if n := e.aws.clients.Load(); n != 0 {
		t.Fatalf("%d client(s) built", n)
	}
}

func TestCheckIsBounded(t *testing.T) {
	store := ss("team-a", "hole", vaultK8sSpec("https://blackhole.example"))
	e := newEnv(t, provider.IdentityPolicy{}, namespacedKind, store)
	e.vault.check = func(ctx context.Context, _ string) error { <-ctx.Done(); return ctx.Err() }
	e.r.BackendTimeout = 100 * time.Millisecond
	start := time.Now()
	_, cond, err := e.reconcile(t, store)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("check took %s with a 100ms timeout", took)
	}
	if err == nil || cond == nil || cond.Reason != v1alpha1.ReasonBackendUnreachable || !strings.Contains(cond.Message, "did not answer within 100ms") {
		t.Fatalf("err=%v Ready=%+v, want a transient BackendUnreachable naming the timeout", err, cond)
	}
}

// A tenant's black-hole stores hold one worker at most: a second store of the same
// namespace waits (requeued, no backend call) while another namespace's store is
// checked at once.
func TestOneCheckInFlightPerNamespace(t *testing.T) {
	hole1 := ss("team-a", "hole1", vaultK8sSpec("https://blackhole.example"))
	hole2 := ss("team-a", "hole2", vaultK8sSpec("https://blackhole.example"))
	good := ss("team-b", "good", vaultK8sSpec("https://vault.example"))
	e := newEnv(t, provider.IdentityPolicy{}, namespacedKind, hole1, hole2, good)
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	e.vault.check = func(ctx context.Context, server string) error {
		if server != "https://blackhole.example" {
			return nil
		}
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(hole1)})
	}()
	<-entered

	res, cond, err := e.reconcile(t, hole2)
	if err != nil || res.RequeueAfter <= 0 || cond != nil {
		t.Fatalf("second store of a busy namespace: res=%+v err=%v Ready=%+v, want a quiet requeue", res, err, cond)
	}
	if n := e.vault.checks.Load(); n != 1 {
		t.Fatalf("%d backend checks, want only the first store's", n)
	}
	start := time.Now()
	_, cond, err = e.reconcile(t, good)
	if err != nil || cond == nil || cond.Reason != v1alpha1.ReasonValid || time.Since(start) > time.Second {
		t.Fatalf("other namespace: err=%v Ready=%+v after %s", err, cond, time.Since(start))
	}

	close(release)
	wg.Wait()
	// The slot is free again.
	if _, cond, err = e.reconcile(t, hole2); err != nil || cond == nil || cond.Reason != v1alpha1.ReasonValid {
		t.Fatalf("after release: err=%v Ready=%+v", err, cond)
	}
}

// Deleting a store forgets it: the NotFound path must keep working with the new code.
func TestDeletedStore(t *testing.T) {
	e := newEnv(t, provider.IdentityPolicy{}, namespacedKind)
	res, err := e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "x", Name: "gone"}})
	if err != nil || res != (reconcile.Result{}) {
		t.Fatalf("res=%+v err=%v", res, err)
	}
}
