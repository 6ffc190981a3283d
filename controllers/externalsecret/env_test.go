package externalsecret

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
	membackend "github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/scheme"
)

// The fast controller tests: the real Reconciler against controller-runtime's fake
// client and the memory backend, with a fake clock. Integration with a real API
// server and real backends is in test/e2e.

const testNS = "team"

type env struct {
	t       *testing.T
	c       client.Client
	backend *membackend.Backend
	clock   *clocktesting.FakeClock
	rec     *events.FakeRecorder
	r       *Reconciler
	writes  map[string]int // verb/kind -> count of API writes
	fail    func(verb string, obj client.Object) error
}

func newEnv(t *testing.T, objs ...client.Object) *env {
	t.Helper()
	e := &env{t: t, backend: membackend.New("vault"), clock: clocktesting.NewFakeClock(time.Now().Truncate(time.Second)), // the fake client stamps deletionTimestamp from the wall clock
		rec: events.NewFakeRecorder(100), writes: map[string]int{}}
	count := func(verb string, obj client.Object) error {
		e.writes[verb+"/"+kindName(obj)]++
		if e.fail != nil {
			return e.fail(verb, obj)
		}
		return nil
	}
	e.c = fake.NewClientBuilder().WithScheme(scheme.New()).
		WithStatusSubresource(&v1alpha1.ExternalSecret{}, &v1alpha1.SecretStore{}, &v1alpha1.ClusterSecretStore{}).
		WithObjects(append([]client.Object{readyStore("mem")}, objs...)...).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if err := count("create", obj); err != nil {
					return err
				}
				return c.Create(ctx, obj, opts...)
			},
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				if err := count("update", obj); err != nil {
					return err
				}
				return c.Update(ctx, obj, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
				if err := count("delete", obj); err != nil {
					return err
				}
				return c.Delete(ctx, obj, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				if err := count("status", obj); err != nil {
					return err
				}
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	reg := provider.NewRegistry(e.backend)
	kube := provider.KubeClient{Reader: e.c, Writer: e.c, Policy: provider.IdentityPolicy{AllowAmbientInNamespacedStores: true}}
	e.r = &Reconciler{Client: e.c, APIReader: e.c, Fetcher: fetch.New(reg, kube, e.c, fetch.Options{}),
		Recorder: e.rec, Hasher: &Hasher{Reader: e.c, Writer: e.c, Namespace: "secretsync-system"}, Clock: e.clock}
	return e
}

func kindName(obj client.Object) string {
	switch obj.(type) {
	case *corev1.Secret:
		return "Secret"
	case *v1alpha1.ExternalSecret:
		return "ExternalSecret"
	}
	return "other"
}

// fetchOnFakeClock gives the reconciler a fetch layer on the test's fake clock (its
// cache ages, batch windows and read-ahead follow e.clock); newEnv's runs on the wall
// clock so that tests not stepping the clock need not drive the scheduler.
func (e *env) fetchOnFakeClock() {
	e.r.Fetcher = fetch.New(provider.NewRegistry(e.backend), provider.KubeClient{Reader: e.c, Writer: e.c,
		Policy: provider.IdentityPolicy{AllowAmbientInNamespacedStores: true}}, e.c, fetch.Options{Clock: e.clock})
}

// restart drops everything the process remembers, as an operator restart does.
func (e *env) restart() {
	old := e.r
	e.r = &Reconciler{Client: old.Client, APIReader: old.APIReader, Fetcher: old.Fetcher, Recorder: old.Recorder,
		Hasher: old.Hasher, Clock: old.Clock, RevocationTimeout: old.RevocationTimeout}
}

func readyStore(name string) *v1alpha1.SecretStore {
	s := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, UID: "store-uid", Generation: 1},
		Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "http://vault.test"}}}}
	s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonValid, ObservedGeneration: 1, LastTransitionTime: metav1.Now()}}
	return s
}

// kvES reads key into the target's "value" key.
func kvES(name, key string) *v1alpha1.ExternalSecret {
	return &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, UID: types.UID("uid-" + name), Generation: 1},
		Spec: v1alpha1.ExternalSecretSpec{
			SecretStoreRef:  v1alpha1.StoreRef{Name: "mem"},
			RefreshInterval: &metav1.Duration{Duration: time.Hour},
			Data:            []v1alpha1.DataItem{{SecretKey: "value", RemoteRef: &v1alpha1.RemoteRef{Key: key}}},
		}}
}

// dynamicES issues credentials from path.
func dynamicES(name, path string) *v1alpha1.ExternalSecret {
	es := kvES(name, "")
	es.Spec.Data = nil
	es.Spec.DataFrom = []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: path}}}
	return es
}

func (e *env) reconcile(name string) (reconcile.Result, error) {
	e.t.Helper()
	return e.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Namespace: testNS, Name: name}})
}

func (e *env) es(name string) *v1alpha1.ExternalSecret {
	e.t.Helper()
	es := &v1alpha1.ExternalSecret{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: name}, es); err != nil {
		e.t.Fatalf("get ExternalSecret %s: %v", name, err)
	}
	return es
}

func (e *env) ready(name string) *metav1.Condition {
	e.t.Helper()
	return meta.FindStatusCondition(e.es(name).Status.Conditions, v1alpha1.ConditionReady)
}

func (e *env) secret(name string) *corev1.Secret {
	e.t.Helper()
	s := &corev1.Secret{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: name}, s); err != nil {
		return nil
	}
	return s
}

// events drains the recorded events.
func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func hasEvent(evs []string, substr string) bool {
	for _, ev := range evs {
		if strings.Contains(ev, substr) {
			return true
		}
	}
	return false
}

// forceSync sets the force-sync annotation.
func (e *env) forceSync(name, value string) {
	e.t.Helper()
	es := e.es(name)
	orig := es.DeepCopy()
	if es.Annotations == nil {
		es.Annotations = map[string]string{}
	}
	es.Annotations[v1alpha1.AnnotationForceSync] = value
	if err := e.c.Patch(context.Background(), es, client.MergeFrom(orig)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) exists(name string) bool {
	es := &v1alpha1.ExternalSecret{}
	return e.c.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: name}, es) == nil
}

func clientKey(o client.Object) client.ObjectKey { return client.ObjectKeyFromObject(o) }

func metaNow(e *env) metav1.Time { return metav1.NewTime(e.clock.Now()) }

func contains(s, substr string) bool { return strings.Contains(s, substr) }
