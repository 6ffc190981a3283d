package externalsecret

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
)

func TestNextSlot(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		interval time.Duration
	}{
		{"one minute", time.Minute},
		{"one hour", time.Hour},
		{"odd interval", 7*time.Minute + 13*time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for i := 0; i < 50; i++ {
				now := t0.Add(time.Duration(i) * 17 * time.Second)
				n := nextSlot(now, c.interval, "ss/ns/store\x00key-a", true)
				if d := n.Sub(now); d < c.interval/2 || d > c.interval*3/2 {
					t.Fatalf("next refresh %v after now, want within [%v, %v]", d, c.interval/2, c.interval*3/2)
				}
				// Deterministic: a restart computing the slot again gets the same answer.
				if again := nextSlot(now, c.interval, "ss/ns/store\x00key-a", true); !again.Equal(n) {
					t.Fatalf("not deterministic: %v vs %v", n, again)
				}
			}
		})
	}
	t.Run("readers of one key share a slot, keys spread over the interval", func(t *testing.T) {
		if a, b := nextSlot(t0, time.Hour, "ss/ns/store\x00k", true), nextSlot(t0, time.Hour, "ss/ns/store\x00k", true); !a.Equal(b) {
			t.Fatalf("one key, two slots: %v, %v", a, b)
		}
		var tenths [10]int
		for i := range 1000 {
			n := nextSlot(t0, time.Minute, fmt.Sprintf("ss/ns/store\x00key-%d", i), true)
			tenths[int(n.Sub(t0.Truncate(time.Minute))%time.Minute*10/time.Minute)]++
		}
		for i, n := range tenths {
			if n < 60 || n > 140 {
				t.Fatalf("%d of 1000 keys refresh in tenth %d of the interval, want about 100: %v", n, i, tenths)
			}
		}
	})
	t.Run("after a restart the very next slot is kept", func(t *testing.T) {
		fresh := nextSlot(t0, time.Hour, "ss/ns/store\x00key-a", true)
		restart := nextSlot(t0, time.Hour, "ss/ns/store\x00key-a", false)
		if d := restart.Sub(t0); d <= 0 || d > time.Hour {
			t.Fatalf("restart slot %v after now", d)
		}
		skipped := restart.Sub(t0) < time.Hour/2 // fresh: the slot after
		if (skipped && !fresh.Equal(restart.Add(time.Hour))) || (!skipped && !fresh.Equal(restart)) {
			t.Fatalf("restart slot %v, fresh slot %v", restart, fresh)
		}
	})
	t.Run("zero interval never refreshes", func(t *testing.T) {
		if n := nextSlot(t0, 0, "s", true); !n.IsZero() {
			t.Fatalf("got %v", n)
		}
	})
}

// The slots of keys a, b and c of store ss/ns/s with a 1 h interval: their hashes
// place them at these offsets past each hour.
var (
	offA = 9*time.Minute + 56772467766*time.Nanosecond
	offB = 51*time.Minute + 37260839555*time.Nanosecond
	offC = 33*time.Minute + 17749211344*time.Nanosecond
)

func slotES(keys ...string) *v1alpha1.ExternalSecret {
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", UID: "u1"},
		Spec: v1alpha1.ExternalSecretSpec{SecretStoreRef: v1alpha1.StoreRef{Name: "s"}}}
	for i, k := range keys {
		if i == 1 { // one of them through dataFrom.extract: a named key too
			es.Spec.DataFrom = append(es.Spec.DataFrom, v1alpha1.DataFromSource{Extract: &v1alpha1.ExtractRef{Key: k}})
			continue
		}
		es.Spec.Data = append(es.Spec.Data, v1alpha1.DataItem{SecretKey: k, RemoteRef: &v1alpha1.RemoteRef{Key: k}})
	}
	return es
}

// TestKeySlots: an ExternalSecret refreshes at the slot of each key it names (its
// next refresh is the earliest); a single-key one exactly as before (nextSlot of
// its store and key); one naming no key at its UID's slot.
func TestKeySlots(t *testing.T) {
	hour := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		es   *v1alpha1.ExternalSecret
		now  time.Time
		how  after
		want map[string]time.Time // next slot per key
		next time.Time            // the next refresh
	}{
		{"single key, start-up: the very next slot", slotES("a"), hour.Add(offA - time.Minute), afterStart,
			map[string]time.Time{"a": hour.Add(offA)}, nextSlot(hour.Add(offA-time.Minute), time.Hour, "ss/ns/s\x00a", false)},
		{"single key, after a spec edit: at least half an interval on", slotES("a"), hour.Add(offA - time.Minute), afterSync,
			map[string]time.Time{"a": hour.Add(time.Hour + offA)}, nextSlot(hour.Add(offA-time.Minute), time.Hour, "ss/ns/s\x00a", true)},
		{"single key, at its slot: the next interval", slotES("a"), hour.Add(offA), afterSlot,
			map[string]time.Time{"a": hour.Add(time.Hour + offA)}, nextSlot(hour.Add(offA), time.Hour, "ss/ns/s\x00a", true)},
		{"3 keys, start-up: the earliest key slot", slotES("a", "b", "c"), hour, afterStart,
			map[string]time.Time{"a": hour.Add(offA), "b": hour.Add(offB), "c": hour.Add(offC)}, hour.Add(offA)},
		{"3 keys, at c's slot: c moves on, a and b keep theirs", slotES("a", "b", "c"), hour.Add(offC), afterSlot,
			map[string]time.Time{"a": hour.Add(time.Hour + offA), "b": hour.Add(offB), "c": hour.Add(time.Hour + offC)}, hour.Add(offB)},
		{"3 keys, c's slot refreshed 10 s late (start-up grace): same", slotES("a", "b", "c"), hour.Add(offC + 10*time.Second), afterSlot,
			map[string]time.Time{"a": hour.Add(time.Hour + offA), "b": hour.Add(offB), "c": hour.Add(time.Hour + offC)}, hour.Add(offB)},
		{"3 keys, spec edit: every key keeps its very next slot", slotES("a", "b", "c"), hour.Add(offC - time.Minute), afterSync,
			map[string]time.Time{"a": hour.Add(time.Hour + offA), "b": hour.Add(offB), "c": hour.Add(offC)}, hour.Add(offC)},
		{"a key named twice counts once", slotES("a", "a"), hour, afterStart,
			map[string]time.Time{"a": hour.Add(offA)}, hour.Add(offA)},
		{"no key named: the UID's slot", slotES(), hour, afterStart,
			map[string]time.Time{"": nextSlot(hour, time.Hour, "ss/ns/s\x00uid:u1", false)}, nextSlot(hour, time.Hour, "ss/ns/s\x00uid:u1", false)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ks := keySlots(c.es, c.now, time.Hour, c.how)
			got := map[string]time.Time{}
			for _, s := range ks {
				got[s.key] = s.next
			}
			if len(got) != len(c.want) || len(ks) != len(c.want) {
				t.Fatalf("slots %v, want %v", got, c.want)
			}
			for k, w := range c.want {
				if !got[k].Equal(w) {
					t.Fatalf("key %q: next slot %v, want %v", k, got[k], w)
				}
			}
			if n := earliest(ks); !n.Equal(c.next) {
				t.Fatalf("next refresh %v, want %v", n, c.next)
			}
		})
	}
	t.Run("no interval: no slot", func(t *testing.T) {
		if n := earliest(keySlots(slotES("a", "b"), hour, 0, afterSlot)); !n.IsZero() {
			t.Fatalf("got %v", n)
		}
	})
}

// TestSlotMaxAges: at a scheduled refresh each key accepts a value read up to one
// cache window before its own latest slot, so the value read ahead for that slot
// serves (the key whose slot it is gets about the window).
func TestSlotMaxAges(t *testing.T) {
	hour := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	const w = 5 * time.Minute // the cache window of a 1 h interval
	cases := []struct {
		name string
		es   *v1alpha1.ExternalSecret
		now  time.Time
		want map[string]time.Duration
	}{
		{"single key at its slot: the window", slotES("a"), hour.Add(offA), map[string]time.Duration{"a": w}},
		{"single key, 10 s late: the window and 10 s", slotES("a"), hour.Add(offA + 10*time.Second), map[string]time.Duration{"a": w + 10*time.Second}},
		{"3 keys at c's slot: c the window, a and b since their latest slots", slotES("a", "b", "c"), hour.Add(offC),
			map[string]time.Duration{"a": offC - offA + w, "b": time.Hour + offC - offB + w, "c": w}},
		{"3 keys at a's slot", slotES("a", "b", "c"), hour.Add(offA),
			map[string]time.Duration{"a": w, "b": time.Hour + offA - offB + w, "c": time.Hour + offA - offC + w}},
		{"no key named: none", slotES(), hour, map[string]time.Duration{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := slotMaxAges(c.es, c.now, time.Hour)
			if len(got) != len(c.want) {
				t.Fatalf("maxAges %v, want %v", got, c.want)
			}
			for k, want := range c.want {
				if got[k] != want {
					t.Fatalf("key %q: maxAge %v, want %v", k, got[k], want)
				}
				if want > time.Hour+w {
					t.Fatalf("key %q: maxAge %v beyond an interval and a window", k, want)
				}
			}
		})
	}
}

func TestAfterStartup(t *testing.T) {
	now := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		slot     time.Time
		interval time.Duration
		want     time.Time
	}{
		{"a slot past the first cache window is kept", now.Add(40 * time.Second), time.Minute, now.Add(40 * time.Second)},
		{"a slot inside it moves by a quarter of the window", now.Add(2 * time.Second), time.Minute, now.Add(9500 * time.Millisecond)},
		{"at most 10 s", now.Add(time.Minute), time.Hour, now.Add(70 * time.Second)},
		{"short intervals: a quarter of the cache window", now, 8 * time.Second, now.Add(time.Second)},
		{"no refresh stays none", time.Time{}, 0, time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := afterStartup(c.slot, now, c.interval); !got.Equal(c.want) {
				t.Fatalf("afterStartup = %v, want %v", got, c.want)
			}
		})
	}
}

// TestCacheWindow: the refresh side reads the fetch layer's timing model, with the
// numbers docs/design/refresh.md gives.
func TestCacheWindow(t *testing.T) {
	cases := []struct {
		name     string
		interval time.Duration
		want     time.Duration
	}{
		{"short interval: half of it", 2 * time.Second, time.Second},
		{"a minute", time.Minute, 30 * time.Second},
		{"an hour: at most five minutes", time.Hour, 5 * time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := cacheWindow(c.interval); got != c.want || got != fetch.DefaultTiming().CacheWindow(c.interval) {
				t.Fatalf("cacheWindow(%s) = %s, want %s (the fetch model's)", c.interval, got, c.want)
			}
		})
	}
}

// TestRequeuePriority: a lease renewal is requeued ahead of everything (it has a
// deadline); a refresh slot waits behind watch events.
func TestRequeuePriority(t *testing.T) {
	for _, c := range []struct {
		name     string
		es       *v1alpha1.ExternalSecret
		leaseTTL time.Duration // 0: no dynamic source
		want     int
		wantIn   time.Duration // RequeueAfter at most
	}{
		{name: "refresh slot", es: kvES("kv", "app"), want: handler.LowPriority, wantIn: 3 * time.Hour / 2},
		{name: "renewal before the slot", es: dynamicES("db", "database/creds/app"), leaseTTL: 20 * time.Minute, want: renewalPriority, wantIn: 14 * time.Minute},
		{name: "slot before the renewal", es: dynamicES("db", "database/creds/app"), leaseTTL: 10 * time.Hour, want: handler.LowPriority, wantIn: 3 * time.Hour / 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.es)
			e.backend.Put("app", []byte("v"), nil)
			if c.leaseTTL > 0 {
				e.backend.SetLeases(c.leaseTTL, true)
			}
			res, err := e.reconcile(c.es.Name)
			if err != nil {
				t.Fatal(err)
			}
			if cond := e.ready(c.es.Name); cond == nil || cond.Status != metav1.ConditionTrue {
				t.Fatalf("not Ready: %+v", cond)
			}
			if res.Priority == nil || *res.Priority != c.want {
				t.Errorf("priority %v, want %d", res.Priority, c.want)
			}
			if res.RequeueAfter <= 0 || res.RequeueAfter > c.wantIn {
				t.Errorf("RequeueAfter %s, want in (0, %s]", res.RequeueAfter, c.wantIn)
			}
		})
	}
}
