package fetch

import (
	"testing"
	"time"

	"github.com/secretsync/secretsync/internal/provider/memory"
)

// TestValueRetention: a value of an expected ref stays in memory as long as a
// reader of its demand may accept it (an interval plus a cache window after the
// read: a multi-key ExternalSecret refreshing at another key's slot reuses it), past
// Timing.MaxCacheAge; any other value leaves memory after MaxCacheAge.
func TestValueRetention(t *testing.T) {
	const every, window = time.Hour, 5 * time.Minute
	timing := DefaultTiming()
	cases := []struct {
		name   string
		before bool // Expect before the read
		after  bool // Expect after the read (a first sync, then its registration)
		kept   time.Duration
	}{
		{"expected ref: kept an interval and a window", true, false, every + window},
		{"expected after the read: kept as long", false, true, every + window},
		{"unexpected ref: MaxCacheAge", false, false, timing.MaxCacheAge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := memory.New("memory")
			putKeys(b, 1, "v")
			s := newSim(t, memClient(t, b))
			// Due far away: the read-ahead does not read it again within the test.
			expect := func() { s.h.Expect(keyRef(0), t0.Add(3*time.Hour), window, every) }
			if c.before {
				expect()
			}
			if r := s.read(keyRef(0), 0); r.err != nil {
				t.Fatal(r.err)
			}
			if c.after {
				expect()
			}
			read := s.clk.Now()
			s.advanceTo(read.Add(c.kept-time.Minute), time.Minute)
			if !s.cachedFresh(keyRef(0), 2*every) {
				t.Fatalf("value gone %s after its read, want kept %s", s.clk.Since(read), c.kept)
			}
			s.advanceTo(read.Add(c.kept+time.Minute), time.Minute)
			if s.cachedFresh(keyRef(0), 2*every) {
				t.Fatalf("value still in memory %s after its read, want gone after %s", s.clk.Since(read), c.kept)
			}
			if got := b.KeyCalls("k0"); got != 1 {
				t.Fatalf("%d backend reads, want 1", got)
			}
		})
	}
}
