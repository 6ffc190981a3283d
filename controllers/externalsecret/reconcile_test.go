package externalsecret

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

func TestDecide(t *testing.T) {
	inSync := syncFacts{known: true, ready: true}
	with := func(f func(*syncFacts)) syncFacts { s := inSync; f(&s); return s }
	cases := []struct {
		name   string
		facts  syncFacts
		want   action
		bypass bool
	}{
		{"in sync, slot not come", inSync, skip, false},
		{"slot came", with(func(f *syncFacts) { f.slotDue = true }), refreshNow, false},
		{"first look after start-up, in sync: wait for the slot", with(func(f *syncFacts) { f.known = false }), waitForSlot, false},
		{"first look, not ready: repair now", with(func(f *syncFacts) { f.known, f.ready = false, false }), refreshNow, false},
		{"first look, new force-sync value set while down", with(func(f *syncFacts) { f.known, f.forced = false, true }), refreshNow, true},
		{"force-sync bypasses the cache", with(func(f *syncFacts) { f.forced = true }), refreshNow, true},
		{"spec changed", with(func(f *syncFacts) { f.specChanged = true }), refreshNow, false},
		{"target drifted", with(func(f *syncFacts) { f.drifted = true }), refreshNow, false},
		{"lease renewal due", with(func(f *syncFacts) { f.renewalDue = true }), refreshNow, false},
		{"first look, lease renewal due", with(func(f *syncFacts) { f.known, f.renewalDue = false, true }), refreshNow, false},
		{"issued credentials not written yet", with(func(f *syncFacts) { f.unwritten = true }), refreshNow, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide(c.facts)
			if d.action != c.want || d.bypassCache != c.bypass || d.why == "" {
				t.Fatalf("decide = %+v; want %v bypass=%v with a reason", d, c.want, c.bypass)
			}
			// Only a refresh the slot alone triggered takes per-key maxAges (slotMaxAges).
			if want := c.name == "slot came"; d.scheduled != want {
				t.Fatalf("scheduled = %v, want %v", d.scheduled, want)
			}
		})
	}
}

func TestSyncWritesOnceThenNothing(t *testing.T) {
	e := newEnv(t, kvES("app", "db"))
	e.backend.Put("db", []byte("s3cret"), nil)
	if _, err := e.reconcile("app"); err != nil {
		t.Fatal(err)
	}
	if c := e.ready("app"); c == nil || c.Reason != v1alpha1.ReasonSynced {
		t.Fatalf("Ready = %+v", c)
	}
	if s := e.secret("app"); s == nil || string(s.Data["value"]) != "s3cret" {
		t.Fatalf("target = %+v", s)
	}
	before := len(e.writes)
	total := func() (n int) {
		for _, v := range e.writes {
			n += v
		}
		return n
	}
	n := total()
	if _, err := e.reconcile("app"); err != nil {
		t.Fatal(err)
	}
	if total() != n || len(e.writes) != before {
		t.Fatalf("an unchanged reconcile wrote: %v", e.writes)
	}
}

func TestForceSync(t *testing.T) {
	cases := []struct {
		name      string
		observed  string // status.observedForceSync before
		value     string // annotation
		restart   bool
		wantReads int64
	}{
		{"new value set while the operator was down", "1", "2", true, 1},
		{"value already handled before the restart", "2", "2", true, 0},
		{"new value while running", "1", "2", false, 1},
		{"annotation removed", "2", "", false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, kvES("app", "db"))
			e.backend.Put("db", []byte("v1"), nil)
			if _, err := e.reconcile("app"); err != nil {
				t.Fatal(err)
			}
			es := e.es("app")
			orig := es.DeepCopy()
			es.Status.ObservedForceSync = c.observed
			if err := e.c.Status().Patch(context.Background(), es, client.MergeFrom(orig)); err != nil {
				t.Fatal(err)
			}
			if c.restart {
				e.restart()
			}
			es = e.es("app")
			orig = es.DeepCopy()
			if c.value != "" {
				es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: c.value}
			}
			if err := e.c.Patch(context.Background(), es, client.MergeFrom(orig)); err != nil {
				t.Fatal(err)
			}
			e.backend.Put("db", []byte("v2"), nil)
			reads := e.backend.Gets.Load() + e.backend.Batches.Load()
			for range 3 { // exactly one refresh, however often it is reconciled
				if _, err := e.reconcile("app"); err != nil {
					t.Fatal(err)
				}
			}
			if got := e.backend.Gets.Load() + e.backend.Batches.Load() - reads; got != c.wantReads {
				t.Fatalf("backend reads = %d, want %d", got, c.wantReads)
			}
			if c.wantReads == 1 {
				if got := e.es("app").Status.ObservedForceSync; got != c.value {
					t.Fatalf("observedForceSync = %q, want %q", got, c.value)
				}
				if v := string(e.secret("app").Data["value"]); v != "v2" {
					t.Fatalf("target not refreshed")
				}
			}
		})
	}
}

// TestForceSyncFailure: a force-sync whose refresh fails is recorded as observed
// (kubectl secretsync sync then reports the failure instead of waiting out its
// timeout), the Secret keeps its data, and the retry still reads the backend
// rather than the value read before the force.
func TestForceSyncFailure(t *testing.T) {
	e := newEnv(t, kvES("app", "db"))
	e.backend.Put("db", []byte("v1"), nil)
	mustReconcile(t, e, "app")
	e.forceSync("app", "2")
	e.backend.Fail(provider.Wrap(provider.ErrUnavailable, "503", nil))
	if _, err := e.reconcile("app"); err == nil {
		t.Fatal("a failed refresh returned no error (no retry)")
	}
	got := e.es("app")
	if got.Status.ObservedForceSync != "2" {
		t.Fatalf("observedForceSync = %q after a failed forced refresh, want 2", got.Status.ObservedForceSync)
	}
	if c := e.ready("app"); c == nil || c.Status != metav1.ConditionFalse {
		t.Fatalf("Ready = %+v, want False", c)
	}
	if v := string(e.secret("app").Data["value"]); v != "v1" {
		t.Fatalf("the failure changed the Secret: %q", v)
	}
	e.backend.Fail(nil)
	e.backend.Put("db", []byte("v2"), nil)
	reads := e.backend.Gets.Load() + e.backend.Batches.Load()
	for range 3 { // the retry reads once, then nothing more is due
		if _, err := e.reconcile("app"); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.backend.Gets.Load() + e.backend.Batches.Load() - reads; n != 1 {
		t.Fatalf("backend reads after recovery = %d, want 1", n)
	}
	if v := string(e.secret("app").Data["value"]); v != "v2" {
		t.Fatalf("the retry took the value read before the force: %q", v)
	}
}

// TestForceSyncConflictStaysForced: a forced refresh whose Secret write lost an
// optimistic-lock race records nothing, and its quick retry still reads the backend.
func TestForceSyncConflictStaysForced(t *testing.T) {
	e := newEnv(t, kvES("app", "db"))
	e.backend.Put("db", []byte("v1"), nil)
	mustReconcile(t, e, "app")
	e.forceSync("app", "2")
	e.backend.Put("db", []byte("v2"), nil)
	e.fail = func(verb string, obj client.Object) error {
		if _, ok := obj.(*corev1.Secret); ok && verb == "update" {
			return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, "app", nil)
		}
		return nil
	}
	mustReconcile(t, e, "app")
	if got := e.es("app").Status.ObservedForceSync; got != "" {
		t.Fatalf("a conflicted forced refresh recorded observedForceSync %q", got)
	}
	e.fail = nil
	reads := e.backend.Gets.Load() + e.backend.Batches.Load()
	mustReconcile(t, e, "app")
	if n := e.backend.Gets.Load() + e.backend.Batches.Load() - reads; n != 1 {
		t.Fatalf("the retry read the backend %d times, want 1 (still forced)", n)
	}
	if got := e.es("app").Status.ObservedForceSync; got != "2" {
		t.Fatalf("observedForceSync = %q after the retry, want 2", got)
	}
}

func TestKubernetesSideFailures(t *testing.T) {
	gr := schema.GroupResource{Resource: "secrets"}
	cases := []struct {
		name       string
		fail       func(verb string, obj client.Object) error
		existing   bool // the target exists (an update) before the failure
		wantReason string
		wantErr    bool
		wantEvent  bool
	}{
		{"create refused by the API server", func(verb string, obj client.Object) error {
			if verb == "create" && kindName(obj) == "Secret" {
				return apierrors.NewInternalError(context.DeadlineExceeded)
			}
			return nil
		}, false, v1alpha1.ReasonKubernetesError, true, true},
		{"update conflict is a quiet requeue", func(verb string, obj client.Object) error {
			if verb == "update" && kindName(obj) == "Secret" {
				return apierrors.NewConflict(gr, "app", context.Canceled)
			}
			return nil
		}, true, v1alpha1.ReasonSynced, false, false},
		{"update timeout", func(verb string, obj client.Object) error {
			if verb == "update" && kindName(obj) == "Secret" {
				return apierrors.NewTimeoutError("slow", 1)
			}
			return nil
		}, true, v1alpha1.ReasonKubernetesError, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, kvES("app", "db"))
			e.backend.Put("db", []byte("v1"), nil)
			if c.existing {
				if _, err := e.reconcile("app"); err != nil {
					t.Fatal(err)
				}
				e.backend.Put("db", []byte("v2"), nil)
				e.forceSync("app", "now") // read the backend, not the cache
				e.events()
			}
			e.fail = c.fail
			res, err := e.reconcile("app")
			if e.writes["update/Secret"]+e.writes["create/Secret"] == 0 {
				t.Fatal("the failing write was never attempted")
			}
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if !c.wantErr && res.RequeueAfter == 0 {
				t.Fatalf("no requeue after a conflict")
			}
			if got := e.ready("app"); got == nil || got.Reason != c.wantReason {
				t.Fatalf("Ready = %+v, want reason %s", got, c.wantReason)
			}
			if got := hasEvent(e.events(), "Warning"); got != c.wantEvent {
				t.Fatalf("warning event = %v, want %v", got, c.wantEvent)
			}
		})
	}
}

func TestStatusPatchOfDeletedObjectIsNotAnError(t *testing.T) {
	e := newEnv(t)
	es := kvES("gone", "db")
	if err := e.r.patchStatus(context.Background(), es, es.Status.DeepCopy(), failTerminal(v1alpha1.ReasonInvalidSpec, "x")); err != nil {
		t.Fatalf("patchStatus = %v", err)
	}
}
