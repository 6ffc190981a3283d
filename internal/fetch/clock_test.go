package fetch

import (
	"context"
	"runtime"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
)

// t0 is where every fake clock starts.
var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// sim is a Handle on a fake clock. Time moves only when the test says so, and only
// once the scheduler and every backend call it started are done (settle), so what
// a test sees depends on its steps alone, never on how fast the machine is.
type sim struct {
	t   *testing.T
	clk *clocktesting.FakeClock
	h   *Handle
}

func newSim(t *testing.T, c provider.Client) *sim {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	h := newHandle("memory", c, Options{Clock: clk})
	t.Cleanup(func() { h.close(context.Background()) })
	return &sim{t: t, clk: clk, h: h}
}

func memClient(t *testing.T, b *memory.Backend) provider.Client {
	t.Helper()
	c, err := b.NewClient(context.Background(), nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// settled: the scheduler sleeps on a timer that has not fired (or never started),
// and no call it sent is still running.
func (s *sim) settled() bool { return s.h.Settled() }

// until yields to the other goroutines until cond holds. The bound on yields only
// turns a bug into a failure instead of a hang; no time is measured.
func (s *sim) until(what string, cond func() bool) {
	s.t.Helper()
	for i := 0; !cond(); i++ {
		if i > 1<<24 {
			s.t.Fatalf("never happened: %s", what)
		}
		runtime.Gosched()
	}
}

func (s *sim) settle() {
	s.t.Helper()
	s.until("the scheduler settles", s.settled)
}

// advance moves the clock by d in steps of at most step, settling before each.
func (s *sim) advance(d, step time.Duration) {
	s.t.Helper()
	for end := s.clk.Now().Add(d); s.clk.Now().Before(end); {
		s.settle()
		s.clk.Step(min(step, end.Sub(s.clk.Now())))
	}
	s.settle()
}

// advanceTo moves the clock to t (see advance).
func (s *sim) advanceTo(t time.Time, step time.Duration) { s.advance(t.Sub(s.clk.Now()), step) }

type result struct {
	s   provider.Secret
	err error
}

// get starts a reader; its answer arrives on the channel.
func (s *sim) get(ref provider.Ref, maxAge time.Duration) <-chan result {
	ch := make(chan result, 1)
	go func() {
		v, err := s.h.Get(context.Background(), ref, maxAge)
		ch <- result{v, err}
	}()
	return ch
}

// wait moves the clock in steps of step until the reader answers.
func (s *sim) wait(ch <-chan result, step time.Duration) result {
	s.t.Helper()
	s.drive(step, "the reader answers", func() bool { return len(ch) > 0 })
	return <-ch
}

// read is get + wait with the batch window as the step.
func (s *sim) read(ref provider.Ref, maxAge time.Duration) result {
	s.t.Helper()
	return s.wait(s.start(ref, maxAge), time.Millisecond)
}

// cachedFresh: a reader with maxAge would be answered from the cache now.
func (s *sim) cachedFresh(ref provider.Ref, maxAge time.Duration) bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	_, ok := s.h.fresh(ref, maxAge)
	return ok
}

// start starts a reader and waits until its call is queued or in flight (or it
// was answered), so the scheduler sees readers in the order the test starts them.
func (s *sim) start(ref provider.Ref, maxAge time.Duration) <-chan result {
	s.t.Helper()
	ch := s.get(ref, maxAge)
	s.until("the reader registers", func() bool {
		s.h.mu.Lock()
		_, busy := s.h.inflight[ref]
		s.h.mu.Unlock()
		return busy || len(ch) > 0 // joined or queued a call, or answered (from the cache)
	})
	s.settle()
	return ch
}

// drive moves the clock in steps of step until done holds.
func (s *sim) drive(step time.Duration, what string, done func() bool) {
	s.t.Helper()
	for i := 0; !done(); i++ {
		if i > 100_000 {
			s.t.Fatalf("never happened: %s", what)
		}
		s.settle()
		runtime.Gosched() // let a reader that was just answered say so
		if done() {
			return
		}
		s.clk.Step(step)
	}
}
