package externalsecret

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// inSync marks es as the status of an earlier successful refresh leaves it.
func inSync(es *v1alpha1.ExternalSecret) *v1alpha1.ExternalSecret {
	es.Status.ObservedGeneration = es.Generation
	es.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSynced, LastTransitionTime: metav1.Now()}}
	return es
}

func TestSeedable(t *testing.T) {
	now := metav1.Now()
	cases := []struct {
		name   string
		change func(*v1alpha1.ExternalSecret)
		want   bool
	}{
		{"in sync", func(*v1alpha1.ExternalSecret) {}, true},
		{"explicit Periodic", func(es *v1alpha1.ExternalSecret) { es.Spec.RefreshPolicy = v1alpha1.RefreshPeriodic }, true},
		{"force-sync already handled", func(es *v1alpha1.ExternalSecret) {
			es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "1"}
			es.Status.ObservedForceSync = "1"
		}, true},
		{"not Ready", func(es *v1alpha1.ExternalSecret) { es.Status.Conditions[0].Status = metav1.ConditionFalse }, false},
		{"spec changed while down", func(es *v1alpha1.ExternalSecret) { es.Generation = 2 }, false},
		{"force-sync pending", func(es *v1alpha1.ExternalSecret) {
			es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "2"}
		}, false},
		{"OnChange", func(es *v1alpha1.ExternalSecret) { es.Spec.RefreshPolicy = v1alpha1.RefreshOnChange }, false},
		{"CreatedOnce", func(es *v1alpha1.ExternalSecret) { es.Spec.RefreshPolicy = v1alpha1.RefreshCreatedOnce }, false},
		{"being deleted", func(es *v1alpha1.ExternalSecret) { es.DeletionTimestamp = &now }, false},
		{"interval 0", func(es *v1alpha1.ExternalSecret) { es.Spec.RefreshInterval = &metav1.Duration{} }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := inSync(kvES("a", "k1"))
			c.change(es)
			if got := seedable(es); got != c.want {
				t.Fatalf("seedable = %v, want %v", got, c.want)
			}
		})
	}
}

// TestSeedReadsAheadBeforeReconcile: after a restart the keys of an ExternalSecret in
// sync are read ahead of its slot although no reconcile has run yet; one whose store
// does not resolve, or that is not in sync, has nothing read for it.
func TestSeedReadsAheadBeforeReconcile(t *testing.T) {
	e := newEnv(t, inSync(kvES("a", "k1")), inSync(kvES("b", "k2")), kvES("c", "k3"))
	e.fetchOnFakeClock()
	b := e.es("b")
	b.Spec.SecretStoreRef.Name = "missing"
	if err := e.c.Update(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	e.writes = map[string]int{}
	for _, k := range []string{"k1", "k2", "k3"} {
		e.backend.Put(k, []byte("v-"+k), nil)
	}
	e.r.seed(context.Background())

	es := e.es("a")
	slot := earliest(keySlots(es, e.clock.Now(), time.Hour, afterStart))
	// A lone key goes part-full within a second of its due time: step to just before
	// that, then half a second at a time up to the slot. No reconcile runs.
	e.clock.SetTime(slot.Add(-3 * time.Second))
	for e.clock.Now().Before(slot) && e.backend.KeyCalls("k1") == 0 {
		e.clock.Step(500 * time.Millisecond)
		waitQuiet(func() bool { return e.backend.KeyCalls("k1") > 0 })
	}
	if n := e.backend.KeyCalls("k1"); n != 1 {
		t.Fatalf("k1 read %d times before its slot, want 1 (read ahead from the seed)", n)
	}
	if n := e.backend.KeyCalls("k2") + e.backend.KeyCalls("k3"); n != 0 {
		t.Fatalf("keys of ExternalSecrets not seeded were read %d times", n)
	}
	if len(e.writes) != 0 {
		t.Fatalf("seeding wrote to the API server: %v", e.writes)
	}
}

// waitQuiet gives the scheduler goroutine a moment (real time, bounded) to act on a
// fake-clock step: it returns as soon as done() holds, or after 500 ms (generous: a
// loaded CI machine may not schedule the goroutine for tens of milliseconds).
func waitQuiet(done func() bool) {
	for i := 0; i < 500 && !done(); i++ {
		time.Sleep(time.Millisecond)
	}
}

// syncedCache is a cache whose informers have all synced.
type syncedCache struct{ cache.Cache }

func (syncedCache) WaitForCacheSync(context.Context) bool { return true }

// TestSeederSaysSynced: the start-up pass ends with StartupSynced (main ends the
// start-up GOGC there), once, after the seed.
func TestSeederSaysSynced(t *testing.T) {
	e := newEnv(t, inSync(kvES("a", "k1")))
	e.fetchOnFakeClock()
	calls := 0
	e.r.StartupSynced = func() { calls++ }
	if err := (seeder{r: e.r, cache: syncedCache{}}).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("StartupSynced called %d times, want 1", calls)
	}
}
