package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/testenv"
)

// syncEnv is one envtest + one operator backed by the in-memory provider
// (registered under the name "vault", so Vault-shaped stores select it).
type syncEnv struct {
	kube *testenv.Kube
	mem  *memory.Backend
	op   *Operator
}

func (e *syncEnv) ctx() context.Context { return context.Background() }

// sharedSync is the environment of the TestSync* tests.
var sharedSync = &Shared[syncEnv]{What: "envtest (kube-apiserver + etcd) for TestSync*", Start: func(tb testing.TB) *syncEnv {
	kube := testenv.StartKube(tb)
	env := &syncEnv{kube: kube, mem: memory.New("vault")}
	env.op = StartOperator(tb, kube, provider.NewRegistry(env.mem))
	return env
}}

// syncTest returns the shared environment and a new namespace holding the
// memory-backed SecretStore "mem". The namespace's ExternalSecrets are deleted
// when t ends, so their refreshes do not run on behind later tests, and a backend
// failure t injected is cleared.
func syncTest(t *testing.T) (*syncEnv, string) {
	t.Helper()
	env := sharedSync.Get(t)
	ns := env.namespace(t, nil)
	env.store(t, ns)
	return env, ns
}

// namespace creates a namespace with labels for t and cleans it up when t ends.
func (e *syncEnv) namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns := e.kube.Namespace(t, labels)
	t.Cleanup(func() {
		e.mem.Fail(nil)
		if err := e.kube.Client.DeleteAllOf(e.ctx(), &v1alpha1.ExternalSecret{}, client.InNamespace(ns)); err != nil {
			t.Errorf("delete ExternalSecrets in %s: %v", ns, err)
		}
	})
	return ns
}

// replaceOperator starts a new operator on the same backend in place of the
// shared one, which the caller stopped; the new one outlives t.
func (e *syncEnv) replaceOperator(t *testing.T) {
	t.Helper()
	suite.With(t, func(tb testing.TB) { e.op = StartOperator(tb, e.kube, provider.NewRegistry(e.mem)) })
}

func (e *syncEnv) store(t *testing.T, ns string) {
	t.Helper()
	c := e.kube.Client
	tok := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tok"}, StringData: map[string]string{"token": "t"}}
	must(t, c.Create(e.ctx(), tok))
	ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mem"}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "http://127.0.0.1:1",
			Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token"}}}}}}
	must(t, c.Create(e.ctx(), ss))
	Eventually(t, 20*time.Second, "store Ready", func() bool {
		_ = c.Get(e.ctx(), client.ObjectKeyFromObject(ss), ss)
		return meta.IsStatusConditionTrue(ss.Status.Conditions, v1alpha1.ConditionReady)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *syncEnv) es(t *testing.T, ns, name string, mutate func(*v1alpha1.ExternalSecret)) *v1alpha1.ExternalSecret {
	t.Helper()
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ExternalSecretSpec{
		SecretStoreRef: v1alpha1.StoreRef{Name: "mem"}}}
	mutate(es)
	must(t, e.kube.Client.Create(e.ctx(), es))
	return es
}

func remote(key, secretKey string) v1alpha1.DataItem {
	return v1alpha1.DataItem{SecretKey: secretKey, RemoteRef: &v1alpha1.RemoteRef{Key: key}}
}

// waitReason waits until the ExternalSecret's Ready condition has reason.
func (e *syncEnv) waitReason(t *testing.T, ns, name, reason string) *v1alpha1.ExternalSecret {
	t.Helper()
	return WaitESReason(t, e.kube.Client, 20*time.Second, ns, name, reason)
}

// syncedOld creates, in a new namespace with a store, ExternalSecret name reading
// remote key <ns>/k = "old" into key k, and waits until it is Synced.
func (e *syncEnv) syncedOld(t *testing.T, name string) (string, *v1alpha1.ExternalSecret) {
	t.Helper()
	ns := e.namespace(t, nil)
	e.store(t, ns)
	e.mem.Put(ns+"/k", []byte("old"), nil)
	es := e.es(t, ns, name, func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")} })
	e.waitReason(t, ns, name, v1alpha1.ReasonSynced)
	return ns, es
}

// forceSync sets the force-sync annotation of es to value.
func (e *syncEnv) forceSync(t *testing.T, es *v1alpha1.ExternalSecret, value string) {
	t.Helper()
	must(t, e.kube.Client.Get(e.ctx(), client.ObjectKeyFromObject(es), es))
	es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: value}
	must(t, e.kube.Client.Update(e.ctx(), es))
}

func (e *syncEnv) secret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	return GetSecret(t, e.kube.Client, ns, name)
}
