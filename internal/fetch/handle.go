package fetch

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/utils/clock"

	"github.com/secretsync/secretsync/internal/provider"
)

// Handle is a store identity's client plus its coalescing, value cache, batcher
// and read-ahead scheduler (scheduler.go).
type Handle struct {
	provider string
	client   provider.Client
	timing   Timing
	clock    clock.Clock
	bg       provider.BatchGetter // nil: one ref per call
	maxBatch int                  // refs per call (1 without batching)

	// values holds the last value read of each ref (cached), finds the last answer
	// of each find query (cachedFind). Entries expire after Timing.MaxCacheAge, a
	// value of an expected ref only once every reader may have accepted it (keep);
	// readers reuse them only within their own maxAge.
	values *cache.Expiring
	finds  *cache.Expiring
	// findCalls coalesces identical concurrent finds.
	findCalls singleflight.Group

	mu       sync.Mutex
	inflight map[provider.Ref]*call // one call per ref at a time, readers' or read-ahead's
	scheduler
}

type cached struct {
	s  provider.Secret
	at time.Time
}

type cachedFind struct {
	res map[string]provider.Secret
	at  time.Time
}

// call is one ref's read, shared by every reader that asks while it is pending or
// in flight. done is closed when s and err are set.
type call struct {
	ref  provider.Ref
	done chan struct{}
	s    provider.Secret
	err  error
}

func newHandle(name string, c provider.Client, opts Options) *Handle {
	opts = opts.withDefaults()
	h := &Handle{provider: name, client: c, timing: opts.Timing, clock: opts.Clock, maxBatch: 1,
		values:   cache.NewExpiringWithClock(opts.Clock),
		finds:    cache.NewExpiringWithClock(opts.Clock),
		inflight: map[provider.Ref]*call{},
		scheduler: scheduler{demand: map[provider.Ref]*demand{}, kick: make(chan struct{}, 1), stop: make(chan struct{}),
			quota: rate.NewLimiter(rate.Inf, 1)},
	}
	if bg, ok := c.(provider.BatchGetter); ok && bg.MaxBatch() > 1 {
		h.bg, h.maxBatch = bg, bg.MaxBatch()
	}
	if p, ok := c.(provider.Paced); ok && p.MaxCallsPerSecond() > 0 {
		// Burst 1: calls are spaced evenly, never bunched at the quota's edge.
		h.quota = rate.NewLimiter(rate.Limit(p.MaxCallsPerSecond()), 1)
	}
	return h
}

// Client exposes the provider client for capabilities the fetch layer does not
// mediate (leases, decryption, Check).
func (h *Handle) Client() provider.Client { return h.client }

// Provider is the provider's name.
func (h *Handle) Provider() string { return h.provider }

func (h *Handle) close(ctx context.Context) {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.stop)
	}
	h.mu.Unlock()
	_ = h.client.Close(ctx)
}

// fresh is ref's cached value if it was read less than maxAge ago. h.mu is held.
func (h *Handle) fresh(ref provider.Ref, maxAge time.Duration) (provider.Secret, bool) {
	if maxAge <= 0 {
		return provider.Secret{}, false
	}
	v, ok := h.values.Get(ref)
	if !ok || h.clock.Since(v.(cached).at) >= maxAge {
		return provider.Secret{}, false
	}
	return v.(cached).s, true
}

// Get reads ref. A value read less than maxAge ago is reused (maxAge 0 forces a
// read); identical concurrent reads share one backend call; distinct reads within
// Timing.BatchWindow share a batch call when the client supports batching, and the
// call's free places carry refs that are due soon (see fill).
func (h *Handle) Get(ctx context.Context, ref provider.Ref, maxAge time.Duration) (provider.Secret, error) {
	h.mu.Lock()
	if s, ok := h.fresh(ref, maxAge); ok {
		h.mu.Unlock()
		return s, nil
	}
	cl, ok := h.inflight[ref]
	if !ok {
		cl = &call{ref: ref, done: make(chan struct{})}
		h.inflight[ref] = cl
		h.enqueue(cl, maxAge)
	}
	h.mu.Unlock()
	select {
	case <-cl.done:
		return cl.s, cl.err
	case <-ctx.Done():
		return provider.Secret{}, ctx.Err()
	}
}

// finish records cl's result and releases its readers.
func (h *Handle) finish(cl *call) {
	h.mu.Lock()
	delete(h.inflight, cl.ref)
	now := h.clock.Now()
	if d := h.demand[cl.ref]; d != nil {
		d.read = now // also on error: the ref is not read ahead again before its reader asks
	}
	switch {
	case cl.err == nil:
		h.values.Set(cl.ref, cached{s: cl.s, at: now}, h.keep(cl.ref))
	case errors.Is(cl.err, provider.ErrNotFound):
		// The backend says the ref is gone: no later reader may be served the value
		// from before (a deleted target re-created with old data, a RemoteNotFound
		// flapping to Synced), and nothing reads it ahead until a reader expects it
		// again. Calls of one ref never overlap (inflight), so no older read can put
		// the value back.
		h.values.Delete(cl.ref)
		delete(h.demand, cl.ref)
	}
	h.mu.Unlock()
	close(cl.done)
}

// keep is how long a value of ref read now stays in memory. A scheduled refresh
// of an ExternalSecret reading several keys accepts each key's value read ahead for
// that key's own slot, up to an interval plus a cache window old (its maxAge is the
// time since that slot plus the window): an expected ref's value is kept that long,
// or the refresh would read it again. Other values keep Timing.MaxCacheAge. h.mu is held.
func (h *Handle) keep(ref provider.Ref) time.Duration {
	if d := h.demand[ref]; d != nil {
		return max(h.timing.MaxCacheAge, d.every+d.maxAge)
	}
	return h.timing.MaxCacheAge
}

// Settled reports whether the read-ahead scheduler is asleep on a timer that has
// not fired (or never started) and no call is running. Tests on a fake clock wait
// for it before they move the clock, so what they see does not depend on the
// machine's speed.
func (h *Handle) Settled() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	idle := !h.running || (h.parked && h.clock.Now().Before(h.wakeAt))
	return idle && len(h.inflight) == len(h.pending)
}

// ReadersWaiting reports whether readers' calls wait for their batch window to
// pass: a test on a fake clock moves the clock only then, so a reconcile's own work
// takes no fake time.
func (h *Handle) ReadersWaiting() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pending) > 0
}

// Find runs q with the same reuse and coalescing rules as Get. Finds are not
// batched; they take a place in the client's quota like any call.
func (h *Handle) Find(ctx context.Context, q provider.FindQuery, maxAge time.Duration) (map[string]provider.Secret, error) {
	key := findKey(q)
	if v, ok := h.finds.Get(key); ok && maxAge > 0 && h.clock.Since(v.(cachedFind).at) < maxAge {
		return v.(cachedFind).res, nil
	}
	// The call outlives the reader that started it: others may share it.
	bg := context.WithoutCancel(ctx)
	ch := h.findCalls.DoChan(key, func() (any, error) {
		h.waitQuota()
		res, err := h.client.Find(bg, q)
		if err == nil {
			h.finds.Set(key, cachedFind{res: res, at: h.clock.Now()}, h.timing.MaxCacheAge)
		}
		return res, err
	})
	select {
	case r := <-ch:
		res, _ := r.Val.(map[string]provider.Secret)
		return res, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func findKey(q provider.FindQuery) string {
	tags := make([]string, 0, len(q.Tags))
	for k, v := range q.Tags {
		tags = append(tags, k+"="+v)
	}
	sort.Strings(tags)
	return strings.TrimSuffix(q.Path, "/") + "\x00" + q.NameRegexp + "\x00" + strings.Join(tags, "\x00")
}
