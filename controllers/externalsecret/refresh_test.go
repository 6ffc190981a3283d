package externalsecret

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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

func TestAnchor(t *testing.T) {
	ref := func(k string) *v1alpha1.RemoteRef { return &v1alpha1.RemoteRef{Key: k} }
	cases := []struct {
		name string
		spec v1alpha1.ExternalSecretSpec
		want string
	}{
		{"first remoteRef key", v1alpha1.ExternalSecretSpec{Data: []v1alpha1.DataItem{{RemoteRef: ref("a")}, {RemoteRef: ref("b")}}}, "ss/ns/s\x00a"},
		{"extract key when no data", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Extract: &v1alpha1.ExtractRef{Key: "x"}}}}, "ss/ns/s\x00x"},
		{"uid when no key is named", v1alpha1.ExternalSecretSpec{DataFrom: []v1alpha1.DataFromSource{{Find: &v1alpha1.FindRef{Path: "p"}}}}, "ss/ns/s\x00uid:u1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.SecretStoreRef = v1alpha1.StoreRef{Name: "s"}
			es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", UID: "u1"}, Spec: c.spec}
			if got := anchor(es); got != c.want {
				t.Fatalf("anchor %q, want %q", got, c.want)
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
