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
	// findMaxDepth, findMaxFolders and findMaxKeys bound a recursive LIST, so a find
	// on a huge or hostile tree fails clearly instead of running for ever. Hitting one
	// fails the find: a partial answer would prune the keys it did not reach.
	findMaxDepth   = 32
	findMaxFolders = 2000
	findMaxKeys    = 10000
	findWorkers    = 8
)

// GetSecret reads a KV secret and returns its data map as JSON text. On KV v2,
// Version is the version read and ref.Version (a number) selects an older one.
func (c *Client) GetSecret(ctx context.Context, ref provider.Ref) (provider.Secret, error) {
	path, q, err := c.kvReadPath(ref)
	if err != nil {
		return provider.Secret{}, err
	}
	s, err := c.readKV(ctx, path, q)
	if err != nil {
		return provider.Secret{}, fmt.Errorf("vault read %q: %w", path, err)
	}
	return s, nil
}

// kvReadPath builds the request path and query for ref. A key that is not
// canonical, or would leave the store's mount, is refused here, before any request:
// vault/api would resolve "team-a/../team-b" into another tenant's path.
func (c *Client) kvReadPath(ref provider.Ref) (string, url.Values, error) {
	if err := provider.CheckKey(ref.Key); err != nil {
		return "", nil, refuse("vault read: key", err)
	}
	key := strings.Trim(ref.Key, "/")
	if c.kvV1 {
		if ref.Version != "" {
			return "", nil, fmt.Errorf("vault key %q: version %q requested but KV v1 mount %q has no versions: %w", key, ref.Version, c.mount, errInvalid)
		}
		path, err := provider.UnderMount(c.mount, key)
		if err != nil {
			return "", nil, refuse("vault read", err)
		}
		return path, nil, nil
	}
	var q url.Values
	if ref.Version != "" {
		if n, err := strconv.Atoi(ref.Version); err != nil || n < 1 {
			return "", nil, fmt.Errorf("vault key %q: version %q is not a positive number: %w", key, ref.Version, provider.Wrap(provider.ErrInvalid, "InvalidVersion", provider.ErrSpec))
		}
		q = url.Values{"version": {ref.Version}}
	}
	path, err := provider.UnderMount(c.mount+"/data", key)
	if err != nil {
		return "", nil, refuse("vault read", err)
	}
	return path, q, nil
}

// readKV reads the KV secret at a request path kvReadPath built. Its errors name no
// key: Find reads names that came from the backend, and messages never quote those.
func (c *Client) readKV(ctx context.Context, path string, q url.Values) (provider.Secret, error) {
	sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Read(ctx, tok, path, q) })
	var s provider.Secret
	if err == nil {
		if c.kvV1 {
			s, err = kvV1Secret(sec)
		} else {
			s, err = kvV2Secret(sec)
		}
	}
	if errors.Is(err, provider.ErrNotFound) {
		if cerr := c.confirmKV(ctx); cerr != nil {
			return provider.Secret{}, cerr
		}
	}
	return s, err
}

// kvV1Secret is a KV v1 read's answer: its data map is the secret.
func kvV1Secret(sec *api.Secret) (provider.Secret, error) {
	if sec == nil || sec.Data == nil {
		return provider.Secret{}, fmt.Errorf("answer without data: %w", errEmptyResponse)
	}
	v, err := toJSON(sec.Data)
	if err != nil {
		return provider.Secret{}, err
	}
	return provider.Secret{Value: v}, nil
}

// kvV2Secret is a KV v2 read's answer: data.data is the secret, data.metadata its
// version. Null data is "not found" only when the metadata says the version was
// deleted or destroyed; otherwise the answer is not one KV v2 gives.
func kvV2Secret(sec *api.Secret) (provider.Secret, error) {
	if sec == nil || sec.Data == nil {
		return provider.Secret{}, fmt.Errorf("answer without data: %w", errEmptyResponse)
	}
	meta, _ := sec.Data["metadata"].(map[string]any)
	switch data := sec.Data["data"].(type) {
	case map[string]any:
		v, err := toJSON(data)
		if err != nil {
			return provider.Secret{}, err
		}
		return provider.Secret{Value: v, Version: numberString(meta["version"])}, nil
	case nil:
		deleted, _ := meta["deletion_time"].(string)
		destroyed, _ := meta["destroyed"].(bool)
		if deleted != "" || destroyed {
			return provider.Secret{}, fmt.Errorf("version deleted or destroyed: %w", errNotFound)
		}
		return provider.Secret{}, fmt.Errorf("answer with null data and a live version: %w", errBadResponse)
	}
	return provider.Secret{}, fmt.Errorf("answer whose data is not a map: %w", errBadResponse)
}

// confirmKV checks, once per client, that the store's mount is a KV mount of the
// version the store says, before a 404 from it becomes ErrNotFound. A KV v2 client
// on a v1 mount asks for "<mount>/data/<key>", which v1 answers with the same empty
// 404 as a missing key (v1 on v2 likewise): without this check a wrong `version` in
// the store would prune every key. Reads that succeed never need it, so a client
// whose keys all exist never makes the call; the answer is kept once conclusive.
func (c *Client) confirmKV(ctx context.Context) error {
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if c.probed {
		return c.probeErr
	}
	path := "sys/internal/ui/mounts/" + c.mount
	sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Read(ctx, tok, path, nil) })
	if err != nil {
		var pe *provider.Error
		if errors.As(err, &pe) && errors.Is(pe.Kind, provider.ErrNotFound) {
			// Never let the probe's own 404 through as "not found".
			err = wrap(provider.ErrInvalid, codeNoRoute, pe.Err)
		}
		return fmt.Errorf("vault mount %q: look up its KV version: %w", c.mount, err)
	}
	err = checkMount(sec, c.mount, c.kvV1)
	if !errors.Is(err, provider.ErrUnavailable) { // an unusable answer is asked again next time
		c.probed, c.probeErr = true, err
	}
	return err
}

// checkMount compares the mount probe's answer with the store's KV version.
func checkMount(sec *api.Secret, mount string, v1 bool) error {
	if sec == nil || sec.Data == nil {
		return fmt.Errorf("vault mount %q: mount lookup answered without data: %w", mount, errEmptyResponse)
	}
	typ, _ := sec.Data["type"].(string)
	opts, _ := sec.Data["options"].(map[string]any)
	ver, _ := opts["version"].(string)
	want := "v2"
	if v1 {
		want = "v1"
	}
	switch {
	case typ != "kv" && typ != "generic":
		return fmt.Errorf("vault mount %q: not a KV mount: %w", mount, errKVMismatch)
	case (ver == "2") == v1:
		return fmt.Errorf("vault mount %q: is not KV %s as the store's version says: %w", mount, want, errKVMismatch)
	}
	if at, _ := sec.Data["path"].(string); !v1 && at != "" && strings.Trim(at, "/") != mount {
		// KV v2 paths (data/, metadata/) start at the mount itself; below it every
		// read would 404 as a missing key.
		return fmt.Errorf("vault mount %q: is a folder inside a KV v2 mount, not the mount: %w", mount, errKVMismatch)
	}
	return nil
}

// Find lists the mount recursively under q.Path and returns the secrets whose path
// relative to q.Path matches q.NameRegexp and, on KV v2, whose custom_metadata holds
// every q.Tags pair. Results are keyed by that relative path (the engine's rewrite
// rules work on it); Secret.Key is the path relative to the mount, the form a
// remoteRef.key would use, which allowedKeys are checked against.
func (c *Client) Find(ctx context.Context, q provider.FindQuery) (map[string]provider.Secret, error) {
	// An empty path (or "/") is the whole mount.
	if q.Path != "" && q.Path != "/" {
		if err := provider.CheckKey(q.Path); err != nil {
			return nil, refuse("vault find: path", err)
		}
	}
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
				key := join(base, rel)
				s, ok, err := c.findOne(ctx, key, q.Tags, q.Allowed)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					// The found name came from the backend: the message names the
					// find path only.
					firstErr = fmt.Errorf("vault find %q: read a found secret: %w", base, err)
					cancel()
				case err == nil && ok:
					s.Key = key
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
	if err := ctx.Err(); err != nil {
		// Cancelled while feeding: some found keys were never read.
		return nil, classify(err)
	}
	return out, nil
}

// findOne reads one found secret (key relative to the mount, made of canonical
// listed names); ok is false when tags do not match or the secret vanished (or its
// latest version was deleted) between the LIST and the read.
func (c *Client) findOne(ctx context.Context, key string, tags map[string]string, allowed func(string) bool) (provider.Secret, bool, error) {
	if len(tags) > 0 {
		path, err := provider.UnderMount(c.mount+"/metadata", key)
		if err != nil {
			return provider.Secret{}, false, refuse("found name", err)
		}
		sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Read(ctx, tok, path, nil) })
		if errors.Is(err, provider.ErrNotFound) {
			if cerr := c.confirmKV(ctx); cerr != nil {
				return provider.Secret{}, false, cerr
			}
			return provider.Secret{}, false, nil
		}
		if err != nil {
			return provider.Secret{}, false, fmt.Errorf("read metadata: %w", err)
		}
		if sec == nil || sec.Data == nil {
			return provider.Secret{}, false, fmt.Errorf("read metadata: answer without data: %w", errEmptyResponse)
		}
		custom, _ := sec.Data["custom_metadata"].(map[string]any)
		for k, want := range tags {
			if got, ok := custom[k].(string); !ok || got != want {
				return provider.Secret{}, false, nil
			}
		}
	}
	// After the tag filter (metadata only), before the value: a key the caller may
	// not read is never read.
	if allowed != nil && !allowed(key) {
		return provider.Secret{}, false, provider.Wrap(provider.ErrNotAllowed, "", nil)
	}
	path, q, err := c.kvReadPath(provider.Ref{Key: key})
	if err != nil {
		return provider.Secret{}, false, err
	}
	s, err := c.readKV(ctx, path, q)
	if errors.Is(err, provider.ErrNotFound) {
		return provider.Secret{}, false, nil
	}
	return s, err == nil, err
}

// listTree returns every secret path under base, relative to base, sorted. It
// returns the whole tree or an error, never part of it: a failed or unusable
// listing anywhere, a listed name that is not one canonical path segment, or a cap
// reached fails the walk. A 404 is an empty folder (the find path has nothing
// under it, or a folder went away since its parent was listed) once the mount is
// confirmed to be the store's KV mount.
func (c *Client) listTree(ctx context.Context, base string) ([]string, error) {
	root := c.mount
	if !c.kvV1 {
		root += "/metadata"
	}
	if base != "" {
		var err error
		if root, err = provider.UnderMount(root, base); err != nil {
			return nil, refuse(fmt.Sprintf("vault find %q", base), err)
		}
	} else if err := provider.CheckKey(root); err != nil {
		return nil, refuse("vault find: mount", err)
	}
	var out []string
	folders := 0
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if depth > findMaxDepth {
			return fmt.Errorf("vault find %q: folders nested deeper than %d: %w", base, findMaxDepth, errInvalid)
		}
		folders++
		if folders > findMaxFolders {
			return fmt.Errorf("vault find %q: more than %d folders: %w", base, findMaxFolders, errInvalid)
		}
		path := join(root, dir) + "/"
		sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.List(ctx, tok, path) })
		if errors.Is(err, provider.ErrNotFound) {
			if cerr := c.confirmKV(ctx); cerr != nil {
				return fmt.Errorf("vault find %q: list: %w", base, cerr)
			}
			return nil
		}
		if err != nil {
			// Folder names below base came from the backend: name base only.
			return fmt.Errorf("vault find %q: list: %w", base, err)
		}
		names, err := listNames(sec)
		if err != nil {
			return fmt.Errorf("vault find %q: list: %w", base, err)
		}
		for _, name := range names {
			seg, folder := strings.CutSuffix(name, "/")
			if err := checkSegment(seg); err != nil {
				// Refused, not skipped: skipping would drop a key from the result (and
				// so prune it) without a word, and a name like ".." or "a/../b" is no
				// key this operator can address.
				return refuse(fmt.Sprintf("vault find %q: a listed name", base), err)
			}
			if folder {
				if err := walk(join(dir, seg), depth+1); err != nil {
					return err
				}
				continue
			}
			out = append(out, join(dir, seg))
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

// listNames is a LIST answer's keys; an answer without a list of strings is not one
// Vault gives (it answers an empty folder with 404).
func listNames(sec *api.Secret) ([]string, error) {
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("answer without data: %w", errEmptyResponse)
	}
	raw, ok := sec.Data["keys"].([]any)
	if !ok {
		return nil, fmt.Errorf("answer without a list of keys: %w", errBadResponse)
	}
	names := make([]string, 0, len(raw))
	for _, k := range raw {
		s, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("a listed key is not a string: %w", errBadResponse)
		}
		names = append(names, s)
	}
	return names, nil
}

// checkSegment: a listed name (a folder's without its trailing slash) must be one
// canonical path segment.
func checkSegment(s string) error {
	if strings.Contains(s, "/") {
		return fmt.Errorf("slash inside a name: %w", provider.ErrNotCanonical)
	}
	return provider.CheckKey(s)
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
		return nil, fmt.Errorf("encode value: %w", errBadResponse)
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
