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
				n := nextSlot(now, c.interval, "ss/ns/store", "uid-a")
				if d := n.Sub(now); d < c.interval/2 || d > c.interval*3/2 {
					t.Fatalf("next refresh %v after now, want within [%v, %v]", d, c.interval/2, c.interval*3/2)
				}
				// Deterministic: a restart computing the slot again gets the same answer.
				if again := nextSlot(now, c.interval, "ss/ns/store", "uid-a"); !again.Equal(n) {
					t.Fatalf("not deterministic: %v vs %v", n, again)
				}
			}
		})
	}
	t.Run("same store refreshes within the spread", func(t *testing.T) {
		a := nextSlot(t0, time.Hour, "ss/ns/store", "uid-a")
		b := nextSlot(t0, time.Hour, "ss/ns/store", "uid-b")
		if d := a.Sub(b).Abs(); d > spread(time.Hour) && d < time.Hour-spread(time.Hour) {
			t.Fatalf("two ExternalSecrets of one store are %v apart", d)
		}
	})
	t.Run("zero interval never refreshes", func(t *testing.T) {
		if n := nextSlot(t0, 0, "s", "u"); !n.IsZero() {
			t.Fatalf("got %v", n)
		}
	})
}
