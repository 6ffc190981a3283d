package fetch

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
)

func keyRef(i int) provider.Ref { return provider.Ref{Key: fmt.Sprintf("k%d", i)} }

func putKeys(b *memory.Backend, n int, v string) {
	for i := range n {
		b.Put(keyRef(i).Key, []byte(v), nil)
	}
}

func calls(b *memory.Backend) int64 { return b.Batches.Load() + b.Gets.Load() }

func TestHandleCoalescesAndBatches(t *testing.T) {
	cases := []struct {
		name      string
		keys      int
		readers   int
		wantCalls int64
	}{
		{"many readers of one key share one call", 1, 50, 1},
		{"distinct keys fill batches of ten", 25, 25, 3},
		{"readers of ten keys, five each", 10, 50, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := memory.New("memory")
			putKeys(b, c.keys, "v")
			s := newSim(t, memClient(t, b))
			var answers []<-chan result
			for i := range c.readers {
				answers = append(answers, s.start(keyRef(i%c.keys), time.Minute))
			}
			for _, ch := range answers {
				if r := s.wait(ch, time.Millisecond); r.err != nil || string(r.s.Value) != "v" {
					t.Fatalf("%q, %v", r.s.Value, r.err)
				}
			}
			if got := calls(b); got != c.wantCalls {
				t.Fatalf("%d backend calls, want %d", got, c.wantCalls)
			}
		})
	}
}

func TestHandleCache(t *testing.T) {
	b := memory.New("memory")
	b.Put("k", []byte("v1"), nil)
	s := newSim(t, memClient(t, b))
	k := provider.Ref{Key: "k"}
	steps := []struct {
		name      string
		put       string        // new remote value before the read ("": none)
		advance   time.Duration // clock moves before the read
		maxAge    time.Duration
		want      string
		wantCalls int64
	}{
		{"first read goes to the backend", "", 0, time.Minute, "v1", 1},
		{"within maxAge the cached value is reused", "v2", 30 * time.Second, time.Minute, "v1", 1},
		{"maxAge 0 reads through", "", 0, 0, "v2", 2},
		{"a value as old as maxAge is not reused", "v3", time.Minute, time.Minute, "v3", 3},
	}
	for _, st := range steps {
		if st.put != "" {
			b.Put("k", []byte(st.put), nil)
		}
		s.advance(st.advance, time.Second)
		if r := s.read(k, st.maxAge); r.err != nil || string(r.s.Value) != st.want {
			t.Fatalf("%s: %q, %v; want %q", st.name, r.s.Value, r.err, st.want)
		}
		if got := calls(b); got != st.wantCalls {
			t.Fatalf("%s: %d calls, want %d", st.name, got, st.wantCalls)
		}
	}
}

func TestHandleErrorsAreNotCached(t *testing.T) {
	b := memory.New("memory")
	s := newSim(t, memClient(t, b))
	if r := s.read(provider.Ref{Key: "late"}, time.Minute); r.err == nil {
		t.Fatal("missing key read without error")
	}
	b.Put("late", []byte("v"), nil)
	if r := s.read(provider.Ref{Key: "late"}, time.Minute); r.err != nil || string(r.s.Value) != "v" {
		t.Fatalf("after the key appeared: %q, %v", r.s.Value, r.err)
	}
}

// TestNotFoundEvicts (issue 13 item 5): once a read says a ref is gone, no reader
// is served the value cached before, whichever read noticed it, and the ref is no
// longer read ahead.
func TestNotFoundEvicts(t *testing.T) {
	k := provider.Ref{Key: "k"}
	cases := []struct {
		name string
		// notice makes the handle see the deletion (at the start of the test's
		// clock + 1 s, with a value cached at the start and expected at +10 s).
		notice func(t *testing.T, s *sim)
	}{
		{"a forced read", func(t *testing.T, s *sim) {
			if r := s.read(k, 0); !errors.Is(r.err, provider.ErrNotFound) {
				t.Fatalf("forced read: %v, want not found", r.err)
			}
		}},
		{"a read-ahead", func(t *testing.T, s *sim) {
			s.advanceTo(t0.Add(10*time.Second), 100*time.Millisecond) // the ref is read ahead before its due time
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := memory.New("memory")
			b.Put("k", []byte("old"), nil)
			s := newSim(t, memClient(t, b))
			if r := s.read(k, time.Minute); r.err != nil {
				t.Fatal(r.err)
			}
			s.h.Expect(k, t0.Add(10*time.Second), 2*time.Second, time.Minute)
			s.advance(time.Second, 100*time.Millisecond)
			b.Delete("k")
			before := calls(b)
			c.notice(t, s)
			if got := calls(b) - before; got != 1 {
				t.Fatalf("%d calls noticed the deletion, want 1", got)
			}
			if s.cachedFresh(k, time.Hour) {
				t.Fatal("the pre-deletion value is still cached")
			}
			if r := s.read(k, time.Minute); !errors.Is(r.err, provider.ErrNotFound) {
				t.Fatalf("a reader with maxAge 1m after the deletion: %q, %v; want not found", r.s.Value, r.err)
			}
			before = calls(b)
			s.advance(time.Minute, 100*time.Millisecond)
			if got := calls(b) - before; got != 0 {
				t.Fatalf("the gone ref was read ahead %d times", got)
			}
		})
	}
}

// pacedClient is the memory backend's client declaring a per-second call quota.
type pacedClient struct {
	provider.Client
	provider.BatchGetter
	perSecond float64
}

func (p pacedClient) MaxCallsPerSecond() float64 { return p.perSecond }

// TestPacedClientCallsAreSpaced: a Paced client's calls (batch, single-ref and find
// alike) are spaced at its rate, so a store's calls never burst above the quota.
func TestPacedClientCallsAreSpaced(t *testing.T) {
	b := memory.New("memory")
	putKeys(b, 6, "v")
	c := memClient(t, b)
	const perSecond = 20 // one call every 50ms
	s := newSim(t, pacedClient{Client: c, BatchGetter: c.(provider.BatchGetter), perSecond: perSecond})
	var sent []time.Duration // when each call went, since t0
	for i := range 6 {       // six reads one after the other: six batch calls
		n := b.Batches.Load()
		ch := s.start(keyRef(i), 0)
		s.drive(time.Millisecond, "the call goes", func() bool { return b.Batches.Load() > n })
		sent = append(sent, s.clk.Since(t0))
		if r := s.wait(ch, time.Millisecond); r.err != nil {
			t.Fatal(r.err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.h.Find(t.Context(), provider.FindQuery{Path: "k"}, 0)
		done <- err
	}()
	s.drive(time.Millisecond, "find answers", func() bool { return len(done) > 0 })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sent = append(sent, s.clk.Since(t0))
	for i := 1; i < len(sent); i++ {
		if gap := sent[i] - sent[i-1]; gap < time.Second/perSecond {
			t.Fatalf("call %d went %s after the one before, want at least %s: %v", i, gap, time.Second/perSecond, sent)
		}
	}
	if got := b.Batches.Load(); got != 6 {
		t.Fatalf("%d batch calls, want 6", got)
	}
}
