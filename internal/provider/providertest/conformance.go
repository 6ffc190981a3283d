// Package providertest is the conformance suite every backend passes: the sync
// engine relies on exactly these behaviours, whatever the backend.
package providertest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/secretsync/secretsync/internal/provider"
)

// Harness adapts one backend to the suite.
type Harness struct {
	// Client under test, already authenticated.
	Client provider.Client
	// Put writes value at the remote name, creating a new version when it exists, with
	// tags (backends without tags on writes may apply them anyway). It returns the
	// version string the Client must report for this write ("" where the backend has
	// no versions, e.g. Vault KV v1).
	Put func(t *testing.T, name string, value []byte, tags map[string]string) string
	// Name turns a suite name such as "conf/app/db" into the backend's remote name
	// (Parameter Store: "/conf/app/db").
	Name func(suiteName string) string
	// Versioned: the backend can read older versions by Ref.Version = the string Put returned.
	Versioned bool
	// Binary: the backend stores arbitrary bytes (Secrets Manager SecretBinary).
	Binary bool
	// MapValues: values must be JSON objects (Vault KV); plain strings are stored as {"value": s}.
	MapValues bool
	// FoundName is how Find names a result, given the query path and the full remote
	// name (Vault: relative to the path). Nil means the full remote name.
	FoundName func(findPath, fullName string) string
}

// Run runs every conformance case against h. Each test gets fresh names (prefix) so
// backends need no cleanup between runs.
func Run(t *testing.T, prefix string, h Harness) {
	ctx := context.Background()
	name := func(s string) string { return h.Name(prefix + "/" + s) }
	plain := func(s string) []byte {
		if h.MapValues {
			return []byte(`{"value":"` + s + `"}`)
		}
		return []byte(s)
	}

	t.Run("get returns the latest value and its version", func(t *testing.T) {
		h.Put(t, name("get"), plain("one"), nil)
		v2 := h.Put(t, name("get"), plain("two"), nil)
		got, err := h.Client.GetSecret(ctx, provider.Ref{Key: name("get")})
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		if !bytes.Equal(got.Value, plain("two")) {
			t.Fatalf("value = %q, want %q", got.Value, plain("two"))
		}
		if h.Versioned && got.Version != v2 {
			t.Fatalf("version = %q, want %q", got.Version, v2)
		}
	})

	t.Run("get of an older version", func(t *testing.T) {
		if !h.Versioned {
			t.Skip("backend has no versions")
		}
		v1 := h.Put(t, name("ver"), plain("old"), nil)
		h.Put(t, name("ver"), plain("new"), nil)
		got, err := h.Client.GetSecret(ctx, provider.Ref{Key: name("ver"), Version: v1})
		if err != nil {
			t.Fatalf("GetSecret(version %s): %v", v1, err)
		}
		if !bytes.Equal(got.Value, plain("old")) || got.Version != v1 {
			t.Fatalf("got %q@%q, want %q@%q", got.Value, got.Version, plain("old"), v1)
		}
	})

	t.Run("json value yields properties and a map", func(t *testing.T) {
		h.Put(t, name("json"), []byte(`{"username":"app","password":"p\"w","port":5432,"nested":{"a.b":"x"}}`), nil)
		got, err := h.Client.GetSecret(ctx, provider.Ref{Key: name("json")})
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		for path, want := range map[string]string{"username": "app", "password": `p"w`, "port": "5432", `nested.a\.b`: "x"} {
			v, err := provider.Property(got.Value, path)
			if err != nil || string(v) != want {
				t.Errorf("property %s = %q, %v; want %q", path, v, err, want)
			}
		}
		if _, err := provider.Property(got.Value, "missing"); !errors.Is(err, provider.ErrNoProperty) {
			t.Errorf("missing property: err = %v, want ErrNoProperty", err)
		}
		m, err := provider.Map(got.Value)
		if err != nil || len(m) != 4 || string(m["port"]) != "5432" || string(m["nested"]) != `{"a.b":"x"}` {
			t.Errorf("Map = %q, %v", m, err)
		}
	})

	t.Run("missing key is ErrNotFound", func(t *testing.T) {
		_, err := h.Client.GetSecret(ctx, provider.Ref{Key: name("does-not-exist")})
		if !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})

	t.Run("binary value round-trips", func(t *testing.T) {
		if !h.Binary {
			t.Skip("backend stores text only")
		}
		bin := []byte{0, 1, 2, 0xff, 0xfe, '\n'}
		h.Put(t, name("bin"), bin, nil)
		got, err := h.Client.GetSecret(ctx, provider.Ref{Key: name("bin")})
		if err != nil || !bytes.Equal(got.Value, bin) {
			t.Fatalf("got %v, %v; want %v", got.Value, err, bin)
		}
	})

	t.Run("find by path, regexp and tags", func(t *testing.T) {
		h.Put(t, name("find/app/db-user"), plain("u"), map[string]string{"team": "a"})
		h.Put(t, name("find/app/db-pass"), plain("p"), map[string]string{"team": "b"})
		h.Put(t, name("find/app/sub/db-deep"), plain("d"), map[string]string{"team": "a"})
		h.Put(t, name("find/app/api"), plain("k"), map[string]string{"team": "a"})
		h.Put(t, name("find/other/db-x"), plain("x"), map[string]string{"team": "a"})
		path := name("find/app")
		found := func(s string) string {
			if h.FoundName == nil {
				return name(s)
			}
			return h.FoundName(path, name(s))
		}

		byPath, err := h.Client.Find(ctx, provider.FindQuery{Path: path})
		if err != nil {
			t.Fatalf("Find(path): %v", err)
		}
		wantKeys(t, "path", byPath, found("find/app/db-user"), found("find/app/db-pass"), found("find/app/sub/db-deep"), found("find/app/api"))
		if got := byPath[found("find/app/api")]; !bytes.Equal(got.Value, plain("k")) {
			t.Errorf("find value = %q, want %q", got.Value, plain("k"))
		}

		byRe, err := h.Client.Find(ctx, provider.FindQuery{Path: path + "/", NameRegexp: "db-"})
		if err != nil {
			t.Fatalf("Find(regexp): %v", err)
		}
		wantKeys(t, "regexp", byRe, found("find/app/db-user"), found("find/app/db-pass"), found("find/app/sub/db-deep"))

		byTag, err := h.Client.Find(ctx, provider.FindQuery{Path: path, NameRegexp: "db-", Tags: map[string]string{"team": "a"}})
		if err != nil {
			t.Fatalf("Find(tags): %v", err)
		}
		wantKeys(t, "tags", byTag, found("find/app/db-user"), found("find/app/sub/db-deep"))
	})

	t.Run("check succeeds", func(t *testing.T) {
		if err := h.Client.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})

	if bg, ok := h.Client.(provider.BatchGetter); ok {
		t.Run("batch get aligns results and reports per-key errors", func(t *testing.T) {
			h.Put(t, name("batch/a"), plain("A"), nil)
			h.Put(t, name("batch/b"), plain("B"), nil)
			refs := []provider.Ref{{Key: name("batch/b")}, {Key: name("batch/missing")}, {Key: name("batch/a")}}
			res, err := bg.GetSecrets(ctx, refs)
			if err != nil || len(res) != 3 {
				t.Fatalf("GetSecrets = %d results, %v", len(res), err)
			}
			if !bytes.Equal(res[0].Secret.Value, plain("B")) || !bytes.Equal(res[2].Secret.Value, plain("A")) {
				t.Errorf("values = %q, %q", res[0].Secret.Value, res[2].Secret.Value)
			}
			if !errors.Is(res[1].Err, provider.ErrNotFound) {
				t.Errorf("missing: err = %v, want ErrNotFound", res[1].Err)
			}
		})
	}
}

func wantKeys(t *testing.T, what string, got map[string]provider.Secret, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		t.Errorf("find by %s: got keys [%s], want [%s]", what, strings.Join(keys, " "), strings.Join(want, " "))
		return
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("find by %s: key %q missing", what, k)
		}
	}
}
