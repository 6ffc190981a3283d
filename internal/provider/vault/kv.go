package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/internal/provider"
)

const (
	// findMaxDepth and findMaxKeys bound a recursive LIST so a find on a huge or
	// cyclic-looking tree fails clearly instead of running for ever.
	findMaxDepth = 32
	findMaxKeys  = 10000
	findWorkers  = 8
)

// GetSecret reads a KV secret and returns its data map as JSON text. On KV v2,
// Version is the version read and ref.Version (a number) selects an older one.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Secret, error) {
	key := strings.Trim(ref.Key, "/")
	if key == "" {
		return provider.Secret{}, fmt.Errorf("vault key is empty: %w", errInvalid)
	}
	if c.kvV1 {
		if ref.Version != "" {
			return provider.Secret{}, fmt.Errorf("vault key %q: version %q requested but KV v1 mount %q has no versions: %w", key, ref.Version, c.mount, errInvalid)
		}
		return c.readV1(ctx, key)
	}
	var q url.Values
	if ref.Version != "" {
		if n, err := strconv.Atoi(ref.Version); err != nil || n < 1 {
			return provider.Secret{}, fmt.Errorf("vault key %q: version %q is not a positive number: %w", key, ref.Version, errInvalid)
		}
		q = url.Values{"version": {ref.Version}}
	}
	return c.readV2(ctx, key, q)
}

func (c *Client) readV1(ctx context.Context, key string) (provider.Secret, error) {
	path := c.mount + "/" + key
	sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Read(ctx, tok, path, nil) })
	if err != nil {
		return provider.Secret{}, fmt.Errorf("vault read %q: %w", path, err)
	}
	if sec == nil || sec.Data == nil {
		return provider.Secret{}, fmt.Errorf("vault read %q: %w", path, errNotFound)
	}
	v, err := toJSON(sec.Data)
	if err != nil {
		return provider.Secret{}, fmt.Errorf("vault read %q: %w", path, err)
	}
	return provider.Secret{Value: v}, nil
}

func (c *Client) readV2(ctx context.Context, key string, q url.Values) (provider.Secret, error) {
	path := c.mount + "/data/" + key
	sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Read(ctx, tok, path, q) })
	if err != nil {
		return provider.Secret{}, fmt.Errorf("vault read %q: %w", path, err)
	}
	if sec == nil || sec.Data == nil {
		return provider.Secret{}, fmt.Errorf("vault read %q: %w", path, errNotFound)
	}
	// A deleted or destroyed version answers with metadata and null data.
	data, ok := sec.Data["data"].(map[string]any)
	if !ok {
		return provider.Secret{}, fmt.Errorf("vault read %q: version deleted or destroyed: %w", path, errNotFound)
	}
	var version string
	if meta, ok := sec.Data["metadata"].(map[string]any); ok {
		version = numberString(meta["version"])
	}
	v, err := toJSON(data)
	if err != nil {
		return provider.Secret{}, fmt.Errorf("vault read %q: %w", path, err)
	}
	return provider.Secret{Value: v, Version: version}, nil
}

// Find lists the mount recursively under q.Path and returns the secrets whose path
// relative to q.Path matches q.NameRegexp and, on KV v2, whose custom_metadata holds
// every q.Tags pair. Results are keyed by that relative path.
func (c *Client) Find(ctx context.Context, q provider.FindQuery) (map[string]provider.Secret, error) {
	base := strings.Trim(q.Path, "/")
	var re *regexp.Regexp
	if q.NameRegexp != "" {
		var err error
		if re, err = regexp.Compile(q.NameRegexp); err != nil {
			return nil, fmt.Errorf("vault find: name regexp does not compile: %w", errInvalid)
		}
	}
	if c.kvV1 && len(q.Tags) > 0 {
		return nil, fmt.Errorf("vault find %q: tags match KV v2 custom_metadata, but mount %q is KV v1: %w", base, c.mount, errInvalid)
	}
	leaves, err := c.listTree(ctx, base)
	if err != nil {
		return nil, err
	}
	var rels []string
	for _, rel := range leaves {
		if re == nil || re.MatchString(rel) {
			rels = append(rels, rel)
		}
	}

	var (
		mu       sync.Mutex
		out      = make(map[string]provider.Secret, len(rels))
		firstErr error
		wg       sync.WaitGroup
		work     = make(chan string)
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(findWorkers, len(rels)) {
		wg.Go(func() {
			for rel := range work {
				s, ok, err := c.findOne(ctx, join(base, rel), q.Tags)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
					cancel()
				case err == nil && ok:
					out[rel] = s
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, rel := range rels {
		select {
		case work <- rel:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// findOne reads one found secret; ok is false when tags do not match or the secret
// vanished (or its latest version was deleted) between the LIST and the read.
func (c *Client) findOne(ctx context.Context, key string, tags map[string]string) (provider.Secret, bool, error) {
	if len(tags) > 0 {
		path := c.mount + "/metadata/" + key
		sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Read(ctx, tok, path, nil) })
		if errors.Is(err, provider.ErrNotFound) {
			return provider.Secret{}, false, nil
		}
		if err != nil {
			return provider.Secret{}, false, fmt.Errorf("vault read %q: %w", path, err)
		}
		var custom map[string]any
		if sec != nil {
			custom, _ = sec.Data["custom_metadata"].(map[string]any)
		}
		for k, want := range tags {
			if got, ok := custom[k].(string); !ok || got != want {
				return provider.Secret{}, false, nil
			}
		}
	}
	s, err := c.GetSecret(ctx, provider.Ref{Key: key})
	if errors.Is(err, provider.ErrNotFound) {
		return provider.Secret{}, false, nil
	}
	return s, err == nil, err
}

// listTree returns every secret path under base, relative to base, sorted.
func (c *Client) listTree(ctx context.Context, base string) ([]string, error) {
	listPath := func(dir string) string {
		p := c.mount
		if !c.kvV1 {
			p += "/metadata"
		}
		if d := join(base, dir); d != "" {
			p += "/" + d
		}
		return p + "/"
	}
	var out []string
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if depth > findMaxDepth {
			return fmt.Errorf("vault find %q: folders nested deeper than %d: %w", base, findMaxDepth, errInvalid)
		}
		path := listPath(dir)
		sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.List(ctx, tok, path) })
		if errors.Is(err, provider.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("vault list %q: %w", path, err)
		}
		if sec == nil {
			return nil
		}
		keys, _ := sec.Data["keys"].([]any)
		for _, k := range keys {
			name, ok := k.(string)
			if !ok || name == "" {
				continue
			}
			if strings.HasSuffix(name, "/") {
				if err := walk(join(dir, strings.TrimSuffix(name, "/")), depth+1); err != nil {
					return err
				}
				continue
			}
			out = append(out, join(dir, name))
			if len(out) > findMaxKeys {
				return fmt.Errorf("vault find %q: more than %d secrets: %w", base, findMaxKeys, errInvalid)
			}
		}
		return nil
	}
	if err := walk("", 0); err != nil {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "/" + b
}

// toJSON renders a KV data map as JSON text, numbers as Vault stored them and
// without HTML escaping, so provider.Property and provider.Map read it back as is.
func toJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode value: %w", errInvalid)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func numberString(v any) string {
	switch n := v.(type) {
	case json.Number:
		return n.String()
	case string:
		return n
	case float64:
		return strconv.FormatInt(int64(n), 10)
	case int:
		return strconv.Itoa(n)
	case int64:
		return strconv.FormatInt(n, 10)
	}
	return ""
}
