package fetch

import (
	"context"
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

// TestReadAheadInFullBatches: refs expected evenly over an interval are read before
// their readers ask, in full batches, and every reader finds its value in the cache.
func TestReadAheadInFullBatches(t *testing.T) {
	const keys, every, maxAge = 30, 3 * time.Second, 2 * time.Second
	b := memory.New("memory")
	putKeys(b, keys, "v")
	h := handleFor(t, b)
	start := time.Now().Add(time.Second)
	due := func(i int) time.Time { return start.Add(time.Duration(i) * every / keys) }
	for i := range keys {
		h.Expect(keyRef(i), due(i), maxAge, every)
	}
	for i := range keys {
		time.Sleep(time.Until(due(i)))
		before := b.Batches.Load()
		if s, err := h.Get(context.Background(), keyRef(i), maxAge); err != nil || string(s.Value) != "v" {
			t.Fatalf("k%d: %q, %v", i, s.Value, err)
		}
		if b.Batches.Load() != before {
			t.Fatalf("the reader of k%d at its due time waited for a backend call", i)
		}
	}
	if got := b.Batches.Load(); got != keys/10 {
		t.Fatalf("%d batch calls for %d expected refs, want %d full ones", got, keys, keys/10)
	}
}

// TestReadersCallCarriesRefsDueSoon: a reader's batch call fills its free places
// with expected refs, so their reads cost nothing extra.
func TestReadersCallCarriesRefsDueSoon(t *testing.T) {
	b := memory.New("memory")
	putKeys(b, 10, "v")
	h := handleFor(t, b)
	due := time.Now().Add(5 * time.Second) // inside the horizon, but no full batch yet
	for i := 1; i < 10; i++ {
		h.Expect(keyRef(i), due, 10*time.Second, time.Minute)
	}
	if _, err := h.Get(context.Background(), keyRef(0), 0); err != nil {
		t.Fatal(err)
	}
	if got, n := b.Batches.Load(), b.LastBatch(); got != 1 || n != 10 {
		t.Fatalf("%d calls, the last with %d refs; want 1 call with 10", got, n)
	}
	for i := 1; i < 10; i++ {
		if _, err := h.Get(context.Background(), keyRef(i), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Batches.Load(); got != 1 {
		t.Fatalf("readers of the carried refs made %d more calls", got-1)
	}
}

// TestReadAheadForgetsAndPauses: a ref nobody asks for any more is read ahead once
// and then forgotten; while calls fail nothing is read ahead.
func TestReadAheadForgetsAndPauses(t *testing.T) {
	t.Run("an expected ref nobody asks for is read once, then forgotten", func(t *testing.T) {
		b := memory.New("memory")
		putKeys(b, 1, "v")
		h := handleFor(t, b)
		h.Expect(keyRef(0), time.Now().Add(100*time.Millisecond), 200*time.Millisecond, 300*time.Millisecond)
		left := 1
		for deadline := time.Now().Add(3 * time.Second); left > 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			h.mu.Lock()
			left = len(h.demand)
			h.mu.Unlock()
		}
		if got := b.Batches.Load(); got != 1 || left != 0 {
			t.Fatalf("%d calls, %d refs still expected; want 1 and 0", got, left)
		}
	})
	t.Run("no read-ahead while the backend fails", func(t *testing.T) {
		b := memory.New("memory")
		putKeys(b, 10, "v")
		h := handleFor(t, b)
		b.Fail(provider.Wrap(provider.ErrUnavailable, "503", errors.New("down")))
		if _, err := h.Get(context.Background(), keyRef(0), 0); err == nil {
			t.Fatal("read succeeded during the outage")
		}
		for i := range 10 {
			h.Expect(keyRef(i), time.Now().Add(200*time.Millisecond), time.Second, time.Minute)
		}
		time.Sleep(500 * time.Millisecond)
		if got := b.Batches.Load(); got != 1 {
			t.Fatalf("%d calls during the outage, want only the reader's 1", got)
		}
	})
}

// TestMissedReadersShareACall: expected readers whose refs the read-ahead did not
// read (here it is paused after a failure) wait for each other instead of each
// making its own call; a reader nobody expected is not held back that long.
func TestMissedReadersShareACall(t *testing.T) {
	b := memory.New("memory")
	putKeys(b, 6, "v")
	h := handleFor(t, b)
	b.Fail(provider.Wrap(provider.ErrUnavailable, "503", errors.New("down")))
	if _, err := h.Get(context.Background(), keyRef(5), 0); err == nil { // pauses the read-ahead
		t.Fatal("read succeeded during the outage")
	}
	b.Fail(nil)
	for i := range 5 {
		h.Expect(keyRef(i), time.Now(), time.Minute, time.Hour)
	}
	before := b.Batches.Load()
	done := make(chan error, 5)
	for i := range 5 {
		go func() {
			_, err := h.Get(context.Background(), keyRef(i), time.Minute)
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
	}
	for range 5 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Batches.Load() - before; got != 1 {
		t.Fatalf("5 expected readers arriving over 0.5 s made %d calls, want 1", got)
	}
	start := time.Now()
	if _, err := h.Get(context.Background(), keyRef(5), 0); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Fatalf("an unexpected reader waited %s", took)
	}
}
