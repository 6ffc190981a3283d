// Package fetch sits between the reconcilers and the providers. It is the
// performance core: one client per store identity (reused across reconciles and
// workers, so one Vault login, one AWS credential chain), coalescing of identical
// concurrent reads, a short-lived value cache that lets every ExternalSecret of a
// refresh round share one read, and batching of distinct keys into the backend's
// batch call (SSM GetParameters, Secrets Manager BatchGetSecretValue).
package fetch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/metrics"
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

// Handle is a store identity's client plus its coalescing, cache and batcher.
type Handle struct {
	provider string
	client   provider.Client
	opts     Options

	mu          sync.Mutex
	cache       map[provider.Ref]cached
	inflight    map[provider.Ref]*call
	pending     []*call
	dispatching bool
	inserts     int
	// demand and sweepOff drive the sweep (batching clients only): see sweep.
	demand   map[provider.Ref]*demand
	sweepOff bool // the last batch call failed as a whole: do not add to the load

	// pace spaces the backend calls of a Paced client evenly (burst 1): a round's
	// batch calls never exceed the backend's per-second quota share.
	pace *rate.Limiter

	findMu    sync.Mutex
	findCache map[string]cachedFind
	findCalls map[string]*findCall
}

// maxCacheAge bounds how long a value stays in memory; callers reuse values for at
// most a refresh round's window (see controllers/externalsecret cacheWindow).
const maxCacheAge = 5 * time.Minute

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

// demand is what the sweep knows of a ref readers ask for (never its value): how
// fresh they want it, when it was last read, and how many sweeps read it for nobody.
type demand struct {
	maxAge  time.Duration // the last non-zero maxAge a reader asked with
	fetched time.Time     // last successful read
	idle    int           // sweeps since a reader last asked for it
}

const (
	// maxIdleSweeps: a ref swept this many times without a reader asking for it in
	// between (its ExternalSecret is gone or changed) is forgotten.
	maxIdleSweeps = 2
)

func newHandle(name string, c provider.Client, opts Options) *Handle {
	h := &Handle{provider: name, client: c, opts: opts,
		cache: map[provider.Ref]cached{}, inflight: map[provider.Ref]*call{}, demand: map[provider.Ref]*demand{},
		findCache: map[string]cachedFind{}, findCalls: map[string]*findCall{}}
	if p, ok := c.(provider.Paced); ok && p.MaxCallsPerSecond() > 0 {
		h.pace = rate.NewLimiter(rate.Limit(p.MaxCallsPerSecond()), 1)
	}
	return h
}

// wait blocks until the client may make one more backend call.
func (h *Handle) wait(ctx context.Context) {
	if h.pace != nil {
		_ = h.pace.Wait(ctx) // ctx is never cancelled here (WithoutCancel)
	}
}

// Client exposes the provider client for capabilities the fetch layer does not
// mediate (leases, decryption, Check).
func (h *Handle) Client() provider.Client { return h.client }

// Provider is the provider's name.
func (h *Handle) Provider() string { return h.provider }

func (h *Handle) close(ctx context.Context) { _ = h.client.Close(ctx) }

// Expect records that a reader will ask for ref with maxAge (an ExternalSecret that
// a restarted operator found in sync). The ref has no value yet, so the first batch
// call of the store's next round sweeps it in with the others. No backend call.
func (h *Handle) Expect(ref provider.Ref, maxAge time.Duration) {
	if _, batching := h.client.(provider.BatchGetter); !batching || maxAge <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.demand[ref]; !ok {
		h.demand[ref] = &demand{maxAge: maxAge}
	}
}

// Get reads ref. A value read less than maxAge ago is reused (maxAge 0 forces a
// read); identical concurrent reads share one backend call; distinct reads within
// BatchWindow share a batch call when the client supports batching, and that call
// also refreshes other refs whose values went stale (see sweep).
func (h *Handle) Get(ctx context.Context, ref provider.Ref, maxAge time.Duration) (provider.Secret, error) {
	bg, batching := h.client.(provider.BatchGetter)
	h.mu.Lock()
	if d := h.demand[ref]; d != nil {
		d.idle = 0
		if maxAge > 0 {
			d.maxAge = maxAge
		}
	} else if batching && maxAge > 0 {
		h.demand[ref] = &demand{maxAge: maxAge}
	}
	if c, ok := h.cache[ref]; ok && maxAge > 0 && h.opts.Now().Sub(c.at) < maxAge {
		h.mu.Unlock()
		return c.s, nil
	}
	cl, ok := h.inflight[ref]
	if !ok {
		cl = &call{ref: ref, done: make(chan struct{})}
		h.inflight[ref] = cl
		if batching {
			h.enqueue(ctx, bg, cl)
		} else {
			go h.single(context.WithoutCancel(ctx), cl)
		}
	}
	h.mu.Unlock()
	select {
	case <-cl.done:
		return cl.s, cl.err
	case <-ctx.Done():
		return provider.Secret{}, ctx.Err()
	}
}

// enqueue adds cl to the pending refs and makes sure a dispatcher runs; h.mu is held.
func (h *Handle) enqueue(ctx context.Context, bg provider.BatchGetter, cl *call) {
	h.pending = append(h.pending, cl)
	if !h.dispatching {
		h.dispatching = true
		go h.dispatch(context.WithoutCancel(ctx), bg)
	}
}

// dispatch sends the pending refs in batch calls until none are left: first after
// the batch window (readers arriving together share a call), then as fast as the
// client's pace allows. Refs that arrive while it waits join the next call, so under
// load a paced client's calls fill up instead of queueing one call per reader.
func (h *Handle) dispatch(ctx context.Context, bg provider.BatchGetter) {
	time.Sleep(h.opts.BatchWindow)
	for {
		h.mu.Lock()
		if len(h.pending) == 0 {
			h.dispatching = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		h.wait(ctx) // only this goroutine takes from pending: it can only grow meanwhile
		h.mu.Lock()
		n := min(bg.MaxBatch(), len(h.pending))
		calls := h.sweep(h.pending[:n:n], bg.MaxBatch())
		h.pending = h.pending[n:]
		h.mu.Unlock()
		go h.batch(ctx, bg, calls)
	}
}

// sweep fills a batch call's free places (up to limit refs) with refs readers asked
// for before whose last read is older than the maxAge they ask with: they will be
// asked for again soon.
//
// This is what makes a refresh round cheap. The ExternalSecrets of one store refresh
// in a round, spread over a few seconds (controllers/externalsecret nextSlot), each
// accepting a value read earlier in the same round (cacheWindow). Without the sweep
// each reader arriving after the batch window has closed costs a call carrying one
// ref (100 ExternalSecrets over one second: about 50 calls). With it every call of the
// round is full, and the readers of the swept refs find them read or in flight.
//
// A ref swept maxIdleSweeps times with no reader asking for it in between is
// forgotten, and nothing is swept while batch calls fail (throttling, an outage),
// so the sweep never adds load to a backend in trouble. h.mu is held.
func (h *Handle) sweep(calls []*call, limit int) []*call {
	if h.sweepOff || len(calls) >= limit {
		return calls
	}
	now := h.opts.Now()
	for ref, d := range h.demand {
		if len(calls) >= limit {
			break
		}
		if d.maxAge <= 0 || now.Sub(d.fetched) < d.maxAge {
			continue
		}
		if _, busy := h.inflight[ref]; busy {
			continue
		}
		if d.idle >= maxIdleSweeps {
			delete(h.demand, ref)
			continue
		}
		d.idle++ // a reader asking for ref resets it
		cl := &call{ref: ref, done: make(chan struct{})}
		h.inflight[ref] = cl
		calls = append(calls, cl)
	}
	return calls
}

func (h *Handle) single(ctx context.Context, cl *call) {
	h.wait(ctx)
	cl.s, cl.err = h.client.GetSecret(ctx, cl.ref)
	count(h.provider, "get", cl.err)
	h.finish(cl)
}

func (h *Handle) batch(ctx context.Context, bg provider.BatchGetter, calls []*call) {
	refs := make([]provider.Ref, len(calls))
	for i, c := range calls {
		refs[i] = c.ref
	}
	res, err := bg.GetSecrets(ctx, refs) // paced by dispatch
	count(h.provider, "batch_get", err)
	h.mu.Lock()
	h.sweepOff = err != nil
	h.mu.Unlock()
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

func (h *Handle) finish(cl *call) {
	h.mu.Lock()
	delete(h.inflight, cl.ref)
	if cl.err == nil {
		now := h.opts.Now()
		h.cache[cl.ref] = cached{s: cl.s, at: now}
		if d := h.demand[cl.ref]; d != nil {
			d.fetched = now
		}
		// Values are only reused for a refresh round (well under maxCacheAge), so
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
			h.wait(ctx)
			fc.res, fc.err = h.client.Find(ctx, q)
			count(h.provider, "find", fc.err)
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

func count(prov, op string, err error) {
	result := "success"
	if err != nil {
		result = "error"
		if s := provider.Classify(err); s != nil {
			result = strings.ReplaceAll(s.Error(), " ", "_")
		}
	}
	metrics.ProviderRequests.WithLabelValues(prov, op, result).Inc()
}
