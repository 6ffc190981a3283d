package externalsecret

import (
	"testing"
	"time"
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
				n := nextSlot(now, c.interval, "ss/ns/store", "uid-a", true)
				if d := n.Sub(now); d < c.interval/2 || d > c.interval*3/2 {
					t.Fatalf("next refresh %v after now, want within [%v, %v]", d, c.interval/2, c.interval*3/2)
				}
				// Deterministic: a restart computing the slot again gets the same answer.
				if again := nextSlot(now, c.interval, "ss/ns/store", "uid-a", true); !again.Equal(n) {
					t.Fatalf("not deterministic: %v vs %v", n, again)
				}
			}
		})
	}
	t.Run("same store refreshes within the spread", func(t *testing.T) {
		a := nextSlot(t0, time.Hour, "ss/ns/store", "uid-a", true)
		b := nextSlot(t0, time.Hour, "ss/ns/store", "uid-b", true)
		if d := a.Sub(b).Abs(); d > spread(time.Hour) && d < time.Hour-spread(time.Hour) {
			t.Fatalf("two ExternalSecrets of one store are %v apart", d)
		}
	})
	t.Run("after a restart the very next slot is kept", func(t *testing.T) {
		fresh := nextSlot(t0, time.Hour, "ss/ns/store", "uid-a", true)
		restart := nextSlot(t0, time.Hour, "ss/ns/store", "uid-a", false)
		if d := restart.Sub(t0); d <= 0 || d > time.Hour {
			t.Fatalf("restart slot %v after now", d)
		}
		if restart.After(fresh) || (fresh.Sub(t0) >= time.Hour/2 && !restart.Equal(fresh)) {
			t.Fatalf("restart slot %v, fresh slot %v", restart, fresh)
		}
	})
	t.Run("zero interval never refreshes", func(t *testing.T) {
		if n := nextSlot(t0, 0, "s", "u", true); !n.IsZero() {
			t.Fatalf("got %v", n)
		}
	})
}
