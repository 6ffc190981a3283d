package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/providertest"
)

// loopbackVault is a fake Vault on 127.0.0.1: routes answer by "METHOD path" (path
// without /v1/, LIST for ?list=true); anything else is counted and gets a 500.
type loopbackVault struct {
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	calls  []string
}

func newLoopbackVault(t *testing.T, routes map[string]http.HandlerFunc) *loopbackVault {
	t.Helper()
	v := &loopbackVault{routes: routes}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if r.URL.Query().Get("list") == "true" {
			method = "LIST"
		}
		call := method + " " + strings.TrimPrefix(r.URL.Path, "/v1/")
		if method == "LIST" && !strings.HasSuffix(call, "/") {
			call += "/" // vault/api path.Joins the URL, which drops it; Vault adds it back
		}
		v.mu.Lock()
		v.calls = append(v.calls, call)
		h := v.routes[call]
		v.mu.Unlock()
		if h == nil {
			http.Error(w, "unexpected call", http.StatusInternalServerError)
			return
		}
		h(w, r)
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *loopbackVault) Calls() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.calls...)
}

func (v *loopbackVault) count(call string) int {
	n := 0
	for _, c := range v.Calls() {
		if c == call {
			n++
		}
	}
	return n
}

// answer replies with status and body as Vault's JSON.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const (
	mountV2 = `{"data":{"type":"kv","path":"secret/","options":{"version":"2"}}}`
	mountV1 = `{"data":{"type":"kv","path":"secret/","options":{"version":"1"}}}`
)

// loopbackClient is a Client with the real HTTP stack (vault/api, size limit,
// deadline) against addr, with a token from a Secret.
func loopbackClient(t *testing.T, addr string, mutate func(*v1alpha1.VaultProvider)) *Client {
	t.Helper()
	spec := &v1alpha1.VaultProvider{Server: addr, Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token"}}}
	if mutate != nil {
		mutate(spec)
	}
	c, err := New(WithTimeout(5*time.Second)).NewClient(t.Context(), store(spec), &fakeKube{secrets: map[string]string{"ns/tok/token": "t"}}, "ns")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c.(*Client)
}

// nonCanonical are keys Vault (or vault/api, or a proxy) could read differently from
// the operator's admission check.
var nonCanonical = []string{
	"a/../b", "a/./b", "a//b", `a\b`, "a%2e%2e/b", "%2e%2e/sys", "..", ".", "../b", "a/..", "./a",
	"a\x00b", "a\nb", "a\tb", "a\x7fb", "a\u0085b", "a\xffb", "", "/", "//",
}

func TestNoRequestForNonCanonicalKeys(t *testing.T) {
	v := newLoopbackVault(t, nil) // every request is unexpected
	v2 := loopbackClient(t, v.srv.URL, nil)
	v1 := loopbackClient(t, v.srv.URL, func(s *v1alpha1.VaultProvider) { s.Version = v1alpha1.VaultKVv1 })
	entries := []struct {
		name string
		// skip: the value is valid for this field ("" is the default transit mount,
		// "" and "/" a find over the whole mount).
		skip func(key string) bool
		call func(ctx context.Context, key string) error
	}{
		{"GetSecret KV v2", nil, func(ctx context.Context, k string) error {
			_, err := v2.GetSecret(ctx, provider.Ref{Key: k})
			return err
		}},
		{"GetSecret KV v1", nil, func(ctx context.Context, k string) error {
			_, err := v1.GetSecret(ctx, provider.Ref{Key: k})
			return err
		}},
		{"GetSecret KV v2 with version", nil, func(ctx context.Context, k string) error {
			_, err := v2.GetSecret(ctx, provider.Ref{Key: k, Version: "1"})
			return err
		}},
		{"Find KV v2", func(k string) bool { return k == "" || k == "/" }, func(ctx context.Context, k string) error {
			_, err := v2.Find(ctx, provider.FindQuery{Path: k})
			return err
		}},
		{"Find KV v2 with tags", func(k string) bool { return k == "" || k == "/" }, func(ctx context.Context, k string) error {
			_, err := v2.Find(ctx, provider.FindQuery{Path: k, Tags: map[string]string{"a": "b"}})
			return err
		}},
		{"Find KV v1", func(k string) bool { return k == "" || k == "/" }, func(ctx context.Context, k string) error {
			_, err := v1.Find(ctx, provider.FindQuery{Path: k})
			return err
		}},
		{"Issue GET", nil, func(ctx context.Context, k string) error {
			_, _, err := v2.Issue(ctx, provider.DynamicRequest{Path: k})
			return err
		}},
		{"Issue POST", nil, func(ctx context.Context, k string) error {
			_, _, err := v2.Issue(ctx, provider.DynamicRequest{Path: k, Method: "POST", Parameters: map[string]string{"p": "v"}})
			return err
		}},
		{"Issue under a mount", nil, func(ctx context.Context, k string) error {
			_, _, err := v2.Issue(ctx, provider.DynamicRequest{Path: "database/" + k})
			return err
		}},
		{"Decrypt key", nil, func(ctx context.Context, k string) error {
			_, err := v2.Decrypt(ctx, "transit", k, "vault:v1:x")
			return err
		}},
		{"Decrypt mount", func(k string) bool { return k == "" }, func(ctx context.Context, k string) error {
			_, err := v2.Decrypt(ctx, k, "key", "vault:v1:x")
			return err
		}},
	}
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			for _, key := range nonCanonical {
				if e.skip != nil && e.skip(key) {
					continue
				}
				err := e.call(t.Context(), key)
				if !errors.Is(err, provider.ErrInvalid) {
					t.Errorf("key %q: err = %v, want ErrInvalid", key, err)
					continue
				}
				msg := provider.SafeMessage(err)
				if key != "" && key != "." && key != ".." && strings.Contains(msg, key) {
					t.Errorf("key %q: the message quotes the refused text: %q", key, msg)
				}
			}
		})
	}
	t.Run("store mount", func(t *testing.T) {
		for _, mount := range nonCanonical {
			if mount == "" {
				continue // the default mount
			}
			spec := &v1alpha1.VaultProvider{Server: v.srv.URL, Path: mount, Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token"}}}
			if err := New().ValidateStore(store(spec)); !errors.Is(err, provider.ErrInvalid) {
				t.Errorf("mount %q: ValidateStore = %v, want ErrInvalid", mount, err)
			}
		}
	})
	t.Run("transit key with a slash", func(t *testing.T) {
		if _, err := v2.Decrypt(t.Context(), "transit", "a/b", "vault:v1:x"); !errors.Is(err, provider.ErrNotCanonical) {
			t.Fatalf("err = %v, want ErrNotCanonical (the key is one segment)", err)
		}
	})
	t.Run("dynamic path that is only a mount", func(t *testing.T) {
		if _, _, err := v2.Issue(t.Context(), provider.DynamicRequest{Path: "database"}); !errors.Is(err, provider.ErrInvalid) {
			t.Fatalf("err = %v, want ErrInvalid", err)
		}
	})
	if calls := v.Calls(); len(calls) != 0 {
		t.Fatalf("requests reached the server: %q", calls)
	}
}

// TestCanonicalKeysReachTheirPath: the check lets ordinary keys through, at the path
// under the mount they name.
func TestCanonicalKeysReachTheirPath(t *testing.T) {
	v := newLoopbackVault(t, map[string]http.HandlerFunc{
		"GET secret/data/team-a/app":         answer(200, `{"data":{"data":{"u":"x"},"metadata":{"version":1}}}`),
		"GET kv1/team-a/app":                 answer(200, `{"data":{"u":"y"}}`),
		"GET database/creds/team-a":          answer(200, `{"lease_id":"l","data":{"password":"p"}}`),
		"PUT team-a/transit/decrypt/app-key": answer(200, `{"data":{"plaintext":"aGk="}}`),
		"LIST secret/metadata/team-a/":       answer(200, `{"data":{"keys":["app"]}}`),
		"PUT pki/issue/web":                  answer(200, `{"data":{"certificate":"c","serial_number":"01:02","expiration":4102444800}}`),
	})
	c := loopbackClient(t, v.srv.URL, nil)
	c1 := loopbackClient(t, v.srv.URL, func(s *v1alpha1.VaultProvider) { s.Version, s.Path = v1alpha1.VaultKVv1, "kv1" })
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"leading slash", func() error { _, err := c.GetSecret(ctx, provider.Ref{Key: "/team-a/app"}); return err }},
		{"KV v1", func() error { _, err := c1.GetSecret(ctx, provider.Ref{Key: "team-a/app"}); return err }},
		{"dynamic GET", func() error {
			_, _, err := c.Issue(ctx, provider.DynamicRequest{Path: "database/creds/team-a"})
			return err
		}},
		{"dynamic POST", func() error {
			_, _, err := c.Issue(ctx, provider.DynamicRequest{Path: "pki/issue/web", Method: "POST"})
			return err
		}},
		{"transit on a nested mount", func() error { _, err := c.Decrypt(ctx, "team-a/transit", "app-key", "vault:v1:x"); return err }},
		{"find with a trailing slash", func() error { _, err := c.Find(ctx, provider.FindQuery{Path: "team-a/"}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err != nil {
				t.Fatalf("%v (calls %q)", err, v.Calls())
			}
		})
	}
}

func TestFindResultKeysAndListings(t *testing.T) {
	kv := func(k string) http.HandlerFunc {
		return answer(200, fmt.Sprintf(`{"data":{"data":{"k":%q},"metadata":{"version":1}}}`, k))
	}
	base := map[string]http.HandlerFunc{
		"GET sys/internal/ui/mounts/secret": answer(200, mountV2),
		"GET auth/token/lookup-self":        answer(200, `{"data":{}}`),
		"GET secret/data/team-a/app/db":     kv("db"),
		"GET secret/data/team-a/app/sub/x":  kv("x"),
	}
	with := func(extra map[string]http.HandlerFunc) map[string]http.HandlerFunc {
		m := map[string]http.HandlerFunc{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	t.Run("Secret.Key is the path under the mount, the map key relative to the find path", func(t *testing.T) {
		v := newLoopbackVault(t, with(map[string]http.HandlerFunc{
			"LIST secret/metadata/team-a/app/":     answer(200, `{"data":{"keys":["db","sub/"]}}`),
			"LIST secret/metadata/team-a/app/sub/": answer(200, `{"data":{"keys":["x"]}}`),
		}))
		got, err := loopbackClient(t, v.srv.URL, nil).Find(t.Context(), provider.FindQuery{Path: "team-a/app"})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"db": "team-a/app/db", "sub/x": "team-a/app/sub/x"}
		if len(got) != len(want) {
			t.Fatalf("Find = %v", got)
		}
		for rel, key := range want {
			if got[rel].Key != key {
				t.Errorf("result %q: Key = %q, want %q", rel, got[rel].Key, key)
			}
		}
	})
	t.Run("a key Allowed refuses fails the find before its value is read", func(t *testing.T) {
		v := newLoopbackVault(t, with(map[string]http.HandlerFunc{
			"LIST secret/metadata/team-a/app/":     answer(200, `{"data":{"keys":["db","sub/"]}}`),
			"LIST secret/metadata/team-a/app/sub/": answer(200, `{"data":{"keys":["x"]}}`),
		}))
		allowed := func(k string) bool { return k != "team-a/app/sub/x" }
		_, err := loopbackClient(t, v.srv.URL, nil).Find(t.Context(), provider.FindQuery{Path: "team-a/app", Allowed: allowed})
		if !errors.Is(err, provider.ErrNotAllowed) {
			t.Fatalf("err = %v, want ErrNotAllowed", err)
		}
		if n := v.count("GET secret/data/team-a/app/sub/x"); n != 0 {
			t.Fatalf("the refused key's value was read %d time(s)", n)
		}
	})
	t.Run("find over the whole mount", func(t *testing.T) {
		v := newLoopbackVault(t, with(map[string]http.HandlerFunc{
			"LIST secret/metadata/":            answer(200, `{"data":{"keys":["team-a/"]}}`),
			"LIST secret/metadata/team-a/":     answer(200, `{"data":{"keys":["app/"]}}`),
			"LIST secret/metadata/team-a/app/": answer(200, `{"data":{"keys":["db"]}}`),
		}))
		got, err := loopbackClient(t, v.srv.URL, nil).Find(t.Context(), provider.FindQuery{NameRegexp: "db"})
		if err != nil || got["team-a/app/db"].Key != "team-a/app/db" {
			t.Fatalf("Find = %v, %v", got, err)
		}
	})

	for _, tc := range []struct {
		name    string
		listing string // answer to LIST secret/metadata/team-a/app/
		sub     http.HandlerFunc
		want    error
		code    string
	}{
		{"dot-dot entry", `{"data":{"keys":["..","db"]}}`, nil, provider.ErrInvalid, ""},
		{"dot-dot folder", `{"data":{"keys":["../"]}}`, nil, provider.ErrInvalid, ""},
		{"traversal entry", `{"data":{"keys":["a/../b"]}}`, nil, provider.ErrInvalid, ""},
		{"several segments", `{"data":{"keys":["sub/x"]}}`, nil, provider.ErrInvalid, ""},
		{"empty entry", `{"data":{"keys":[""]}}`, nil, provider.ErrInvalid, ""},
		{"empty folder name", `{"data":{"keys":["/"]}}`, nil, provider.ErrInvalid, ""},
		{"percent entry", `{"data":{"keys":["%2e%2e"]}}`, nil, provider.ErrInvalid, ""},
		{"control character", `{"data":{"keys":["a\u0000b"]}}`, nil, provider.ErrInvalid, ""},
		{"backslash", `{"data":{"keys":["a\\b"]}}`, nil, provider.ErrInvalid, ""},
		{"keys not strings", `{"data":{"keys":[1]}}`, nil, provider.ErrUnavailable, codeBadResponse},
		{"no keys", `{"data":{}}`, nil, provider.ErrUnavailable, codeBadResponse},
		{"empty body", ``, nil, provider.ErrUnavailable, codeEmptyResponse},
		{"unparseable body", `{"data":`, nil, provider.ErrUnavailable, codeBadResponse},
		{"sub-folder listing fails", `{"data":{"keys":["db","sub/"]}}`, answer(500, `{"errors":["internal error"]}`), provider.ErrUnavailable, "500"},
		{"sub-folder listing denied", `{"data":{"keys":["db","sub/"]}}`, answer(403, `{"errors":["permission denied"]}`), provider.ErrAccessDenied, "403"},
		{"sub-folder on a missing route", `{"data":{"keys":["db","sub/"]}}`, answer(404, `{"errors":["no handler for route \"secret/metadata/team-a/app/sub\". route entry not found."]}`), provider.ErrInvalid, codeNoRoute},
		{"sub-folder empty body", `{"data":{"keys":["db","sub/"]}}`, answer(200, ``), provider.ErrUnavailable, codeEmptyResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			routes := with(map[string]http.HandlerFunc{"LIST secret/metadata/team-a/app/": answer(200, tc.listing)})
			if tc.sub != nil {
				routes["LIST secret/metadata/team-a/app/sub/"] = tc.sub
			}
			v := newLoopbackVault(t, routes)
			got, err := loopbackClient(t, v.srv.URL, nil).Find(t.Context(), provider.FindQuery{Path: "team-a/app"})
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Find = %v, %v; want no result and %v", got, err, tc.want)
			}
			wantCode(t, err, tc.code)
			if msg := provider.SafeMessage(err); !strings.HasPrefix(msg, `vault find "team-a/app"`) || strings.Contains(msg, "sub") {
				t.Fatalf("message %q does not name the find path only", msg)
			}
			for _, c := range v.Calls() {
				if strings.Contains(c, "..") || strings.Contains(c, "%") {
					t.Fatalf("a request was built from a refused name: %q", c)
				}
			}
		})
	}

	t.Run("a folder gone since its parent was listed is empty", func(t *testing.T) {
		v := newLoopbackVault(t, with(map[string]http.HandlerFunc{
			"LIST secret/metadata/team-a/app/":     answer(200, `{"data":{"keys":["db","sub/"]}}`),
			"LIST secret/metadata/team-a/app/sub/": answer(404, `{"errors":[]}`),
		}))
		got, err := loopbackClient(t, v.srv.URL, nil).Find(t.Context(), provider.FindQuery{Path: "team-a/app"})
		if err != nil || len(got) != 1 {
			t.Fatalf("Find = %v, %v", got, err)
		}
	})
	t.Run("nothing under the find path is an empty result on a confirmed mount", func(t *testing.T) {
		v := newLoopbackVault(t, with(map[string]http.HandlerFunc{"LIST secret/metadata/team-a/app/": answer(404, `{"errors":[]}`)}))
		got, err := loopbackClient(t, v.srv.URL, nil).Find(t.Context(), provider.FindQuery{Path: "team-a/app"})
		if err != nil || len(got) != 0 || got == nil {
			t.Fatalf("Find = %v, %v; want an empty result", got, err)
		}
	})
	t.Run("nothing under the find path on a KV v1 mount is a version mismatch", func(t *testing.T) {
		v := newLoopbackVault(t, map[string]http.HandlerFunc{
			"GET sys/internal/ui/mounts/secret": answer(200, mountV1),
			"LIST secret/metadata/team-a/app/":  answer(404, `{"errors":[]}`),
		})
		_, err := loopbackClient(t, v.srv.URL, nil).Find(t.Context(), provider.FindQuery{Path: "team-a/app"})
		wantCode(t, err, codeKVVersionMismatch)
	})
}

func TestFindCaps(t *testing.T) {
	mount := answer(200, mountV2)
	for _, tc := range []struct {
		name string
		// list answers a LIST of folder dir (relative to secret/metadata/).
		list func(dir string) string
		msg  string
	}{
		{"too many folders", func(dir string) string {
			if strings.Count(dir, "/") >= 3 {
				return `{"data":{"keys":["x"]}}`
			}
			// 3 levels of 20 folders below root: 8421 folders > findMaxFolders.
			var ks []string
			for i := range 20 {
				ks = append(ks, fmt.Sprintf("%q", fmt.Sprintf("f%d/", i)))
			}
			return `{"data":{"keys":[` + strings.Join(ks, ",") + `]}}`
		}, "more than 2000 folders"},
		{"too deep", func(string) string { return `{"data":{"keys":["d/"]}}` }, "deeper than 32"},
		{"too many secrets", func(string) string {
			ks := make([]string, findMaxKeys+1)
			for i := range ks {
				ks[i] = fmt.Sprintf(`"s%d"`, i)
			}
			return `{"data":{"keys":[` + strings.Join(ks, ",") + `]}}`
		}, "more than 10000 secrets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lists atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p := strings.TrimPrefix(r.URL.Path, "/v1/")
				if p == "sys/internal/ui/mounts/secret" {
					mount(w, r)
					return
				}
				dir, ok := strings.CutPrefix(p, "secret/metadata/")
				if !ok || r.URL.Query().Get("list") != "true" {
					http.Error(w, "unexpected", http.StatusInternalServerError)
					return
				}
				lists.Add(1)
				answer(200, tc.list(dir))(w, r)
			}))
			defer srv.Close()
			got, err := loopbackClient(t, srv.URL, nil).Find(t.Context(), provider.FindQuery{Path: "root"})
			if !errors.Is(err, provider.ErrInvalid) || got != nil || !strings.Contains(provider.SafeMessage(err), tc.msg) {
				t.Fatalf("Find = %d results, %v; want ErrInvalid %q", len(got), err, tc.msg)
			}
			if n := lists.Load(); n > findMaxFolders+1 {
				t.Fatalf("%d LISTs, want at most %d", n, findMaxFolders+1)
			}
		})
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("err = %v, want code %q", err, code)
	}
}

func TestAmbiguousAnswersAreNotNotFound(t *testing.T) {
	const noRoute = `{"errors":["no handler for route \"nope/data/app\". route entry not found."]}`
	for _, tc := range []struct {
		name   string
		v1     bool
		status int
		body   string
		mount  string // answer of the mount probe; "" = not expected
		want   error
		code   string
	}{
		{"missing secret", false, 404, `{"errors":[]}`, mountV2, provider.ErrNotFound, "404"},
		{"missing secret KV v1", true, 404, `{"errors":[]}`, mountV1, provider.ErrNotFound, "404"},
		{"deleted latest version (404 with metadata)", false, 404, `{"data":{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","destroyed":false,"version":3}}}`, mountV2, provider.ErrNotFound, "404"},
		{"deleted version (200 with metadata)", false, 200, `{"data":{"data":null,"metadata":{"deletion_time":"2026-01-01T00:00:00Z","version":3}}}`, mountV2, provider.ErrNotFound, ""},
		{"destroyed version", false, 200, `{"data":{"data":null,"metadata":{"deletion_time":"","destroyed":true,"version":3}}}`, mountV2, provider.ErrNotFound, ""},
		{"404 no route", false, 404, noRoute, "", provider.ErrInvalid, codeNoRoute},
		{"404 no route KV v1", true, 404, noRoute, "", provider.ErrInvalid, codeNoRoute},
		{"404 unsupported path", false, 404, `{"errors":["1 error occurred:\n\t* unsupported path\n\n"]}`, "", provider.ErrInvalid, codeNoRoute},
		{"404 not from Vault", false, 404, `<html>Not Found</html>`, "", provider.ErrUnavailable, codeBadResponse},
		{"404 empty body", false, 404, ``, "", provider.ErrUnavailable, codeBadResponse},
		{"404 wrong namespace", false, 404, `{"errors":["namespace not found"]}`, "", provider.ErrInvalid, codeNoNamespace},
		{"404 with another error", false, 404, `{"errors":["something else"]}`, "", provider.ErrUnavailable, "404"},
		{"404 KV v1 path on a v2 mount", true, 404, `{"data":null,"warnings":["Invalid path for a versioned K/V secrets engine."]}`, mountV2, provider.ErrInvalid, codeKVVersionMismatch},
		{"empty 200", false, 200, ``, "", provider.ErrUnavailable, codeEmptyResponse},
		{"empty 200 KV v1", true, 200, ``, "", provider.ErrUnavailable, codeEmptyResponse},
		{"204", false, 204, ``, "", provider.ErrUnavailable, codeEmptyResponse},
		{"unparseable 200", false, 200, `{"data":{"data":`, "", provider.ErrUnavailable, codeBadResponse},
		{"unparseable 200 KV v1", true, 200, `not json`, "", provider.ErrUnavailable, codeBadResponse},
		{"200 with trailing garbage", false, 200, `{"data":{}} {}`, "", provider.ErrUnavailable, codeBadResponse},
		{"200 JSON array", false, 200, `[]`, "", provider.ErrUnavailable, codeBadResponse},
		{"200 with data null", false, 200, `{"data":null}`, "", provider.ErrUnavailable, codeEmptyResponse},
		{"200 with data null KV v1", true, 200, `{"data":null}`, "", provider.ErrUnavailable, codeEmptyResponse},
		{"200 JSON null", true, 200, `null`, "", provider.ErrUnavailable, codeEmptyResponse},
		{"200 not Vault's shape KV v1", true, 200, `{"password":"x"}`, "", provider.ErrUnavailable, codeEmptyResponse},
		{"200 with data.data null and a live version", false, 200, `{"data":{"data":null,"metadata":{"deletion_time":"","version":3}}}`, "", provider.ErrUnavailable, codeBadResponse},
		{"200 with data.data not a map", false, 200, `{"data":{"data":"x"}}`, "", provider.ErrUnavailable, codeBadResponse},
		{"KV v2 client on a v1 mount", false, 404, `{"errors":[]}`, mountV1, provider.ErrInvalid, codeKVVersionMismatch},
		{"KV v1 client on a v2 mount", true, 404, `{"errors":[]}`, mountV2, provider.ErrInvalid, codeKVVersionMismatch},
		{"not a KV mount", false, 404, `{"errors":[]}`, `{"data":{"type":"transit","path":"secret/"}}`, provider.ErrInvalid, codeKVVersionMismatch},
		{"folder inside a KV v2 mount", false, 404, `{"errors":[]}`, `{"data":{"type":"kv","path":"other/","options":{"version":"2"}}}`, provider.ErrInvalid, codeKVVersionMismatch},
		{"mount probe answers nothing", false, 404, `{"errors":[]}`, "empty", provider.ErrUnavailable, codeEmptyResponse},
		{"mount probe 404", false, 404, `{"errors":[]}`, "404", provider.ErrInvalid, codeNoRoute},
		{"5xx", false, 503, `{"errors":["Vault is sealed"]}`, "", provider.ErrUnavailable, "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read := "GET secret/data/app"
			if tc.v1 {
				read = "GET secret/app"
			}
			routes := map[string]http.HandlerFunc{read: answer(tc.status, tc.body)}
			switch tc.mount {
			case "":
			case "404":
				routes["GET sys/internal/ui/mounts/secret"] = answer(404, `{"errors":[]}`)
			case "empty":
				routes["GET sys/internal/ui/mounts/secret"] = answer(200, ``)
			default:
				routes["GET sys/internal/ui/mounts/secret"] = answer(200, tc.mount)
			}
			v := newLoopbackVault(t, routes)
			c := loopbackClient(t, v.srv.URL, func(s *v1alpha1.VaultProvider) {
				if tc.v1 {
					s.Version = v1alpha1.VaultKVv1
				}
			})
			_, err := c.GetSecret(t.Context(), provider.Ref{Key: "app"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !errors.Is(tc.want, provider.ErrNotFound) && errors.Is(err, provider.ErrNotFound) {
				t.Fatalf("err = %v also wraps ErrNotFound", err)
			}
			if tc.code != "" {
				wantCode(t, err, tc.code)
			}
			if msg := provider.SafeMessage(err); strings.Contains(msg, "handler") || strings.Contains(msg, "html") || strings.Contains(msg, "sealed") {
				t.Fatalf("SafeMessage renders Vault's text: %q", msg)
			}
			for _, c := range v.Calls() {
				// The user token's lookup (is it renewable?) runs in the background.
				if routes[c] == nil && c != "GET auth/token/lookup-self" {
					t.Fatalf("unexpected call %q", c)
				}
			}
		})
	}
}

func TestOtherCallsEmptyAnswers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		route string
		body  string
		call  func(*Client, context.Context) error
		code  string
	}{
		{"dynamic GET empty", "GET database/creds/ro", ``, func(c *Client, ctx context.Context) error {
			_, _, err := c.Issue(ctx, provider.DynamicRequest{Path: "database/creds/ro"})
			return err
		}, codeEmptyResponse},
		{"dynamic POST data null", "PUT pki/issue/web", `{"data":null}`, func(c *Client, ctx context.Context) error {
			_, _, err := c.Issue(ctx, provider.DynamicRequest{Path: "pki/issue/web", Method: "POST"})
			return err
		}, codeEmptyResponse},
		{"dynamic unparseable", "GET database/creds/ro", `{`, func(c *Client, ctx context.Context) error {
			_, _, err := c.Issue(ctx, provider.DynamicRequest{Path: "database/creds/ro"})
			return err
		}, codeBadResponse},
		{"transit empty", "PUT transit/decrypt/k", ``, func(c *Client, ctx context.Context) error {
			_, err := c.Decrypt(ctx, "", "k", "vault:v1:x")
			return err
		}, codeEmptyResponse},
		{"transit without plaintext", "PUT transit/decrypt/k", `{"data":{}}`, func(c *Client, ctx context.Context) error {
			_, err := c.Decrypt(ctx, "", "k", "vault:v1:x")
			return err
		}, codeBadResponse},
		{"transit plaintext not base64", "PUT transit/decrypt/k", `{"data":{"plaintext":"!!"}}`, func(c *Client, ctx context.Context) error {
			_, err := c.Decrypt(ctx, "", "k", "vault:v1:x")
			return err
		}, codeBadResponse},
		{"renew empty", "PUT sys/leases/renew", ``, func(c *Client, ctx context.Context) error {
			_, err := c.Renew(ctx, "l", time.Minute)
			return err
		}, ""},
		{"token lookup unparseable", "GET auth/token/lookup-self", `x`, func(c *Client, ctx context.Context) error {
			return c.Check(ctx)
		}, codeBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newLoopbackVault(t, map[string]http.HandlerFunc{tc.route: answer(200, tc.body)})
			err := tc.call(loopbackClient(t, v.srv.URL, nil), t.Context())
			if !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrNotFound) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if tc.code != "" {
				wantCode(t, err, tc.code)
			}
		})
	}
}

// TestMountProbeOncePerClient: the probe runs only when a read would report "not
// found", and once per client whatever the number of such reads.
func TestMountProbeOncePerClient(t *testing.T) {
	v := newLoopbackVault(t, map[string]http.HandlerFunc{
		"GET sys/internal/ui/mounts/secret": answer(200, mountV2),
		"GET secret/data/app":               answer(200, `{"data":{"data":{"a":"b"},"metadata":{"version":1}}}`),
		"GET secret/data/missing":           answer(404, `{"errors":[]}`),
	})
	c := loopbackClient(t, v.srv.URL, nil)
	ctx := t.Context()
	for range 10 {
		if _, err := c.GetSecret(ctx, provider.Ref{Key: "app"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.count("GET sys/internal/ui/mounts/secret"); n != 0 {
		t.Fatalf("%d probes for reads that succeeded, want 0", n)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := c.GetSecret(ctx, provider.Ref{Key: "missing"}); !errors.Is(err, provider.ErrNotFound) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := v.count("GET sys/internal/ui/mounts/secret"); n != 1 {
		t.Fatalf("%d probes for 20 missing keys, want 1", n)
	}
}

// TestMountProbeRetriedAfterOutage: a probe that failed for an outage is not the
// answer kept for the client's life.
func TestMountProbeRetriedAfterOutage(t *testing.T) {
	var up atomic.Bool
	v := newLoopbackVault(t, map[string]http.HandlerFunc{
		"GET sys/internal/ui/mounts/secret": func(w http.ResponseWriter, r *http.Request) {
			if !up.Load() {
				answer(503, `{"errors":["sealed"]}`)(w, r)
				return
			}
			answer(200, mountV2)(w, r)
		},
		"GET secret/data/missing": answer(404, `{"errors":[]}`),
	})
	c := loopbackClient(t, v.srv.URL, nil)
	if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "missing"}); !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("probe down: err = %v, want ErrUnavailable", err)
	}
	up.Store(true)
	if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "missing"}); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("probe up: err = %v, want ErrNotFound", err)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	const size = 64 << 20
	for _, tc := range []struct {
		name   string
		status int
		length bool // send a Content-Length
	}{
		{"streamed 200", 200, false},
		{"streamed 500", 500, false},
		{"streamed 404", 404, false},
		{"declared length", 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.length {
					w.Header().Set("Content-Length", fmt.Sprint(size))
				}
				w.WriteHeader(tc.status)
				chunk := []byte(`{"data":{"data":{"k":"` + strings.Repeat("x", 64<<10))
				for sent.Load() < size {
					n, err := w.Write(chunk)
					sent.Add(int64(n))
					if err != nil {
						return
					}
				}
			}))
			defer srv.Close()
			c := loopbackClient(t, srv.URL, nil)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := c.GetSecret(t.Context(), provider.Ref{Key: "big"})
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, provider.ErrUnavailable) || !errors.Is(err, provider.ErrResponseTooLarge) {
				t.Fatalf("err = %v, want ErrUnavailable wrapping ErrResponseTooLarge", err)
			}
			wantCode(t, err, "response-too-large")
			if msg := provider.SafeMessage(err); strings.Contains(msg, "127.0.0.1") {
				t.Fatalf("SafeMessage renders the HTTP layer's text: %q", msg)
			}
			if took > 5*time.Second {
				t.Fatalf("took %s", took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 24<<20 {
				t.Fatalf("allocated %d MiB reading a 64 MiB answer, want a bounded read", alloc>>20)
			}
		})
	}
}

func TestTimeoutBoundsEveryCall(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := providertest.NewBlackHole(t).URL()
	kube := &fakeKube{secrets: map[string]string{"ns/tok/token": "t", "ns/approle/secret-id": "sid"}}
	client := func(t *testing.T, auth v1alpha1.VaultAuth) *Client {
		spec := &v1alpha1.VaultProvider{Server: addr, Auth: auth}
		c, err := New(WithTimeout(timeout)).NewClient(t.Context(), store(spec), kube, "ns")
		if err != nil {
			t.Fatal(err)
		}
		return c.(*Client)
	}
	tokenAuth := v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token"}}
	va, err := newAPI(&v1alpha1.VaultProvider{Server: addr}, nil, timeout, clock.RealClock{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"read", func(ctx context.Context) error {
			_, err := client(t, tokenAuth).GetSecret(ctx, provider.Ref{Key: "app"})
			return err
		}},
		{"list", func(ctx context.Context) error {
			_, err := client(t, tokenAuth).Find(ctx, provider.FindQuery{Path: "app"})
			return err
		}},
		{"write", func(ctx context.Context) error {
			_, err := client(t, tokenAuth).Decrypt(ctx, "", "k", "vault:v1:x")
			return err
		}},
		{"dynamic", func(ctx context.Context) error {
			_, _, err := client(t, tokenAuth).Issue(ctx, provider.DynamicRequest{Path: "database/creds/ro", Method: "POST"})
			return err
		}},
		{"token lookup", func(ctx context.Context) error { return client(t, tokenAuth).Check(ctx) }},
		{"login", func(ctx context.Context) error {
			return client(t, v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{RoleID: "r", SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}).Check(ctx)
		}},
		{"renew lease", func(ctx context.Context) error {
			_, err := client(t, tokenAuth).Renew(ctx, "l", time.Minute)
			return err
		}},
		{"revoke lease", func(ctx context.Context) error { return client(t, tokenAuth).Revoke(ctx, "l") }},
		{"renew token", func(ctx context.Context) error {
			_, err := va.Write(ctx, "t", "auth/token/renew-self", map[string]any{"increment": 60})
			return classify(err)
		}},
		{"revoke token", func(ctx context.Context) error {
			_, err := va.Write(ctx, "t", "auth/token/revoke-self", nil)
			return classify(err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := tc.call(context.Background()) // no deadline of the caller's
			took := time.Since(start)
			if !errors.Is(err, provider.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			wantCode(t, err, "timeout")
			if took < timeout || took > timeout+2*time.Second {
				t.Fatalf("returned after %s, want about %s", took, timeout)
			}
		})
	}
}

func TestDefaultTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want time.Duration
	}{
		{"default", nil, defaultTimeout},
		{"set", []Option{WithTimeout(time.Second)}, time.Second},
		{"zero is the default, not no deadline", []Option{WithTimeout(0)}, defaultTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := New(tc.opts...).(*vaultProvider).timeout; got != tc.want {
				t.Fatalf("timeout = %s, want %s", got, tc.want)
			}
		})
	}
}
