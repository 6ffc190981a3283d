// Package memory is an in-memory backend for tests: it passes the provider
// conformance suite and lets controller tests switch failures on, count calls and
// put values that must never leak (canaries). It is not registered by main.go.
package memory

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// Backend is an in-memory secret store and the provider.Provider serving it. It is
// registered under a real provider name (e.g. "vault") so stores select it.
type Backend struct {
	name string

	mu       sync.Mutex
	secrets  map[string][]version
	tags     map[string]map[string]string
	failWith error

	Gets, Batches, Finds, Checks, Clients atomic.Int64
	lastBatch                             atomic.Int64
	keyCalls                              map[string]int
	storeChecks                           map[string]int
	l                                     leases
}

type version struct {
	id    string
	value []byte
}

// New returns a backend registered under name.
func New(name string) *Backend {
	return &Backend{name: name, secrets: map[string][]version{}, tags: map[string]map[string]string{}, keyCalls: map[string]int{}, storeChecks: map[string]int{}}
}

// Put stores a new version of key and returns its id ("1", "2", ...).
func (b *Backend) Put(key string, value []byte, tags map[string]string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := strconv.Itoa(len(b.secrets[key]) + 1)
	b.secrets[key] = append(b.secrets[key], version{id: id, value: append([]byte(nil), value...)})
	if tags != nil {
		b.tags[key] = tags
	}
	return id
}

// Delete removes key and all its versions.
func (b *Backend) Delete(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.secrets, key)
	delete(b.tags, key)
}

// Fail makes every call return err (nil restores service).
func (b *Backend) Fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failWith = err
}

func (b *Backend) fail() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failWith
}

// Provider implementation.

func (b *Backend) Name() string                              { return b.name }
func (b *Backend) ValidateStore(v1alpha1.GenericStore) error { return nil }
func (b *Backend) NewClient(_ context.Context, store v1alpha1.GenericStore, _ provider.Kube, _ string) (provider.Client, error) {
	b.Clients.Add(1)
	c := &client{b: b}
	if store != nil {
		c.store = store.GetNamespace() + "/" + store.GetName()
	}
	return c, nil
}

type client struct {
	b     *Backend
	store string // namespace/name of the store it was built for
}

// StoreChecks is how many Check calls the clients of store namespace/name made.
func (b *Backend) StoreChecks(store string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.storeChecks[store]
}

// KeyCalls is how many backend calls (single or batch) asked for key.
func (b *Backend) KeyCalls(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.keyCalls[key]
}

func (c *client) get(ref provider.Ref) (provider.Secret, error) {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	c.b.keyCalls[ref.Key]++
	vs := c.b.secrets[ref.Key]
	if len(vs) == 0 {
		return provider.Secret{}, provider.Wrap(provider.ErrNotFound, "NotFound", fmt.Errorf("no key %q", ref.Key))
	}
	if ref.Version == "" {
		v := vs[len(vs)-1]
		return provider.Secret{Value: v.value, Version: v.id}, nil
	}
	for _, v := range vs {
		if v.id == ref.Version {
			return provider.Secret{Value: v.value, Version: v.id}, nil
		}
	}
	return provider.Secret{}, provider.Wrap(provider.ErrNotFound, "VersionNotFound", nil)
}

func (c *client) GetSecret(_ context.Context, ref provider.Ref) (provider.Secret, error) {
	c.b.Gets.Add(1)
	if err := c.b.fail(); err != nil {
		return provider.Secret{}, err
	}
	return c.get(ref)
}

func (c *client) GetSecrets(_ context.Context, refs []provider.Ref) ([]provider.Result, error) {
	c.b.Batches.Add(1)
	c.b.lastBatch.Store(int64(len(refs)))
	if err := c.b.fail(); err != nil {
		return nil, err
	}
	out := make([]provider.Result, len(refs))
	for i, r := range refs {
		out[i].Secret, out[i].Err = c.get(r)
	}
	return out, nil
}

func (c *client) MaxBatch() int { return 10 }

func (c *client) Find(_ context.Context, q provider.FindQuery) (map[string]provider.Secret, error) {
	c.b.Finds.Add(1)
	if err := c.b.fail(); err != nil {
		return nil, err
	}
	var re *regexp.Regexp
	if q.NameRegexp != "" {
		var err error
		if re, err = regexp.Compile(q.NameRegexp); err != nil {
			return nil, provider.Wrap(provider.ErrInvalid, "BadRegexp", err)
		}
	}
	prefix := strings.TrimSuffix(q.Path, "/")
	c.b.mu.Lock()
	keys := make([]string, 0, len(c.b.secrets))
	for k := range c.b.secrets {
		keys = append(keys, k)
	}
	c.b.mu.Unlock()
	sort.Strings(keys)
	out := map[string]provider.Secret{}
	for _, k := range keys {
		if prefix != "" && !strings.HasPrefix(k, prefix+"/") {
			continue
		}
		if re != nil && !re.MatchString(k) {
			continue
		}
		c.b.mu.Lock()
		tags := c.b.tags[k]
		c.b.mu.Unlock()
		if !hasTags(tags, q.Tags) {
			continue
		}
		s, err := c.get(provider.Ref{Key: k})
		if err != nil {
			continue
		}
		out[k] = s
	}
	return out, nil
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (c *client) Check(context.Context) error {
	c.b.Checks.Add(1)
	c.b.mu.Lock()
	c.b.storeChecks[c.store]++
	c.b.mu.Unlock()
	return c.b.fail()
}

func (c *client) Close(context.Context) error { return nil }

// LastBatch is how many refs the last batch call carried.
func (b *Backend) LastBatch() int { return int(b.lastBatch.Load()) }
