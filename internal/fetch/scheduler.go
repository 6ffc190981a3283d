package fetch

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/secretsync/secretsync/internal/provider"
)

// scheduler is a Handle's batching, pacing and read-ahead state, guarded by the
// Handle's mu. One goroutine (run) sends every call of a store identity, so the
// quota and the smoothing hold for the store as a whole.
type scheduler struct {
	pending   []*call   // readers' calls not sent yet
	pendingBy time.Time // when the pending calls must go (zero: at once)
	demand    map[provider.Ref]*demand

	quota       *rate.Limiter // the client's own quota (provider.Paced); rate.Inf otherwise
	pace        pace          // the read-ahead's smoothed pace
	plannedAt   time.Time     // the last read-ahead plan
	pausedUntil time.Time     // a call failed as a whole: no read-ahead until then

	kick    chan struct{} // wakes a parked scheduler (buffered 1)
	stop    chan struct{}
	running bool
	closed  bool
	// parked: run sleeps until wakeAt unless kicked; wake clears it. Tests wait for a
	// parked scheduler before they move the fake clock.
	parked bool
	wakeAt time.Time
}

// demand is what the scheduler knows of a ref readers will ask for (never its
// value): when the next reader asks, how fresh it wants the value, how often it asks.
type demand struct {
	ref    provider.Ref
	due    time.Time
	maxAge time.Duration
	every  time.Duration
	read   time.Time // last read (attempt) of the ref
}

// pace spaces the read-ahead's calls gap apart, a gap re-planned from the demand at
// every look. It is a virtual time (GCRA), not a rate.Limiter: a new gap must apply
// to the time since the last call at once (a limiter re-rates only from the moment
// of the change, which after a restart, while the demand grows, would delay calls),
// and readers' calls may push it into debt only up to Timing.ReaderDebt (a limiter's
// debt is unbounded). The client's fixed quota is a rate.Limiter.
type pace struct {
	at  time.Time     // when the budget was last spent
	gap time.Duration // least time between calls, from the last plan
}

func (p pace) wait(now time.Time) time.Duration { return p.at.Add(p.gap).Sub(now) }

// owe spends one call's budget for a call the read-ahead did not make, at most debt ahead.
func (p *pace) owe(now time.Time, debt time.Duration) {
	if p.at = maxTime(p.at, now.Add(-p.gap)).Add(p.gap); p.at.After(now.Add(debt)) {
		p.at = now.Add(debt)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// untilToken is how long until l allows one call at now (0: at once).
func untilToken(l *rate.Limiter, now time.Time) time.Duration {
	if l.Limit() == rate.Inf {
		return 0
	}
	missing := 1 - l.TokensAt(now)
	if missing <= 1e-9 {
		return 0
	}
	return time.Duration(math.Ceil(missing / float64(l.Limit()) * float64(time.Second)))
}

// Expect records that a reader will ask for ref at due, accepting a value up to
// maxAge old, and again every interval after that. It makes no backend call: the
// scheduler reads the ref shortly before due (see ahead), so the reader finds it
// in the cache. Of several readers expecting one ref, the earliest due time counts.
func (h *Handle) Expect(ref provider.Ref, due time.Time, maxAge, every time.Duration) {
	if maxAge <= 0 || every <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	d := h.demand[ref]
	if d == nil {
		d = &demand{ref: ref}
		h.demand[ref] = d
	}
	longer := maxAge+every > d.maxAge+d.every
	sooner := d.due.IsZero() || due.Before(d.due)
	if sooner || !d.due.After(h.clock.Now()) { // a reader at its due time registers its next
		d.due = due
	}
	d.maxAge, d.every = maxAge, every
	if longer {
		h.keepLonger(ref)
	}
	if sooner { // a later due time is noticed at the scheduler's next look
		h.wake()
	}
}

// keepLonger extends the memory of ref's value, read before its demand was known
// (a first sync), to what the demand needs (keep). h.mu is held.
func (h *Handle) keepLonger(ref provider.Ref) {
	v, ok := h.values.Get(ref)
	if !ok {
		return
	}
	at := v.(cached).at
	if left := at.Add(h.keep(ref)).Sub(h.clock.Now()); left > 0 {
		h.values.Set(ref, v, left)
	}
}

// enqueue queues a reader's call (accepting a value maxAge old) for the next batch.
// h.mu is held.
func (h *Handle) enqueue(cl *call, maxAge time.Duration) {
	now := h.clock.Now()
	wait := time.Duration(0)
	if h.bg != nil {
		wait = h.timing.BatchWindow
		if d := h.demand[cl.ref]; d != nil && d.read.IsZero() && (!now.Before(d.due.Add(-h.timing.AheadMargin)) || maxAge > d.maxAge) {
			// An expected reader the read-ahead has not reached yet (right after a
			// restart): the others due now join its call instead of each making its
			// own. Also a reader accepting an older value than its demand's (a
			// multi-key refresh asking for a key as read ahead for that key's last
			// slot, before this process read it): such readers come at every slot of
			// the first interval after a restart. Not a retry after a failed read:
			// that goes at once.
			wait = h.timing.MissedWindow
		}
	}
	if by := now.Add(wait); len(h.pending) == 0 || by.Before(h.pendingBy) {
		h.pendingBy = by
	}
	h.pending = append(h.pending, cl)
	h.wake()
}

// wake makes sure the scheduler runs and looks again; h.mu is held. Only a parked
// scheduler needs the kick: one that is not parked looks again anyway.
func (h *Handle) wake() {
	if h.closed {
		return
	}
	if !h.running {
		h.running = true
		go h.run()
		return
	}
	if h.parked {
		h.parked = false
		h.kick <- struct{}{} // never blocks: run drains kick before it parks
	}
}

// run is the scheduler loop: look (step), then sleep until the next look or a kick.
func (h *Handle) run() {
	for {
		h.mu.Lock()
		select { // a kick sent while the timer also fired: this look covers it
		case <-h.kick:
		default:
		}
		now := h.clock.Now()
		wait := h.step(now)
		if wait == 0 {
			h.mu.Unlock()
			continue
		}
		t := h.clock.NewTimer(wait)
		h.parked, h.wakeAt = true, now.Add(wait)
		h.mu.Unlock()
		select {
		case <-h.kick:
		case <-t.C():
		case <-h.stop:
			t.Stop()
			return
		}
		t.Stop()
	}
}

// step sends at most one call and says how long to sleep before looking again
// (0: look again at once). Readers waiting come first; then the read-ahead. h.mu is held.
func (h *Handle) step(now time.Time) time.Duration {
	if len(h.pending) == 0 && len(h.demand) == 0 {
		return time.Hour // until kicked
	}
	if w := untilToken(h.quota, now); w > 0 {
		return w
	}
	if len(h.pending) > 0 {
		return h.sendPending(now)
	}
	return h.ahead(now)
}

// sendPending sends the readers' calls once their batch is full or their window
// has passed. h.mu is held.
func (h *Handle) sendPending(now time.Time) time.Duration {
	if w := h.pendingBy.Sub(now); w > 0 && len(h.pending) < h.maxBatch {
		return w
	}
	n := min(h.maxBatch, len(h.pending))
	calls := h.pending[:n:n]
	h.pending = h.pending[n:]
	h.pendingBy = time.Time{} // the rest waited long enough already
	h.send(h.fill(calls, now), now)
	// A reader's call is not delayed, but it spends the read-ahead's budget, so
	// readers and read-ahead together stay near the smoothed rate: after a restart
	// readers arrive before the read-ahead caught up.
	h.pace.owe(now, h.timing.ReaderDebt)
	return 0
}

// ahead reads refs shortly before readers will ask for them, so a scheduled refresh
// finds its value in the cache and never waits for the backend. This is what makes
// refreshes cheap and even: readers' refresh slots are spread over the interval
// (controllers/externalsecret nextSlot), the read-ahead takes the refs in due order
// in full batches, and it calls at most Smoothing times as often as the demand
// needs (one call per maxBatch refs per interval), so a backend sees a steady
// trickle instead of rounds of bursts, also right after an operator restart. h.mu is held.
func (h *Handle) ahead(now time.Time) time.Duration {
	if w := max(h.pausedUntil.Sub(now), h.plannedAt.Add(h.timing.PlanEvery).Sub(now)); w > 0 {
		return w
	}
	h.plannedAt = now
	p := h.candidates(now)
	// The gap follows the demand as it is now (it grows fast after a restart), and
	// a sparse demand needs more calls than refs/maxBatch (a call carries only the
	// refs due within one horizon): never more than half a horizon between calls.
	h.pace.gap = min(time.Duration(float64(time.Second)/(h.timing.Smoothing*p.perSecond)), p.horizon/2)
	if w := h.pace.wait(now); w > 0 {
		return min(w, p.look)
	}
	if len(p.due) == 0 {
		return p.look
	}
	first := p.due[0]
	if len(p.due) < h.maxBatch && first.due.Sub(now) > h.timing.fillMargin(first.maxAge) {
		return min(p.look, h.timing.FillLook) // wait for the batch to fill
	}
	h.send(h.take(nil, p.due), now)
	h.pace.at = now
	return h.pace.gap
}

// plan is what the scheduler sees in the demand at one moment.
type plan struct {
	due       []*demand     // refs to read ahead now, earliest due first
	perSecond float64       // calls per second the whole demand needs in full batches
	horizon   time.Duration // the shortest read-ahead horizon of any ref
	look      time.Duration // until the next ref enters its horizon
}

// candidates plans the read-ahead: the refs expected within their horizon, not in
// flight and not fresh enough for their reader. It forgets refs nobody asked for in
// a whole interval past their due time. It runs on every look of the scheduler,
// so it allocates nothing per ref it skips. h.mu is held.
func (h *Handle) candidates(now time.Time) plan {
	p := plan{look: h.timing.IdleLook, horizon: time.Hour}
	refs := 0.0
	for ref, d := range h.demand {
		if now.Sub(d.due) > d.every {
			delete(h.demand, ref)
			continue
		}
		refs += float64(time.Second) / float64(d.every)
		horizon := h.timing.Horizon(d.maxAge)
		p.horizon = min(p.horizon, horizon)
		if !d.read.IsZero() && d.due.Sub(d.read) < d.maxAge {
			continue
		}
		if _, busy := h.inflight[ref]; busy {
			continue
		}
		if until := d.due.Add(-horizon).Sub(now); until > 0 {
			p.look = min(p.look, until)
			continue
		}
		p.due = append(p.due, d)
	}
	slices.SortFunc(p.due, func(a, b *demand) int { return a.due.Compare(b.due) })
	p.perSecond = max(refs/float64(h.maxBatch), 1e-3)
	p.look = max(p.look, h.timing.MinLook)
	return p
}

// take adds calls for the first due refs to calls, up to a full batch. h.mu is held.
func (h *Handle) take(calls []*call, due []*demand) []*call {
	for _, d := range due {
		if len(calls) >= h.maxBatch {
			break
		}
		c := &call{ref: d.ref, done: make(chan struct{})}
		h.inflight[d.ref] = c
		calls = append(calls, c)
	}
	return calls
}

// fill adds refs due soon to a readers' batch call with free places: a place costs
// nothing, and the refs' readers then find them in the cache. h.mu is held.
func (h *Handle) fill(calls []*call, now time.Time) []*call {
	if h.bg == nil || len(calls) >= h.maxBatch || now.Before(h.pausedUntil) {
		return calls
	}
	return h.take(calls, h.candidates(now).due)
}

// send starts calls (one batch call, or one single read each) and takes the
// call's place in the client's quota. h.mu is held.
func (h *Handle) send(calls []*call, now time.Time) {
	h.quota.ReserveN(now, 1)
	if h.bg != nil {
		go h.batch(calls)
		return
	}
	for _, c := range calls {
		go h.single(c)
	}
}

// waitQuota blocks until the client may make one more call outside the scheduler
// (Find), and takes that place.
func (h *Handle) waitQuota() {
	h.mu.Lock()
	now := h.clock.Now()
	w := h.quota.ReserveN(now, 1).DelayFrom(now)
	h.mu.Unlock()
	if w > 0 {
		<-h.clock.After(w)
	}
}

// Calls are made without the readers' contexts: readers sharing a call may give up
// (ctx cancelled) while the others still wait for it.
func (h *Handle) single(cl *call) {
	cl.s, cl.err = h.client.GetSecret(context.Background(), cl.ref)
	h.failed(cl.err)
	h.finish(cl)
}

func (h *Handle) batch(calls []*call) {
	refs := make([]provider.Ref, len(calls))
	for i, c := range calls {
		refs[i] = c.ref
	}
	res, err := h.bg.GetSecrets(context.Background(), refs)
	h.failed(err)
	for i, c := range calls {
		switch {
		case err != nil:
			c.err = err
		case i < len(res):
			c.s, c.err = res[i].Secret, res[i].Err
		default:
			c.err = errors.New("batch returned fewer results than requested")
		}
		h.finish(c)
	}
}

// failed pauses the read-ahead after a call that failed as a whole. A per-ref error
// (not found, access denied) in a batch does not count: the backend is fine.
func (h *Handle) failed(err error) {
	if err == nil {
		return
	}
	if s := provider.Classify(err); s != nil && (errors.Is(s, provider.ErrNotFound) || errors.Is(s, provider.ErrAccessDenied)) {
		return
	}
	h.mu.Lock()
	h.pausedUntil = h.clock.Now().Add(h.timing.FailPause)
	h.mu.Unlock()
}
