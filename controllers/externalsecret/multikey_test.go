package externalsecret

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
)

// fleet runs the Reconciler as the workqueue would, on the fake clock: every
// ExternalSecret is reconciled when its RequeueAfter has come, and the fetch layer
// (on the same clock) reads ahead in between. Time moves only once the fetch
// layer's scheduler has settled, so what the test sees never depends on the
// machine's speed.
type fleet struct {
	*env
	h   *fetch.Handle
	due map[string]time.Time // next reconcile per ExternalSecret
}

func newFleet(t *testing.T, start time.Time, objs ...client.Object) *fleet {
	t.Helper()
	e := newEnv(t, objs...)
	e.clock.SetTime(start)
	f := &fleet{env: e, due: map[string]time.Time{}}
	f.newFetcher()
	for _, o := range objs {
		f.due[o.GetName()] = start
	}
	return f
}

// newFetcher gives the reconciler a fetch layer on the fake clock, and keeps its
// handle of the store to see when its scheduler has settled.
func (f *fleet) newFetcher() {
	f.t.Helper()
	f.fetchOnFakeClock()
	store := &v1alpha1.SecretStore{}
	if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: testNS, Name: "mem"}, store); err != nil {
		f.t.Fatal(err)
	}
	h, err := f.r.Fetcher.For(context.Background(), store, testNS)
	if err != nil {
		f.t.Fatal(err)
	}
	f.h = h
}

func (f *fleet) settle() {
	f.t.Helper()
	// A reader's kick can make the scheduler read the clock just before this test
	// steps it (the reconcile runs beside the stepping): its timer is then set 1 ms
	// later than the wake time it records, and it stays parked past that time on a
	// timer the fake clock has not reached. A 1 ms step releases it; it is taken only
	// after the scheduler made no progress for a while.
	stuck := time.Now()
	deadline := stuck.Add(10 * time.Second)
	for !f.h.Settled() {
		if time.Now().After(deadline) {
			f.t.Fatal("the fetch layer never settles")
		}
		if time.Since(stuck) > 200*time.Millisecond {
			f.clock.Step(time.Millisecond)
			stuck = time.Now()
		}
		runtime.Gosched()
	}
}

// reconcile runs one reconcile, moving the clock by 1 ms steps only while it waits
// for a reader's batch window to pass (its own work takes no fake time), and records
// its requeue.
func (f *fleet) reconcile(name string) {
	f.t.Helper()
	type answer struct {
		after time.Duration
		err   error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := f.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Namespace: testNS, Name: name}})
		done <- answer{res.RequeueAfter, err}
	}()
	for i := 0; ; i++ {
		f.settle()
		runtime.Gosched()
		select {
		case a := <-done:
			if a.err != nil {
				f.t.Fatalf("reconcile %s: %v", name, a.err)
			}
			f.due[name] = f.clock.Now().Add(a.after)
			return
		default:
		}
		if i > 10_000_000 {
			f.t.Fatalf("reconcile %s never returns", name)
		}
		if f.h.ReadersWaiting() {
			f.clock.Step(time.Millisecond)
		}
	}
}

// runUntil reconciles whatever is due, in steps of step, until the clock reaches end.
func (f *fleet) runUntil(end time.Time, step time.Duration) {
	f.t.Helper()
	for {
		f.settle()
		for name, at := range f.due {
			if !f.clock.Now().Before(at) {
				f.reconcile(name)
			}
		}
		if !f.clock.Now().Before(end) {
			return
		}
		f.clock.Step(min(step, end.Sub(f.clock.Now())))
	}
}

func (f *fleet) writes() (n int) {
	for _, v := range f.env.writes {
		n += v
	}
	return n
}

// TestMultiKeyReadsEachKeyOncePerInterval: a 3-key ExternalSecret and three
// single-key ones over the same keys. Every key refreshes at its own slot, so the
// multi-key one needs no read of its own: after the first interval each distinct key
// is read once per interval (just ahead of its slot, shared by both readers), an
// unchanged interval writes nothing, and a changed value of the 2nd key reaches
// the multi-key ExternalSecret's Secret at that key's slot: the refresh at the 1st
// key's slot before it is served the value read ahead for the 2nd key's last slot.
// The interval (20 min) is longer than fetch's MaxCacheAge: values of expected keys
// stay in memory as long as the multi-key refreshes accept them.
func TestMultiKeyReadsEachKeyOncePerInterval(t *testing.T) {
	const interval = 20 * time.Minute
	// Slots in store ss/team/mem: k2 at :03:37, db at :08:38, k1 at :18:35 past each
	// 20 minutes (their hashes); db, the 2nd key, comes after k2's slot.
	keys := []string{"k2", "db", "k1"}
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC) // an interval boundary
	f := multiKeyFleet(t, start, interval, keys)
	const step = 250 * time.Millisecond // below the read-ahead's 1 s margin before a slot
	reads := func() map[string]int {
		m := map[string]int{}
		for _, k := range keys {
			m[k] = f.backend.KeyCalls(k)
		}
		return m
	}

	f.runUntil(start.Add(interval), step) // the first interval: first syncs
	for name := range f.due {
		if c := f.ready(name); c == nil || c.Reason != v1alpha1.ReasonSynced {
			t.Fatalf("%s: Ready = %+v", name, c)
		}
	}
	for i := 2; i <= 3; i++ {
		end := start.Add(time.Duration(i) * interval)
		before, w := reads(), f.writes()
		if i == 3 {
			// The 2nd key changes at the start of the interval; the multi-key
			// ExternalSecret shows the old value until that key's slot.
			f.backend.Put("db", []byte("db-v2"), nil)
			slot := nextSlot(f.clock.Now(), interval, "ss/"+testNS+"/mem\x00db", false)
			f.runUntil(slot.Add(-2*time.Second), step)
			if v := string(f.secret("multi").Data["db"]); v != "db-v1" {
				t.Fatalf("before db's slot the multi-key Secret has db = %q, want the value read ahead for db's last slot", v)
			}
			if got := f.writes() - w; got != 0 {
				t.Fatalf("%d writes before db's slot, want 0 (%v)", got, f.env.writes)
			}
			f.runUntil(slot.Add(time.Second), step)
			for _, name := range []string{"multi", "single-db"} {
				s := f.secret(name)
				v := s.Data["db"]
				if name == "single-db" {
					v = s.Data["value"]
				}
				if string(v) != "db-v2" {
					t.Fatalf("at db's slot %s has db = %q, want db-v2", name, v)
				}
			}
		}
		f.runUntil(end, step)
		after := reads()
		for _, k := range keys {
			if got := after[k] - before[k]; got != 1 {
				t.Fatalf("interval %d: key %s read %d times, want 1 (reads %v -> %v)", i, k, got, before, after)
			}
		}
		if got := f.writes() - w; i == 2 && got != 0 {
			t.Fatalf("interval %d: %d Kubernetes writes, want 0 (%v)", i, got, f.env.writes)
		}
	}
}

// TestMultiKeyMixAtTheFloor: the benchmark's mix at a small scale: 100
// ExternalSecrets over 30 keys, 20 of them reading 3–5 keys shared with the others,
// refreshing every minute. From the third interval on, every key is read exactly
// once per interval, in full batches (⌈30/10⌉ calls), and nothing is written.
func TestMultiKeyMixAtTheFloor(t *testing.T) {
	const interval, keys = time.Minute, 30
	start := time.Date(2026, 11, 30, 10, 0, 7, 0, time.UTC)
	key := func(i int) string { return fmt.Sprintf("bench/k%05d", i%keys) }
	var objs []client.Object
	for g := range 100 {
		es := kvES(fmt.Sprintf("es-%03d", g), key(g))
		if (g*7)%100 < 20 { // the benchmark's choice (test/bench benchKeys)
			for j := 1; j < 3+g%3; j++ {
				es.Spec.Data = append(es.Spec.Data, v1alpha1.DataItem{SecretKey: fmt.Sprintf("v%d", j), RemoteRef: &v1alpha1.RemoteRef{Key: key(g + j*(keys/5+1))}})
			}
		}
		es.Spec.RefreshInterval = &metav1.Duration{Duration: interval}
		objs = append(objs, es)
	}
	f := newFleet(t, start, objs...)
	for i := range keys {
		f.backend.Put(key(i), []byte("v"), nil)
	}
	f.runUntil(start.Add(2*interval), 250*time.Millisecond) // first syncs, then slots settle
	for round := 3; round <= 5; round++ {
		reads, w, calls := map[string]int{}, f.writes(), f.backend.Batches.Load()
		for i := range keys {
			reads[key(i)] = f.backend.KeyCalls(key(i))
		}
		f.runUntil(start.Add(time.Duration(round)*interval), 250*time.Millisecond)
		for k, n := range reads {
			if got := f.backend.KeyCalls(k) - n; got != 1 {
				t.Fatalf("interval %d: key %s read %d times, want 1", round, k, got)
			}
		}
		if got := f.backend.Batches.Load() - calls; got != keys/10 {
			t.Fatalf("interval %d: %d batch calls, want %d", round, got, keys/10)
		}
		if got := f.writes() - w; got != 0 {
			t.Fatalf("interval %d: %d Kubernetes writes, want 0 (%v)", round, got, f.env.writes)
		}
	}
}

// multiKeyFleet: ExternalSecret "multi" reads all keys, "single-<key>" one each, all
// every interval; every key holds "<key>-v1".
func multiKeyFleet(t *testing.T, start time.Time, interval time.Duration, keys []string) *fleet {
	t.Helper()
	multi := kvES("multi", "")
	multi.Spec.Data = nil
	for _, k := range keys {
		multi.Spec.Data = append(multi.Spec.Data, v1alpha1.DataItem{SecretKey: k, RemoteRef: &v1alpha1.RemoteRef{Key: k}})
	}
	objs := []client.Object{multi}
	for _, k := range keys {
		objs = append(objs, kvES("single-"+k, k))
	}
	for _, o := range objs {
		o.(*v1alpha1.ExternalSecret).Spec.RefreshInterval = &metav1.Duration{Duration: interval}
	}
	f := newFleet(t, start, objs...)
	for _, k := range keys {
		f.backend.Put(k, []byte(k+"-v1"), nil)
	}
	return f
}

// restart drops the process's memory and the fetch layer's cache, as an operator
// restart does, and makes every ExternalSecret due for its first look.
func (f *fleet) restart() {
	f.t.Helper()
	f.r.Fetcher.Forget(context.Background(), string(v1alpha1.KindSecretStore), testNS, "mem") // the old process's read-ahead stops
	f.env.restart()
	f.newFetcher()
	for name := range f.due {
		f.due[name] = f.clock.Now()
	}
}

// TestMultiKeyRestartReadsEachKeyOnce: after an operator restart mid-interval, the
// multi-key ExternalSecret's first refresh waits for the last of its keys' slots, so
// in the interval after the restart every key is still read exactly once (by the
// read-ahead, for its own slot) and nothing is written. At its earliest key's slot it
// would read the keys whose latest slot was before the restart (a restart herd).
func TestMultiKeyRestartReadsEachKeyOnce(t *testing.T) {
	const interval = 20 * time.Minute
	keys := []string{"k2", "db", "k1"} // slots :03:37, :08:38, :18:35 past each 20 minutes
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	f := multiKeyFleet(t, start, interval, keys)
	const step = 250 * time.Millisecond
	f.runUntil(start.Add(2*interval+5*time.Minute), step) // synced, then restart at :05
	f.restart()
	before, w := map[string]int{}, f.writes()
	for _, k := range keys {
		before[k] = f.backend.KeyCalls(k)
	}
	end := f.clock.Now().Add(interval)
	f.runUntil(end, step)
	for _, k := range keys {
		if got := f.backend.KeyCalls(k) - before[k]; got != 1 {
			t.Fatalf("key %s read %d times in the interval after the restart, want 1", k, got)
		}
	}
	if got := f.writes() - w; got != 0 {
		t.Fatalf("%d Kubernetes writes after the restart, want 0 (%v)", got, f.env.writes)
	}
}
