package externalsecret

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// TestDeleteRevokesLeases: deletion revokes what was issued, waits (bounded) while
// the backend cannot revoke, and gives up only by the documented rule.
func TestDeleteRevokesLeases(t *testing.T) {
	down := provider.Wrap(provider.ErrUnavailable, "503", nil)
	cases := []struct {
		name string
		// before runs after the lease was issued and the delete was requested.
		before       func(e *env)
		wantReleased bool   // the finalizer is gone after one reconcile
		wantEvent    string // an event reason that must be recorded
		wantLive     int    // leases still live in the backend
		wantErr      bool
	}{
		{"revoked", func(e *env) {}, true, "1 lease(s) revoked", 0, false},
		{"backend down: pending, finalizer kept", func(e *env) { e.backend.FailRevoke(down) }, false, v1alpha1.EventRevocationPending, 1, true},
		{"backend down past the timeout: left to expire", func(e *env) {
			e.backend.FailRevoke(down)
			e.clock.Step(DefaultRevocationTimeout + time.Second)
		}, true, v1alpha1.EventLeaseLeftToExpire, 1, false},
		{"credentials gone: left to expire at once", func(e *env) {
			e.backend.FailRevoke(provider.ErrCredentials)
		}, true, v1alpha1.EventLeaseLeftToExpire, 1, false},
		{"store deleted: left to expire", func(e *env) {
			if err := e.c.Delete(context.Background(), readyStore("mem")); err != nil {
				e.t.Fatal(err)
			}
		}, true, v1alpha1.EventLeaseLeftToExpire, 1, false},
		{"store not ready: pending", func(e *env) {
			s := readyStore("mem")
			if err := e.c.Get(context.Background(), clientKey(s), s); err != nil {
				e.t.Fatal(err)
			}
			s.Status.Conditions[0].Status = "False"
			if err := e.c.Status().Update(context.Background(), s); err != nil {
				e.t.Fatal(err)
			}
		}, false, v1alpha1.EventRevocationPending, 1, true},
		{"lease already expired: nothing to revoke", func(e *env) { e.clock.Step(2 * time.Hour) }, true, "", 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, dynamicES("db", "database/creds/app"))
			e.backend.SetLeases(time.Hour, true)
			mustReconcile(t, e, "db") // adds the finalizer, issues the lease
			if got := len(e.backend.LiveLeases()); got != 1 {
				t.Fatalf("live leases after sync = %d", got)
			}
			if err := e.c.Delete(context.Background(), e.es("db")); err != nil {
				t.Fatal(err)
			}
			e.events()
			c.before(e)
			_, err := e.reconcile("db")
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			evs := e.events()
			if c.wantEvent != "" && !hasEvent(evs, c.wantEvent) {
				t.Fatalf("events %q lack %q", evs, c.wantEvent)
			}
			if c.wantEvent != "1 lease(s) revoked" && hasEvent(evs, "lease(s) revoked") {
				t.Fatalf("reported a revocation that did not happen: %q", evs)
			}
			if got := len(e.backend.LiveLeases()); got != c.wantLive {
				t.Fatalf("live leases = %d, want %d", got, c.wantLive)
			}
			released := !e.exists("db")
			if released != c.wantReleased {
				t.Fatalf("finalizer released = %v, want %v", released, c.wantReleased)
			}
		})
	}
}

// TestDeletePendingThenRecovers: a backend outage during deletion delays the
// revocation; once it is back the lease is revoked and only then is the object gone.
func TestDeletePendingThenRecovers(t *testing.T) {
	e := newEnv(t, dynamicES("db", "database/creds/app"))
	mustReconcile(t, e, "db")
	if err := e.c.Delete(context.Background(), e.es("db")); err != nil {
		t.Fatal(err)
	}
	e.backend.FailRevoke(provider.Wrap(provider.ErrUnavailable, "503", nil))
	for range 3 {
		if _, err := e.reconcile("db"); err == nil {
			t.Fatal("pending revocation returned no error (no backoff)")
		}
	}
	if n := countEvents(e.events(), v1alpha1.EventRevocationPending); n != 1 {
		t.Fatalf("RevocationPending events = %d, want 1 for one cause", n)
	}
	e.backend.FailRevoke(nil)
	mustReconcile(t, e, "db")
	if e.exists("db") || len(e.backend.LiveLeases()) != 0 {
		t.Fatalf("after recovery: exists=%v live=%v", e.exists("db"), e.backend.LiveLeases())
	}
}

// TestDeleteUsesTheSyncLeaseSource: a lease renewed or re-issued moments before the
// delete may not be in the cached status yet; deletion revokes what sync recorded.
func TestDeleteUsesTheSyncLeaseSource(t *testing.T) {
	e := newEnv(t, dynamicES("db", "database/creds/app"))
	mustReconcile(t, e, "db")
	es := e.es("db")
	stale := es.DeepCopy()
	stale.Status.Leases = nil // what a stale cache would show
	e.r.mem.put(es.UID, memory{leases: es.Status.Leases})
	if !controllerutil.ContainsFinalizer(stale, v1alpha1.FinalizerLeases) {
		t.Fatal("no finalizer")
	}
	now := metaNow(e)
	stale.DeletionTimestamp = &now
	if _, err := e.r.reconcileDelete(context.Background(), stale); err != nil {
		t.Fatal(err)
	}
	if live := e.backend.LiveLeases(); len(live) != 0 {
		t.Fatalf("leaked %v", live)
	}
}

func mustReconcile(t *testing.T, e *env, name string) {
	t.Helper()
	if _, err := e.reconcile(name); err != nil {
		t.Fatal(err)
	}
}

func countEvents(evs []string, substr string) int {
	n := 0
	for _, ev := range evs {
		if contains(ev, substr) {
			n++
		}
	}
	return n
}

// TestDeleteMergeRemovesOnlyItsKeys: deleting a Merge ExternalSecret removes the keys
// it wrote (api.md: "removing one removes only its keys"), keeps the Secret, the
// user's keys and another writer's keys; an API failure keeps the finalizer and
// the keys until a retry succeeds; credentials leave the Secret before their lease
// is revoked.
func TestDeleteMergeRemovesOnlyItsKeys(t *testing.T) {
	merge := func(es *v1alpha1.ExternalSecret, key string) *v1alpha1.ExternalSecret {
		es.Spec.Target = v1alpha1.Target{Name: "shared", CreationPolicy: v1alpha1.CreationMerge}
		if len(es.Spec.Data) > 0 {
			es.Spec.Data[0].SecretKey = key
		}
		return es
	}
	for _, c := range []struct {
		name      string
		a         *v1alpha1.ExternalSecret
		failFirst bool     // the first update of the Secret during deletion fails
		gone      []string // a's keys, removed
	}{
		{"kv keys", merge(kvES("a", "ka"), "a-key"), false, []string{"a-key"}},
		{"an API failure is retried", merge(kvES("a", "ka"), "a-key"), true, []string{"a-key"}},
		{"dynamic credentials, lease revoked after", merge(dynamicES("a", "database/creds/app"), ""), false, []string{"username", "password"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			shared := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "shared"}, Data: map[string][]byte{"own": []byte("x")}}
			e := newEnv(t, shared, c.a, merge(kvES("b", "kb"), "b-key"))
			e.backend.Put("ka", []byte("1"), nil)
			e.backend.Put("kb", []byte("2"), nil)
			e.backend.SetLeases(time.Hour, true)
			mustReconcile(t, e, "a")
			mustReconcile(t, e, "b")
			before := e.secret("shared")
			for _, k := range append([]string{"own", "b-key"}, c.gone...) {
				if _, ok := before.Data[k]; !ok {
					t.Fatalf("before the delete: key %q missing, keys %v", k, sortedKeys(before.Data))
				}
			}
			if !controllerutil.ContainsFinalizer(e.es("a"), v1alpha1.FinalizerMergedKeys) {
				t.Fatal("a Merge ExternalSecret has no merged-keys finalizer")
			}
			if err := e.c.Delete(context.Background(), e.es("a")); err != nil {
				t.Fatal(err)
			}
			if c.failFirst {
				e.fail = func(verb string, obj client.Object) error {
					if _, ok := obj.(*corev1.Secret); ok && verb == "update" {
						return apierrors.NewServiceUnavailable("etcd down")
					}
					return nil
				}
				if _, err := e.reconcile("a"); err == nil {
					t.Fatal("a failed key removal returned no error (no backoff)")
				}
				if !e.exists("a") || len(e.secret("shared").Data) != len(before.Data) {
					t.Fatal("a failed key removal released the ExternalSecret or changed the Secret")
				}
				e.fail = nil
			}
			mustReconcile(t, e, "a")
			if e.exists("a") {
				t.Fatal("the ExternalSecret is still there")
			}
			after := e.secret("shared")
			if after == nil {
				t.Fatal("the Secret was deleted")
			}
			for _, k := range c.gone {
				if _, ok := after.Data[k]; ok {
					t.Errorf("key %q of the deleted ExternalSecret is still in the Secret", k)
				}
			}
			if string(after.Data["own"]) != "x" || string(after.Data["b-key"]) != "2" {
				t.Errorf("other keys changed: %v", sortedKeys(after.Data))
			}
			if w := mergeWriters(after); len(w) != 1 || len(w["b"]) != 1 {
				t.Errorf("writers annotation %v, want b alone", w)
			}
			if live := e.backend.LiveLeases(); len(live) != 0 {
				t.Errorf("leases left: %v", live)
			}
		})
	}
}

// TestDeleteMergeNeverWritesARefusedSecret: the writers' annotation is the tenant's
// to edit; claiming a token Secret's key in it does not make the operator remove
// that key when the Merge ExternalSecret is deleted.
func TestDeleteMergeNeverWritesARefusedSecret(t *testing.T) {
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "sa-token",
		Annotations: map[string]string{annotationMergeKeys: `{"a":["token"]}`}},
		Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{"token": []byte("t")}}
	es := kvES("a", "ka")
	es.Spec.Target = v1alpha1.Target{Name: "sa-token", CreationPolicy: v1alpha1.CreationMerge}
	e := newEnv(t, token, es)
	e.backend.Put("ka", []byte("1"), nil)
	_, _ = e.reconcile("a") // refused: Merge never writes a token Secret
	if !controllerutil.ContainsFinalizer(e.es("a"), v1alpha1.FinalizerMergedKeys) {
		t.Fatal("no merged-keys finalizer")
	}
	if err := e.c.Delete(context.Background(), e.es("a")); err != nil {
		t.Fatal(err)
	}
	e.writes = map[string]int{}
	mustReconcile(t, e, "a")
	if e.exists("a") {
		t.Fatal("the ExternalSecret is still there")
	}
	if string(e.secret("sa-token").Data["token"]) != "t" || e.writes["update/Secret"] != 0 {
		t.Fatalf("the token Secret was written on deletion: writes %v", e.writes)
	}
}
