package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestHandleSweep: in a refresh round every batch call is filled up with stale refs
// readers asked for before, so a round costs full batches and the other readers of
// the round hit the cache.
func TestHandleSweep(t *testing.T) {
	const keys = 30
	const maxAge = time.Second
	b := memory.New("memory")
	for i := 0; i < keys; i++ {
		b.Put(fmt.Sprintf("k%d", i), []byte("v1"), nil)
	}
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, err := b.NewClient(context.Background(), nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	h := newHandle("memory", c, Options{BatchWindow: time.Millisecond, Now: clock.Now})
	ctx := context.Background()
	get := func(i int) string {
		t.Helper()
		s, err := h.Get(ctx, provider.Ref{Key: fmt.Sprintf("k%d", i)}, maxAge)
		if err != nil {
			t.Fatalf("k%d: %v", i, err)
		}
		return string(s.Value)
	}
	calls := func() int64 { return b.Batches.Load() + b.Gets.Load() }

	for i := 0; i < keys; i++ { // one by one: one call each, nothing stale to sweep
		get(i)
	}
	if got := calls(); got != keys {
		t.Fatalf("initial reads: %d calls, want %d", got, keys)
	}

	// Next round: every value is stale and changed.
	for i := 0; i < keys; i++ {
		b.Put(fmt.Sprintf("k%d", i), []byte("v2"), nil)
	}
	clock.Add(2 * maxAge)
	before := calls()
	for i := 0; i < keys; i++ {
		if v := get(i); v != "v2" {
			t.Fatalf("k%d = %q in the new round, want v2", i, v)
		}
	}
	if got := calls() - before; got != 3 {
		t.Fatalf("a round of %d stale refs cost %d calls, want 3 (full batches of 10)", keys, got)
	}

	// Nobody reads k1..k29 any more: each round's one call carries k0 and fills up
	// with them; one swept maxIdleSweeps times is forgotten, until only k0 is left.
	for round := 0; len(h.demand) > 1; round++ {
		if round == 20 {
			t.Fatalf("%d refs still in demand after %d idle rounds", len(h.demand), round)
		}
		clock.Add(2 * maxAge)
		before := calls()
		get(0)
		if got := calls() - before; got != 1 {
			t.Fatalf("idle round %d: %d calls, want 1", round, got)
		}
	}

	// While batch calls fail, nothing is swept.
	for i := 1; i < keys; i++ {
		get(i) // read again: in demand
	}
	clock.Add(2 * maxAge)
	b.Fail(provider.Wrap(provider.ErrUnavailable, "503", errors.New("down")))
	before = calls()
	if _, err := h.Get(ctx, provider.Ref{Key: "k0"}, maxAge); err == nil {
		t.Fatal("read succeeded during the outage")
	}
	if _, err := h.Get(ctx, provider.Ref{Key: "k0"}, maxAge); err == nil {
		t.Fatal("read succeeded during the outage")
	}
	if got := calls() - before; got != 2 {
		t.Fatalf("two failing reads during an outage cost %d calls, want 2 (no sweep)", got)
	}
	b.Fail(nil)
	before = calls()
	get(0) // succeeds, alone: nothing was swept after the failure
	if b.LastBatch() != 1 {
		t.Fatalf("the first call after an outage carried %d refs, want 1 (no sweep)", b.LastBatch())
	}
	get(1) // the sweep resumes: k1 and 9 stale refs
	if got := calls() - before; got != 2 || b.LastBatch() != 10 {
		t.Fatalf("after recovery: %d calls, the last of %d refs; want 2, 10", got, b.LastBatch())
	}
}
