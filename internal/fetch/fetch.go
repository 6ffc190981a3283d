// Package fetch sits between the reconcilers and the providers. It is the
// performance core: one client per store identity (reused across reconciles and
// workers, so one Vault login, one AWS credential chain), coalescing of identical
// concurrent reads, a short-lived value cache, batching of distinct keys into the
// backend's batch call (SSM GetParameters, Secrets Manager BatchGetSecretValue), and
// a scheduler per store that reads the keys of scheduled refreshes just ahead of
// time, in full batches and at an even pace.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// Options tune the fetch layer.
type Options struct {
	// BatchWindow is how long a read waits for others to share a batch call.
	BatchWindow time.Duration
	// CredentialRecheck is how often the resourceVersions of a store's credential
	// Secrets are re-read; a change builds a new client (rotation).
	CredentialRecheck time.Duration
	// Now is the clock (injected for tests).
	Now func() time.Time
}

// Fetcher hands out Handles, one per store identity.
type Fetcher struct {
	reg    *provider.Registry
	kube   provider.Kube
	reader client.Reader // uncached: credential Secrets are not in the managed cache
	opts   Options

	mu      sync.Mutex
	clients map[string]*slot
}

// New builds a Fetcher. reader must not be the manager's cached client.
func New(reg *provider.Registry, kube provider.Kube, reader client.Reader, opts Options) *Fetcher {
	if opts.BatchWindow == 0 {
		opts.BatchWindow = 5 * time.Millisecond
	}
	if opts.CredentialRecheck == 0 {
		opts.CredentialRecheck = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Fetcher{reg: reg, kube: kube, reader: reader, opts: opts, clients: map[string]*slot{}}
}

// slot holds the current client of one store (per consumer namespace where the
// store's auth depends on it). Its mutex serialises (re)building.
type slot struct {
	mu        sync.Mutex
	identity  string
	checkedAt time.Time
	handle    *Handle
}

func slotKey(store v1alpha1.GenericStore, consumer string) string {
	k := store.GetKind() + "/" + store.GetNamespace() + "/" + store.GetName()
	if provider.UsesConsumerNamespace(store) {
		k += "@" + consumer
	}
	return k
}

// For returns the Handle for store as used from namespace consumer, building a
// client only when the store identity (UID, generation, credential Secret
// resourceVersions) changed.
func (f *Fetcher) For(ctx context.Context, store v1alpha1.GenericStore, consumer string) (*Handle, error) {
	key := slotKey(store, consumer)
	f.mu.Lock()
	s, ok := f.clients[key]
	if !ok {
		s = &slot{}
		f.clients[key] = s
	}
	f.mu.Unlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	now := f.opts.Now()
	base := fmt.Sprintf("%s/%d", store.GetUID(), store.GetGeneration())
	if s.handle != nil && strings.HasPrefix(s.identity, base+"|") && now.Sub(s.checkedAt) < f.opts.CredentialRecheck {
		return s.handle, nil
	}
	rvs, err := f.credentialVersions(ctx, store)
	if err != nil {
		return nil, err
	}
	id := base + "|" + rvs
	s.checkedAt = now
	if s.handle != nil && s.identity == id {
		return s.handle, nil
	}
	p, err := f.reg.For(store.GetSpec())
	if err != nil {
		return nil, err
	}
	// No client is built for a store the operator's identity policy refuses (the store
	// controller applies the same rules); see provider.IdentityPolicy.
	if err := provider.PolicyOf(f.kube).Check(store); err != nil {
		return nil, err
	}
	c, err := p.NewClient(ctx, store, f.kube, consumer)
	if err != nil {
		return nil, err
	}
	old := s.handle
	s.handle = newHandle(p.Name(), c, f.opts)
	s.identity = id
	if old != nil {
		// The superseded identity's token or session is released in the background:
		// readers still holding the old handle finish their calls first.
		go old.close(context.WithoutCancel(ctx))
	}
	return s.handle, nil
}

// Forget closes and drops every client of a store (deleted store, or an auth
// failure that a fresh login may cure).
func (f *Fetcher) Forget(ctx context.Context, kind, namespace, name string) {
	prefix := kind + "/" + namespace + "/" + name
	f.mu.Lock()
	var drop []*slot
	for k, s := range f.clients {
		if k == prefix || strings.HasPrefix(k, prefix+"@") {
			drop = append(drop, s)
			delete(f.clients, k)
		}
	}
	f.mu.Unlock()
	for _, s := range drop {
		s.mu.Lock()
		if s.handle != nil {
			s.handle.close(ctx)
		}
		s.mu.Unlock()
	}
}

func (f *Fetcher) credentialVersions(ctx context.Context, store v1alpha1.GenericStore) (string, error) {
	refs := provider.CredentialSecrets(store)
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	var b strings.Builder
	seen := map[types.NamespacedName]bool{}
	for _, r := range refs {
		if seen[r] {
			continue
		}
		seen[r] = true
		// Metadata only: the resourceVersion is all the identity needs.
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(secretGVK)
		if err := f.reader.Get(ctx, r, m); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return "", fmt.Errorf("secret %s: %w", r, provider.ErrCredentials)
			}
			return "", fmt.Errorf("read secret %s: %w", r, err)
		}
		b.WriteString(r.String() + "=" + m.ResourceVersion + ";")
	}
	return b.String(), nil
}

// Handle is a store identity's client plus its coalescing, cache, batcher and
// read-ahead scheduler.
type Handle struct {
	provider string
	client   provider.Client
	opts     Options
	bg       provider.BatchGetter // nil: one ref per call
	maxBatch int                  // refs per call (1 without batching)
	quotaGap time.Duration        // Paced clients: least time between two calls

	mu          sync.Mutex
	cache       map[provider.Ref]cached
	inflight    map[provider.Ref]*call
	pending     []*call   // readers' calls not sent yet
	pendingBy   time.Time // when the pending calls must go (zero: at once)
	demand      map[provider.Ref]*demand
	nextCall    time.Time     // quota: no call before (wall clock)
	smoothAt    time.Time     // smoothing: when the budget was last spent (wall clock)
	smoothGap   time.Duration // smoothing: least time between calls, from the last plan
	plannedAt   time.Time     // the last read-ahead plan (wall clock)
	pausedUntil time.Time     // a call failed as a whole: no read-ahead until then
	inserts     int

	kick    chan struct{} // wakes the scheduler (buffered 1)
	stop    chan struct{}
	running bool
	closed  bool

	findMu    sync.Mutex
	findCache map[string]cachedFind
	findCalls map[string]*findCall
}

// maxCacheAge bounds how long a value stays in memory; readers reuse values for at
// most their maxAge (see controllers/externalsecret cacheWindow, at most 5 minutes).
const maxCacheAge = 10 * time.Minute

const (
	// smoothing is how much faster than the demand needs the read-ahead may call:
	// enough headroom to catch up after a cluster of due refs, little enough that a
	// second never sees much more than the mean rate.
	smoothing = 1.15
	// aheadMargin: a read-ahead call goes out with fewer refs than a full batch
	// only when its earliest ref is due this soon (or within an eighth of its maxAge).
	aheadMargin = time.Second
	// failPause: after a call failed as a whole (throttling, an outage) nothing is
	// read ahead for this long, so the scheduler never adds load to a backend in trouble.
	failPause = 10 * time.Second
	// idleLook bounds how long the scheduler sleeps while refs are expected.
	idleLook = time.Second
	// planEvery: the read-ahead is planned (a pass over the store's expected refs)
	// at most this often, however often readers register (thousands per second in a
	// cold burst); readers' own calls are not held back by it.
	planEvery = 50 * time.Millisecond
	// missedWindow is how long an expected reader whose ref the read-ahead did not
	// read waits for others to share its batch call.
	missedWindow = time.Second
)

type cached struct {
	s  provider.Secret
	at time.Time
}

type call struct {
	ref  provider.Ref
	done chan struct{}
	s    provider.Secret
	err  error
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

// horizon is how long before its due time a ref may be read ahead: the value must
// still be younger than maxAge when the reader asks, with a quarter to spare for a
// reader that comes late.
func (d *demand) horizon() time.Duration { return d.maxAge * 3 / 4 }

func newHandle(name string, c provider.Client, opts Options) *Handle {
	h := &Handle{provider: name, client: c, opts: opts, maxBatch: 1,
		cache: map[provider.Ref]cached{}, inflight: map[provider.Ref]*call{}, demand: map[provider.Ref]*demand{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}),
		findCache: map[string]cachedFind{}, findCalls: map[string]*findCall{}}
	if bg, ok := c.(provider.BatchGetter); ok && bg.MaxBatch() > 1 {
		h.bg, h.maxBatch = bg, bg.MaxBatch()
	}
	if p, ok := c.(provider.Paced); ok && p.MaxCallsPerSecond() > 0 {
		h.quotaGap = time.Duration(float64(time.Second) / p.MaxCallsPerSecond())
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
	sooner := d.due.IsZero() || due.Before(d.due)
	if sooner || d.due.Before(h.opts.Now()) {
		d.due = due
	}
	d.maxAge, d.every = maxAge, every
	if sooner { // a later due time is noticed at the scheduler's next look
		h.wake()
	}
}

// Get reads ref. A value read less than maxAge ago is reused (maxAge 0 forces a
// read); identical concurrent reads share one backend call; distinct reads within
// BatchWindow share a batch call when the client supports batching, and the call's
// free places carry refs that are due soon (see fill).
func (h *Handle) Get(ctx context.Context, ref provider.Ref, maxAge time.Duration) (provider.Secret, error) {
	h.mu.Lock()
	if c, ok := h.cache[ref]; ok && maxAge > 0 && h.opts.Now().Sub(c.at) < maxAge {
		h.mu.Unlock()
		return c.s, nil
	}
	cl, ok := h.inflight[ref]
	if !ok {
		cl = &call{ref: ref, done: make(chan struct{})}
		h.inflight[ref] = cl
		wait := h.window()
		if d := h.demand[ref]; d != nil {
			if h.bg != nil && d.read.IsZero() && !h.opts.Now().Before(d.due.Add(-aheadMargin)) {
				// An expected reader the read-ahead has not reached yet (right after a
				// restart): the others due now join its call instead of each making its
				// own. Not a retry after a failed read: that goes at once.
				wait = missedWindow
			}
		}
		if by := time.Now().Add(wait); len(h.pending) == 0 || by.Before(h.pendingBy) {
			h.pendingBy = by
		}
		h.pending = append(h.pending, cl)
		h.wake()
	}
	h.mu.Unlock()
	select {
	case <-cl.done:
		return cl.s, cl.err
	case <-ctx.Done():
		return provider.Secret{}, ctx.Err()
	}
}

// wake makes sure the scheduler runs and looks again; h.mu is held.
func (h *Handle) wake() {
	if h.closed {
		return
	}
	if !h.running {
		h.running = true
		go h.run()
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run is the scheduler: the one goroutine that sends calls, so the quota and the
// smoothing hold for the store as a whole.
func (h *Handle) run() {
	for {
		h.mu.Lock()
		wait := h.step()
		h.mu.Unlock()
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-h.kick:
		case <-t.C:
		case <-h.stop:
			t.Stop()
			return
		}
		t.Stop()
	}
}

// step sends at most one call and says how long to sleep before looking again
// (0: look again at once). Readers waiting come first; then the read-ahead. h.mu is held.
func (h *Handle) step() time.Duration {
	now := time.Now()
	if len(h.pending) == 0 && len(h.demand) == 0 {
		return time.Hour // until kicked
	}
	if w := h.nextCall.Sub(now); w > 0 {
		return w
	}
	if len(h.pending) > 0 {
		if w := h.pendingBy.Sub(now); w > 0 && len(h.pending) < h.maxBatch {
			return w
		}
		n := min(h.maxBatch, len(h.pending))
		calls := h.pending[:n:n]
		h.pending = h.pending[n:]
		h.pendingBy = time.Time{} // the rest waited long enough already
		h.send(h.fill(calls), now)
		// A reader's call is not delayed, but it spends the read-ahead's budget (at
		// most a second's worth), so readers and read-ahead together stay near the
		// smoothed rate: after a restart readers arrive before the read-ahead caught up.
		if h.smoothAt = maxTime(h.smoothAt, now.Add(-h.smoothGap)).Add(h.smoothGap); h.smoothAt.After(now.Add(time.Second)) {
			h.smoothAt = now.Add(time.Second)
		}
		return 0
	}
	return h.ahead(now)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// window is how long the first reader waits for others to share its call.
func (h *Handle) window() time.Duration {
	if h.bg == nil {
		return 0
	}
	return h.opts.BatchWindow
}

// ahead reads refs shortly before readers will ask for them, so a scheduled refresh
// finds its value in the cache and never waits for the backend. This is what makes
// refreshes cheap and even: readers' refresh slots are spread over the interval
// (controllers/externalsecret nextSlot), the read-ahead takes the refs in due order
// in full batches, and it calls at most smoothing times as often as the demand
// needs (one call per maxBatch refs per interval), so a backend sees a steady
// trickle instead of rounds of bursts, also right after an operator restart. h.mu is held.
func (h *Handle) ahead(now time.Time) time.Duration {
	if w := max(h.pausedUntil.Sub(now), h.plannedAt.Add(planEvery).Sub(now)); w > 0 {
		return w
	}
	h.plannedAt = now
	p := h.candidates()
	// The gap follows the demand as it is now (it grows fast after a restart), and
	// a sparse demand needs more calls than refs/maxBatch (a call carries only the
	// refs due within one horizon): never more than half a horizon between calls.
	h.smoothGap = min(time.Duration(float64(time.Second)/(smoothing*p.perSecond)), p.horizon/2)
	if w := h.smoothAt.Add(h.smoothGap).Sub(now); w > 0 {
		return min(w, p.look)
	}
	if len(p.due) == 0 {
		return p.look
	}
	first := p.due[0]
	if len(p.due) < h.maxBatch && first.due.Sub(h.opts.Now()) > min(aheadMargin, first.maxAge/8) {
		return min(p.look, 200*time.Millisecond) // wait for the batch to fill
	}
	h.send(h.take(nil, p.due), now)
	h.smoothAt = now
	return h.smoothGap
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
// so it allocates nothing per ref it skips.
func (h *Handle) candidates() plan {
	now := h.opts.Now()
	p := plan{look: idleLook, horizon: time.Hour}
	refs := 0.0
	for ref, d := range h.demand {
		if now.Sub(d.due) > d.every {
			delete(h.demand, ref)
			continue
		}
		refs += float64(time.Second) / float64(d.every)
		p.horizon = min(p.horizon, d.horizon())
		if !d.read.IsZero() && d.due.Sub(d.read) < d.maxAge {
			continue
		}
		if _, busy := h.inflight[ref]; busy {
			continue
		}
		if until := d.due.Add(-d.horizon()).Sub(now); until > 0 {
			p.look = min(p.look, until)
			continue
		}
		p.due = append(p.due, d)
	}
	slices.SortFunc(p.due, func(a, b *demand) int { return a.due.Compare(b.due) })
	p.perSecond = max(refs/float64(h.maxBatch), 1e-3)
	p.look = max(p.look, 10*time.Millisecond)
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
func (h *Handle) fill(calls []*call) []*call {
	if h.bg == nil || len(calls) >= h.maxBatch || time.Now().Before(h.pausedUntil) {
		return calls
	}
	return h.take(calls, h.candidates().due)
}

// send starts calls (one batch call, or one single read) and spaces the next call
// at the client's quota. h.mu is held.
func (h *Handle) send(calls []*call, now time.Time) {
	h.nextCall = now.Add(h.quotaGap)
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
	for {
		h.mu.Lock()
		now := time.Now()
		w := h.nextCall.Sub(now)
		if w <= 0 {
			h.nextCall = now.Add(h.quotaGap)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		time.Sleep(w)
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
	h.pausedUntil = time.Now().Add(failPause)
	h.mu.Unlock()
}

func (h *Handle) finish(cl *call) {
	h.mu.Lock()
	delete(h.inflight, cl.ref)
	now := h.opts.Now()
	if d := h.demand[cl.ref]; d != nil {
		d.read = now // also on error: the ref is not read ahead again before its reader asks
	}
	if cl.err == nil {
		h.cache[cl.ref] = cached{s: cl.s, at: now}
		// Values are only reused within a reader's maxAge (well under maxCacheAge), so
		// older ones are dropped now and then: the cache never grows without bound.
		if h.inserts++; h.inserts%256 == 0 {
			for ref, c := range h.cache {
				if now.Sub(c.at) > maxCacheAge {
					delete(h.cache, ref)
				}
			}
		}
	}
	h.mu.Unlock()
	close(cl.done)
}

type cachedFind struct {
	res map[string]provider.Secret
	at  time.Time
}

type findCall struct {
	done chan struct{}
	res  map[string]provider.Secret
	err  error
}

// Find runs q with the same reuse and coalescing rules as Get.
func (h *Handle) Find(ctx context.Context, q provider.FindQuery, maxAge time.Duration) (map[string]provider.Secret, error) {
	key := findKey(q)
	h.findMu.Lock()
	if c, ok := h.findCache[key]; ok && maxAge > 0 && h.opts.Now().Sub(c.at) < maxAge {
		h.findMu.Unlock()
		return c.res, nil
	}
	fc, ok := h.findCalls[key]
	if !ok {
		fc = &findCall{done: make(chan struct{})}
		h.findCalls[key] = fc
		go func() {
			ctx := context.WithoutCancel(ctx)
			h.waitQuota()
			fc.res, fc.err = h.client.Find(ctx, q)
			h.findMu.Lock()
			delete(h.findCalls, key)
			if fc.err == nil {
				h.findCache[key] = cachedFind{res: fc.res, at: h.opts.Now()}
			}
			h.findMu.Unlock()
			close(fc.done)
		}()
	}
	h.findMu.Unlock()
	select {
	case <-fc.done:
		return fc.res, fc.err
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
