package externalsecret

import (
	"context"
	"testing"
	"time"

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
