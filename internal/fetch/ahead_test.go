package fetch

import (
	"errors"
	"testing"
	"time"

	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
)

// TestReadAheadInFullBatches: refs expected evenly over an interval are read before
// their readers ask, in full batches, and every reader finds its value in the cache.
func TestReadAheadInFullBatches(t *testing.T) {
	const keys, every, maxAge = 30, 3 * time.Second, 2 * time.Second
	b := memory.New("memory")
	putKeys(b, keys, "v")
	s := newSim(t, memClient(t, b))
	due := func(i int) time.Time { return t0.Add(time.Second + time.Duration(i)*every/keys) }
	for i := range keys {
		s.h.Expect(keyRef(i), due(i), maxAge, every)
	}
	for i := range keys {
		s.advanceTo(due(i), 10*time.Millisecond)
		if !s.cachedFresh(keyRef(i), maxAge) {
			t.Fatalf("the reader of k%d at its due time would wait for a backend call (%d calls, last %d refs)", i, b.Batches.Load(), b.LastBatch())
		}
		if r := s.read(keyRef(i), maxAge); r.err != nil || string(r.s.Value) != "v" {
			t.Fatalf("k%d: %q, %v", i, r.s.Value, r.err)
		}
	}
	if got, n := b.Batches.Load(), b.LastBatch(); got != keys/10 || n != 10 {
		t.Fatalf("%d batch calls for %d expected refs (the last with %d), want %d full ones", got, keys, n, keys/10)
	}
}

// TestReadersCallCarriesRefsDueSoon: a reader's batch call fills its free places
// with expected refs, so their reads cost nothing extra.
func TestReadersCallCarriesRefsDueSoon(t *testing.T) {
	b := memory.New("memory")
	putKeys(b, 10, "v")
	s := newSim(t, memClient(t, b))
	due := t0.Add(5 * time.Second) // inside the horizon, but no full batch yet
	for i := 1; i < 10; i++ {
		s.h.Expect(keyRef(i), due, 10*time.Second, time.Minute)
	}
	if r := s.read(keyRef(0), 0); r.err != nil {
		t.Fatal(r.err)
	}
	if got, n := b.Batches.Load(), b.LastBatch(); got != 1 || n != 10 {
		t.Fatalf("%d calls, the last with %d refs; want 1 call with 10", got, n)
	}
	for i := 1; i < 10; i++ {
		if r := s.read(keyRef(i), 10*time.Second); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if got := b.Batches.Load(); got != 1 {
		t.Fatalf("readers of the carried refs made %d more calls", got-1)
	}
}

// TestReadAheadForgetsAndPauses: a ref nobody asks for any more is read ahead once
// and then forgotten; while calls fail nothing is read ahead, and after the pause
// the read-ahead resumes.
func TestReadAheadForgetsAndPauses(t *testing.T) {
	t.Run("an expected ref nobody asks for is read once, then forgotten", func(t *testing.T) {
		b := memory.New("memory")
		putKeys(b, 1, "v")
		s := newSim(t, memClient(t, b))
		s.h.Expect(keyRef(0), t0.Add(100*time.Millisecond), 200*time.Millisecond, 300*time.Millisecond)
		s.advance(3*time.Second, 10*time.Millisecond)
		s.h.mu.Lock()
		left := len(s.h.demand)
		s.h.mu.Unlock()
		if got := b.Batches.Load(); got != 1 || left != 0 {
			t.Fatalf("%d calls, %d refs still expected; want 1 and 0", got, left)
		}
	})
	t.Run("no read-ahead while the backend fails, then it resumes", func(t *testing.T) {
		timing := DefaultTiming()
		b := memory.New("memory")
		putKeys(b, 10, "v")
		s := newSim(t, memClient(t, b))
		b.Fail(provider.Wrap(provider.ErrUnavailable, "503", errors.New("down")))
		if r := s.read(keyRef(0), 0); r.err == nil {
			t.Fatal("read succeeded during the outage")
		}
		for i := range 10 {
			s.h.Expect(keyRef(i), s.clk.Now().Add(200*time.Millisecond), time.Second, time.Minute)
		}
		s.advance(timing.FailPause/2, 10*time.Millisecond)
		if got := b.Batches.Load(); got != 1 {
			t.Fatalf("%d calls during the outage, want only the reader's 1", got)
		}
		b.Fail(nil)
		s.advance(timing.FailPause, 10*time.Millisecond)
		if got, n := b.Batches.Load(), b.LastBatch(); got != 2 || n != 10 {
			t.Fatalf("after the pause: %d calls, the last with %d refs; want 2, the last with 10", got, n)
		}
	})
}

// TestMissedReadersShareACall: expected readers whose refs the read-ahead did not
// read (here it is paused after a failure) wait for each other instead of each
// making its own call; a reader nobody expected is not held back that long.
func TestMissedReadersShareACall(t *testing.T) {
	timing := DefaultTiming()
	b := memory.New("memory")
	putKeys(b, 6, "v")
	s := newSim(t, memClient(t, b))
	b.Fail(provider.Wrap(provider.ErrUnavailable, "503", errors.New("down")))
	if r := s.read(keyRef(5), 0); r.err == nil { // pauses the read-ahead
		t.Fatal("read succeeded during the outage")
	}
	b.Fail(nil)
	for i := range 5 {
		s.h.Expect(keyRef(i), s.clk.Now(), time.Minute, time.Hour)
	}
	before := b.Batches.Load()
	var answers []<-chan result
	for i := range 5 { // over 0.5 s, well within the missed window
		answers = append(answers, s.start(keyRef(i), time.Minute))
		s.advance(timing.MissedWindow/10, 10*time.Millisecond)
	}
	for _, ch := range answers {
		if r := s.wait(ch, 10*time.Millisecond); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if got := b.Batches.Load() - before; got != 1 {
		t.Fatalf("5 expected readers arriving over 0.5 s made %d calls, want 1", got)
	}
	start := s.clk.Now()
	if r := s.read(keyRef(5), 0); r.err != nil {
		t.Fatal(r.err)
	}
	if took := s.clk.Since(start); took > 2*timing.BatchWindow {
		t.Fatalf("an unexpected reader waited %s, want at most about the batch window %s", took, timing.BatchWindow)
	}
}

// TestLenientReadersShareACall: after a restart a multi-key refresh asks for its
// other keys with a maxAge beyond their demand's (as read ahead for their own last
// slot); the read-ahead has not read them, so they are read now, and readers
// arriving within the missed window share one call.
func TestLenientReadersShareACall(t *testing.T) {
	timing := DefaultTiming()
	cases := []struct {
		name      string
		maxAge    time.Duration
		wantCalls int64
	}{
		{"accepting older values than expected: one shared call", 20 * time.Minute, 1},
		{"the expected maxAge: a call each", time.Minute, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := memory.New("memory")
			putKeys(b, 5, "v")
			s := newSim(t, memClient(t, b))
			for i := range 5 { // due far later: the read-ahead does not read them now
				s.h.Expect(keyRef(i), t0.Add(30*time.Minute), time.Minute, time.Hour)
			}
			var answers []<-chan result
			for i := range 5 { // over 0.5 s
				answers = append(answers, s.start(keyRef(i), c.maxAge))
				s.advance(timing.MissedWindow/10, 10*time.Millisecond)
			}
			for _, ch := range answers {
				if r := s.wait(ch, 10*time.Millisecond); r.err != nil {
					t.Fatal(r.err)
				}
			}
			if got := b.Batches.Load(); got != c.wantCalls {
				t.Fatalf("5 readers arriving over 0.5 s made %d calls, want %d", got, c.wantCalls)
			}
		})
	}
}

// TestTimingModel: the invariants docs/design/refresh.md relies on hold for the
// defaults, and zero fields take the defaults.
func TestTimingModel(t *testing.T) {
	m := DefaultTiming()
	for _, interval := range []time.Duration{time.Second, 10 * time.Second, time.Minute, time.Hour, 24 * time.Hour} {
		t.Run(interval.String(), func(t *testing.T) {
			w := m.CacheWindow(interval)
			if w <= 0 || w > m.MaxCacheWindow || w > interval {
				t.Fatalf("cache window %s", w)
			}
			// The earliest read-ahead, served to a reader that comes a start-up grace
			// late, is still within the reader's window.
			if late := m.Horizon(w) + m.StartupGrace(interval); late > w {
				t.Fatalf("a value read ahead is %s old for a late reader, the window is %s", late, w)
			}
		})
	}
	if m.MaxCacheAge <= m.MaxCacheWindow {
		t.Fatalf("values are dropped (%s) before readers stop reusing them (%s)", m.MaxCacheAge, m.MaxCacheWindow)
	}
	if got := (Timing{}).orDefault(); got != m {
		t.Fatalf("zero Timing: %+v, want the defaults", got)
	}
	if got := (Timing{FailPause: time.Minute}).orDefault(); got.FailPause != time.Minute || got.PlanEvery != m.PlanEvery {
		t.Fatalf("one field set: %+v", got)
	}
}
