// Package fetch sits between the reconcilers and the providers. It is the
// performance core, one file per job:
//   - fetcher.go: one client per store identity (reused across reconciles and
//     workers, so one Vault login, one AWS credential chain);
//   - handle.go: a client's coalescing of identical concurrent reads and its
//     short-lived value cache (Get, Find);
//   - scheduler.go: batching of distinct keys into the backend's batch call (SSM
//     GetParameters, Secrets Manager BatchGetSecretValue), pacing, and the read-ahead
//     of the keys of scheduled refreshes just ahead of time, in full batches and at
//     an even pace;
//   - timing.go: the timing model all of this shares with the refresh slots
//     (docs/design/refresh.md).
package fetch

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// Options tune the fetch layer. The zero value is the production setting.
type Options struct {
	// Timing is the cache, read-ahead and pacing model; zero fields take
	// DefaultTiming's.
	Timing Timing
	// CredentialRecheck is how often the resourceVersions of a store's credential
	// Secrets are re-read; a change builds a new client (rotation). Default 1 minute.
	CredentialRecheck time.Duration
	// Clock is injected for tests (k8s.io/utils/clock/testing); nil is the wall clock.
	Clock clock.Clock
}

func (o Options) withDefaults() Options {
	o.Timing = o.Timing.orDefault()
	if o.CredentialRecheck == 0 {
		o.CredentialRecheck = time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o
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
	return &Fetcher{reg: reg, kube: kube, reader: reader, opts: opts.withDefaults(), clients: map[string]*slot{}}
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
	now := f.opts.Clock.Now()
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
	why := "first use"
	if old != nil {
		why = "store spec or credential Secrets changed"
	}
	log.FromContext(ctx).V(1).Info("backend client built", "storeKind", store.GetKind(), "store", store.GetName(),
		"storeNamespace", store.GetNamespace(), "consumerNamespace", consumer, "provider", p.Name(), "why", why)
	s.handle = newHandle(p.Name(), c, f.opts)
	s.identity = id
	if old != nil {
		// The superseded identity's token or session is released in the background:
		// readers still holding the old handle finish their calls first.
		go old.close(context.WithoutCancel(ctx))
	}
	return s.handle, nil
}

// Recheck makes the next For of store re-read its credential versions now instead
// of after CredentialRecheck: after an authentication failure, rotated credentials
// (a new token in the referenced Secret) are picked up at the next retry.
func (f *Fetcher) Recheck(store v1alpha1.GenericStore, consumer string) {
	f.mu.Lock()
	s := f.clients[slotKey(store, consumer)]
	f.mu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	s.checkedAt = time.Time{}
	s.mu.Unlock()
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
	return provider.CredentialVersions(ctx, f.reader, store)
}
