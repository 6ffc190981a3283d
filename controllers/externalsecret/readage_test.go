package externalsecret

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

func TestReadAge(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		created  time.Duration // before now; 0: no creationTimestamp
		observed int64
		interval time.Duration
		want     time.Duration
	}{
		{"synced before: the cache window", 40 * time.Second, 1, time.Minute, 30 * time.Second},
		{"new, reached at once", 0, 0, time.Minute, 30 * time.Second},
		{"new, reached 40 s after creation", 40 * time.Second, 0, time.Minute, 70 * time.Second},
		{"new, reached an hour after creation: capped", time.Hour, 0, time.Minute, 5 * time.Minute},
		{"new, one-hour interval: the window is already the cap", 40 * time.Second, 0, time.Hour, 5 * time.Minute},
		{"clock behind creation: the window", -5 * time.Second, 0, time.Minute, 30 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := kvES("a", "k")
			es.Spec.RefreshInterval = &metav1.Duration{Duration: c.interval}
			es.Status.ObservedGeneration = c.observed
			if c.created != 0 {
				es.CreationTimestamp = metav1.NewTime(now.Add(-c.created))
			}
			if got := readAge(es, now, c.interval); got != c.want {
				t.Fatalf("readAge = %v, want %v", got, c.want)
			}
		})
	}
}

// TestColdBurstSharesReads: new ExternalSecrets of one key reached by the work queue
// long after their creation share the first one's read, as long as it happened after
// their creation (minus a window); one created after that read reads again.
func TestColdBurstSharesReads(t *testing.T) {
	e := newEnv(t)
	e.fetchOnFakeClock()
	e.backend.Put("k", []byte("v1"), nil)
	t0 := e.clock.Now()
	create := func(name string, at time.Duration) {
		es := kvES(name, "k")
		es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Minute} // cache window 30 s
		// No refresh slots, so no read-ahead: every read counted is a reader's.
		es.Spec.RefreshPolicy = v1alpha1.RefreshOnChange
		es.CreationTimestamp = metav1.NewTime(t0.Add(at))
		if err := e.c.Create(context.Background(), es); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name      string
		create    time.Duration // creation, after t0
		reconcile time.Duration // first reconcile, after t0
		reads     int           // backend reads of k so far
	}{
		{"first of the burst reads", 0, 40 * time.Second, 1},
		{"created with it, reached 60 s later: shares", 0, 100 * time.Second, 1},
		{"created 20 s after that read, within a window: shares", 60 * time.Second, 150 * time.Second, 1},
		{"created after that read plus a window: reads", 75 * time.Second, 160 * time.Second, 2},
	}
	for i, st := range steps {
		name := string(rune('a' + i))
		create(name, st.create)
		e.clock.SetTime(t0.Add(st.reconcile))
		if err := e.reconcileStepping(name); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if c := e.ready(name); c == nil || c.Status != metav1.ConditionTrue {
			t.Fatalf("%s: not Ready: %+v", st.name, c)
		}
		if n := e.backend.KeyCalls("k"); n != st.reads {
			t.Fatalf("%s: %d reads of k, want %d", st.name, n, st.reads)
		}
	}
}

// reconcileStepping reconciles name while stepping the fake clock 10 ms at a time, so
// a backend call the fetch layer holds for its batch window (on the fake clock) goes.
// It steps only while something waits on the clock: on a loaded machine a reconcile
// that is merely slow must not see the fake time run ahead of it.
func (e *env) reconcileStepping(name string) error {
	done := make(chan error, 1)
	go func() { _, err := e.reconcile(name); done <- err }()
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Millisecond):
			if e.clock.HasWaiters() {
				e.clock.Step(10 * time.Millisecond)
			}
		}
	}
}
