package fetch

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
)

func handleFor(t *testing.T, b *memory.Backend) *Handle {
	t.Helper()
	c, err := b.NewClient(context.Background(), nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	return newHandle("memory", c, Options{BatchWindow: 5 * time.Millisecond, Now: time.Now})
}

func TestHandleCoalescesAndBatches(t *testing.T) {
	cases := []struct {
		name        string
		keys        int
		readers     int
		wantBatches int64
	}{
		{"many readers of one key share one call", 1, 50, 1},
		{"distinct keys fill batches of ten", 25, 25, 3},
		{"readers of ten keys, five each", 10, 50, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := memory.New("memory")
			for i := 0; i < c.keys; i++ {
				b.Put(fmt.Sprintf("k%d", i), []byte("v"), nil)
			}
			h := handleFor(t, b)
			var wg sync.WaitGroup
			errs := make(chan error, c.readers)
			for i := 0; i < c.readers; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					s, err := h.Get(context.Background(), provider.Ref{Key: fmt.Sprintf("k%d", i%c.keys)}, time.Minute)
					if err == nil && string(s.Value) != "v" {
						err = fmt.Errorf("value %q", s.Value)
					}
					errs <- err
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := b.Batches.Load() + b.Gets.Load(); got != c.wantBatches {
				t.Fatalf("%d backend calls, want %d", got, c.wantBatches)
			}
		})
	}
}

func TestHandleCacheWindow(t *testing.T) {
	b := memory.New("memory")
	b.Put("k", []byte("v1"), nil)
	h := handleFor(t, b)
	ctx := context.Background()
	if _, err := h.Get(ctx, provider.Ref{Key: "k"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	b.Put("k", []byte("v2"), nil)
	if s, _ := h.Get(ctx, provider.Ref{Key: "k"}, time.Minute); string(s.Value) != "v1" {
		t.Fatalf("within the window: %q, want the cached v1", s.Value)
	}
	if s, _ := h.Get(ctx, provider.Ref{Key: "k"}, 0); string(s.Value) != "v2" {
		t.Fatalf("maxAge 0 must read through: %q", s.Value)
	}
	if got := b.Batches.Load(); got != 2 {
		t.Fatalf("%d calls, want 2", got)
	}
}

func TestHandleErrorsAreNotCached(t *testing.T) {
	b := memory.New("memory")
	h := handleFor(t, b)
	ctx := context.Background()
	if _, err := h.Get(ctx, provider.Ref{Key: "late"}, time.Minute); err == nil {
		t.Fatal("missing key read without error")
	}
	b.Put("late", []byte("v"), nil)
	if s, err := h.Get(ctx, provider.Ref{Key: "late"}, time.Minute); err != nil || string(s.Value) != "v" {
		t.Fatalf("after the key appeared: %q, %v", s.Value, err)
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
	for i := range 6 {
		b.Put(fmt.Sprintf("k%d", i), []byte("v"), nil)
	}
	c, err := b.NewClient(context.Background(), nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	const perSecond = 20 // one call every 50ms
	h := newHandle("memory", pacedClient{Client: c, BatchGetter: c.(provider.BatchGetter), perSecond: perSecond},
		Options{BatchWindow: time.Millisecond, Now: time.Now})
	ctx := context.Background()
	start := time.Now()
	for i := range 6 { // six reads one after the other: six batch calls
		if _, err := h.Get(ctx, provider.Ref{Key: fmt.Sprintf("k%d", i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Find(ctx, provider.FindQuery{Path: "k"}, 0); err != nil {
		t.Fatal(err)
	}
	if got := b.Batches.Load(); got != 6 {
		t.Fatalf("%d batch calls, want 6", got)
	}
	// 7 calls with burst 1 take at least 6 intervals of 1/perSecond.
	if min, took := 6*time.Second/perSecond, time.Since(start); took < min {
		t.Fatalf("7 paced calls took %s, want at least %s", took, min)
	}
}
