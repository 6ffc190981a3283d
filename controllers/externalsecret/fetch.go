package externalsecret

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
)

var validKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// maxRewriteInput bounds a key entering a rewrite rule (see rewrite).
const maxRewriteInput = 4096

// isSecretKey is the API server's rule for Secret keys: [-._a-zA-Z0-9]+, at most
// 253 bytes, not "." or "..". Checking it here turns a write the API server would
// refuse into a clear InvalidKey.
func isSecretKey(k string) bool {
	return validKey.MatchString(k) && len(validation.IsConfigMapKey(k)) == 0
}

// fetched is the data read for one ExternalSecret before templating.
type fetched struct {
	data     map[string][]byte
	sources  []v1alpha1.SourceStatus
	notFound []string // remote keys the backend says are gone

	leases      []v1alpha1.LeaseStatus       // current leases of dynamic sources
	superseded  []v1alpha1.LeaseStatus       // leases to revoke once the Secret is written
	issued      []v1alpha1.LeaseStatus       // leases issued by this refresh
	dynamicData map[string]map[string][]byte // raw dynamic data by path, kept in memory
}

func fieldPath(list string, i int, field string) string {
	return fmt.Sprintf("%s[%d].%s", list, i, field)
}

// fetchAll reads every source. Explicit data entries win over dataFrom keys; two
// dataFrom sources producing one key is DuplicateKey.
func (r *Reconciler) fetchAll(ctx context.Context, sc *scope) (*fetched, *outcome) {
	es, h := sc.es, sc.h
	f := &fetched{data: map[string][]byte{}}
	fromDataFrom := map[string]string{} // key -> path that produced it
	for i, src := range es.Spec.DataFrom {
		base := fmt.Sprintf("spec.dataFrom[%d]", i)
		var kv map[string][]byte
		var o *outcome
		switch {
		case src.Extract != nil:
			kv, o = r.extract(ctx, h, base, src.Extract, f, sc.ageOf(src.Extract.Key))
		case src.Find != nil:
			kv, o = r.find(ctx, h, base, src.Find, f, sc.admitted, sc.maxAge)
		case src.Dynamic != nil:
			kv, o = r.dynamic(ctx, sc, base, src, f)
		}
		if o != nil {
			return f, o
		}
		renamed, o := rewrite(base, kv, src.Rewrite)
		if o != nil {
			return f, o
		}
		for k, v := range renamed {
			if prev, dup := fromDataFrom[k]; dup {
				// The key name may come from secret content (extract): not quoted.
				out := failTerminal(v1alpha1.ReasonDuplicateKey, "%s: produces a key that %s also produces; add a rewrite", base, prev)
				return f, &out
			}
			fromDataFrom[k] = base
			f.data[k] = v
		}
	}
	for i, d := range es.Spec.Data {
		path := fmt.Sprintf("spec.data[%d]", i)
		var v []byte
		var o *outcome
		if d.Decrypt != nil {
			v, o = r.decrypt(ctx, h, path, d.Decrypt)
		} else {
			v, o = r.remote(ctx, h, path, d.RemoteRef, f, sc.ageOf(d.RemoteRef.Key))
		}
		if o != nil {
			return f, o
		}
		f.data[d.SecretKey] = v
	}
	sort.Slice(f.sources, func(i, j int) bool {
		if f.sources[i].Key != f.sources[j].Key {
			return f.sources[i].Key < f.sources[j].Key
		}
		return f.sources[i].Version < f.sources[j].Version
	})
	f.sources = dedupSources(f.sources)
	return f, nil
}

func (r *Reconciler) remote(ctx context.Context, h *fetch.Handle, path string, ref *v1alpha1.RemoteRef, f *fetched, maxAge time.Duration) ([]byte, *outcome) {
	s, err := h.Get(ctx, provider.Ref{Key: ref.Key, Version: ref.Version}, maxAge)
	if err != nil {
		if errors.Is(err, provider.ErrNotFound) {
			f.notFound = append(f.notFound, ref.Key)
		}
		o := providerFailure(fmt.Sprintf("%s.remoteRef: key %q", path, ref.Key), err)
		return nil, &o
	}
	f.sources = append(f.sources, v1alpha1.SourceStatus{Key: ref.Key, Version: s.Version})
	v := s.Value
	if ref.Property != "" {
		v, err = provider.Property(s.Value, ref.Property)
		switch {
		case errors.Is(err, provider.ErrNoProperty):
			o := failTerminal(v1alpha1.ReasonKeyNotFound, "%s.remoteRef: key %q has no property %q", path, ref.Key, ref.Property)
			return nil, &o
		case err != nil:
			o := failTerminal(v1alpha1.ReasonInvalidProperty, "%s.remoteRef: key %q: property %q: value is not a JSON object", path, ref.Key, ref.Property)
			return nil, &o
		}
	}
	v, err = provider.Decode(v, string(ref.DecodingStrategy))
	if err != nil {
		o := failTerminal(v1alpha1.ReasonInvalidValue, "%s.remoteRef: key %q: value is not valid %s", path, ref.Key, ref.DecodingStrategy)
		return nil, &o
	}
	return v, nil
}

func (r *Reconciler) extract(ctx context.Context, h *fetch.Handle, path string, ex *v1alpha1.ExtractRef, f *fetched, maxAge time.Duration) (map[string][]byte, *outcome) {
	s, err := h.Get(ctx, provider.Ref{Key: ex.Key, Version: ex.Version}, maxAge)
	if err != nil {
		if errors.Is(err, provider.ErrNotFound) {
			f.notFound = append(f.notFound, ex.Key)
		}
		o := providerFailure(fmt.Sprintf("%s.extract: key %q", path, ex.Key), err)
		return nil, &o
	}
	f.sources = append(f.sources, v1alpha1.SourceStatus{Key: ex.Key, Version: s.Version})
	m, err := provider.Map(s.Value)
	if err != nil {
		o := failTerminal(v1alpha1.ReasonInvalidProperty, "%s.extract: key %q: value is not a JSON object", path, ex.Key)
		return nil, &o
	}
	return decodeAll(path+".extract", m, ex.DecodingStrategy)
}

func (r *Reconciler) find(ctx context.Context, h *fetch.Handle, path string, fd *v1alpha1.FindRef, f *fetched, admitted keyFilter, maxAge time.Duration) (map[string][]byte, *outcome) {
	q := provider.FindQuery{Path: fd.Path, Tags: fd.Tags, Allowed: admitted}
	if fd.Name != nil {
		if _, err := regexp.Compile(fd.Name.Regexp); err != nil {
			o := failTerminal(v1alpha1.ReasonInvalidSpec, "%s.find.name.regexp: invalid regular expression", path)
			return nil, &o
		}
		q.NameRegexp = fd.Name.Regexp
	}
	found, err := h.Find(ctx, q, maxAge)
	if err != nil {
		o := providerFailure(path+".find", err)
		return nil, &o
	}
	out := make(map[string][]byte, len(found))
	for name, s := range found {
		// Checked by the key a remoteRef would name (Vault: relative to the mount,
		// not to the find path), so a pattern like "team-a/.*" means the same for
		// finds as for keys. A found key that fails fails the whole ExternalSecret.
		key := s.Key
		if key == "" {
			key = name
		}
		if admitted != nil && !admitted(key) {
			o := failTerminal(v1alpha1.ReasonKeyNotAllowed, "%s.find: a key found under %q is not allowed by the ClusterSecretStore", path, fd.Path)
			return nil, &o
		}
		f.sources = append(f.sources, v1alpha1.SourceStatus{Key: name, Version: s.Version})
		out[name] = s.Value
	}
	return decodeAll(path+".find", out, fd.DecodingStrategy)
}

func (r *Reconciler) decrypt(ctx context.Context, h *fetch.Handle, path string, d *v1alpha1.DecryptRef) ([]byte, *outcome) {
	dec, ok := h.Client().(provider.Decrypter)
	if !ok {
		o := failTerminal(v1alpha1.ReasonInvalidSpec, "%s.decrypt: provider %q cannot decrypt", path, h.Provider())
		return nil, &o
	}
	v, err := dec.Decrypt(ctx, transitMount(d), d.Key, d.Ciphertext)
	if err != nil {
		o := providerFailure(fmt.Sprintf("%s.decrypt: key %q", path, d.Key), err)
		if o.reason == v1alpha1.ReasonKeyNotFound || errors.Is(err, provider.ErrInvalid) {
			o.reason, o.kind = v1alpha1.ReasonInvalidValue, terminal
		}
		return nil, &o
	}
	return v, nil
}

func decodeAll(path string, m map[string][]byte, strategy v1alpha1.DecodingStrategy) (map[string][]byte, *outcome) {
	if strategy == "" || strategy == v1alpha1.DecodeNone {
		return m, nil
	}
	for k, v := range m {
		d, err := provider.Decode(v, string(strategy))
		if err != nil {
			o := failTerminal(v1alpha1.ReasonInvalidValue, "%s: key %q: value is not valid %s", path, k, strategy)
			return nil, &o
		}
		m[k] = d
	}
	return m, nil
}

// rewrite applies the rules in order (each replacing all matches) and checks that
// every resulting key is a valid Secret key.
func rewrite(path string, kv map[string][]byte, rules []v1alpha1.Rewrite) (map[string][]byte, *outcome) {
	res := make([]*regexp.Regexp, len(rules))
	for i, rule := range rules {
		re, err := regexp.Compile(rule.Regexp.Source)
		if err != nil {
			o := failTerminal(v1alpha1.ReasonInvalidSpec, "%s.rewrite[%d].regexp.source: invalid regular expression", path, i)
			return nil, &o
		}
		res[i] = re
	}
	out := make(map[string][]byte, len(kv))
	names := make([]string, 0, len(kv))
	for k := range kv {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		nk := k
		for i, re := range res {
			// A key longer than maxRewriteInput is refused before each rule: one rule
			// can multiply a key's length by its target's (512), and 16 rules would
			// otherwise compound that beyond any memory.
			if len(nk) > maxRewriteInput {
				o := failTerminal(v1alpha1.ReasonInvalidKey, "%s.rewrite[%d]: a key is longer than %d bytes; add a rewrite that shortens it earlier", path, i, maxRewriteInput)
				return nil, &o
			}
			nk = re.ReplaceAllString(nk, rules[i].Regexp.Target)
		}
		// Messages never quote k or nk: extract keys are secret content.
		if !isSecretKey(nk) {
			o := failTerminal(v1alpha1.ReasonInvalidKey, "%s: a key it produces is not a valid Secret key ([-._a-zA-Z0-9]+); add a rewrite", path)
			return nil, &o
		}
		if _, dup := out[nk]; dup {
			o := failTerminal(v1alpha1.ReasonDuplicateKey, "%s: two keys it produces rewrite to the same name", path)
			return nil, &o
		}
		out[nk] = kv[k]
	}
	return out, nil
}

func dedupSources(in []v1alpha1.SourceStatus) []v1alpha1.SourceStatus {
	out := in[:0]
	for i, s := range in {
		if i > 0 && s == in[i-1] {
			continue
		}
		out = append(out, s)
	}
	return out
}

// keyFilter reports whether a found remote key may be read (nil: all may).
type keyFilter func(key string) bool
