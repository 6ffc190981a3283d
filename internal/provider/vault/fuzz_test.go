package vault

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// FuzzRequestPath: whatever the store's mount, the key, find path, dynamic path or
// transit mount and key, the client either refuses before any request or sends
// requests whose path is the mount the field names plus canonical segments only
// (so vault/api's path.Join cannot turn it into another path).
func FuzzRequestPath(f *testing.F) {
	for _, s := range []struct {
		mount, key string
		op         uint8
	}{
		{"secret", "team-a/app", 0}, {"secret", "team-a/../team-b/db", 0}, {"kv/team", "a/./b", 1},
		{"secret", "/app/", 2}, {"secret", "", 2}, {"transit", "database/creds/ro", 3},
		{"transit", "team-a/../sys/policies/acl/x", 4}, {"team-a/transit", "key", 5}, {"transit", "a/b", 5},
		{"a/../b", "k", 0}, {"secret", "a%2e%2e/b", 6}, {"secret", "a\\b", 7}, {"x", "a\x00b", 3},
	} {
		f.Add(s.mount, s.key, s.op)
	}
	f.Fuzz(func(t *testing.T, mount, key string, op uint8) {
		fa := &fakeAPI{handle: func(method, _, p string, _ url.Values, _ map[string]any) (*api.Secret, error) {
			switch {
			case strings.HasPrefix(p, "sys/internal/ui/mounts/"):
				return kvMount("2"), nil
			case method == "LIST" && strings.HasSuffix(p, "/sub/"):
				return &api.Secret{Data: map[string]any{"keys": []any{"leaf"}}}, nil
			case method == "LIST":
				return &api.Secret{Data: map[string]any{"keys": []any{"leaf", "sub/"}}}, nil
			case method == "PUT" && strings.Contains(p, "/decrypt/"):
				return &api.Secret{Data: map[string]any{"plaintext": "aGk="}}, nil
			}
			return kvData(1, map[string]any{"k": "v"}), nil
		}}
		spec := appRoleSpec()
		spec.Path = mount
		if op&8 != 0 {
			spec.Version = v1alpha1.VaultKVv1
		}
		kvMountOK := New().ValidateStore(store(spec)) == nil
		c := newClient(fa, staticToken{token: "t"}, spec, clocktesting.NewFakeClock(time.Now()), nil)
		ctx := t.Context()
		var err error
		var under string // the mount every request path must extend
		switch op % 8 {
		case 0, 1:
			if !kvMountOK {
				return // NewClient would not have built this client
			}
			ref := provider.Ref{Key: key}
			if op%8 == 1 {
				ref.Version = "1"
			}
			_, err = c.GetSecret(ctx, ref)
			under = c.mount
		case 2, 6:
			if !kvMountOK {
				return
			}
			var tags map[string]string
			if op%8 == 6 && !c.kvV1 {
				tags = map[string]string{"k": "v"}
			}
			_, err = c.Find(ctx, provider.FindQuery{Path: key, Tags: tags})
			under = c.mount
		case 3, 4:
			method := "GET"
			if op%8 == 4 {
				method = "POST"
			}
			_, _, err = c.Issue(ctx, provider.DynamicRequest{Path: key, Method: method})
			under, _, _ = strings.Cut(strings.Trim(key, "/"), "/")
		default:
			_, err = c.Decrypt(ctx, mount, key, "vault:v1:x")
			under = mountOr(mount, defaultTransitMount)
		}
		fa.mu.Lock()
		calls := append([]string(nil), fa.calls...)
		fa.mu.Unlock()
		if err != nil && len(calls) == 0 {
			if !errors.Is(err, provider.ErrInvalid) {
				t.Fatalf("refused without ErrInvalid: %v", err)
			}
			return
		}
		for _, call := range calls {
			_, p, _ := strings.Cut(call, " ")
			if p == "sys/internal/ui/mounts/"+c.mount {
				continue // the KV mount probe, built from the checked store mount
			}
			if call == "GET auth/token/lookup-self" {
				continue // the user token's own lookup (is it renewable?), no key in it
			}
			// Only a LIST (a find over the whole KV v1 mount) may name the mount itself.
			if !strings.HasPrefix(p, under+"/") || (len(p) == len(under)+1 && !strings.HasPrefix(call, "LIST ")) {
				t.Fatalf("request %q is not below mount %q (op %d, key %q)", call, under, op%8, key)
			}
			if cerr := provider.CheckKey(p); cerr != nil {
				t.Fatalf("request %q is not canonical: %v", call, cerr)
			}
			if clean := path.Join("/v1/", p); clean != "/v1/"+strings.TrimSuffix(p, "/") {
				t.Fatalf("vault/api would send %q for %q", clean, p)
			}
		}
	})
}

// fuzzCanary stands for a secret value in FuzzDecodeResponse's bodies ("@@" in the
// fuzzed body is replaced by it): it must never reach a rendered error.
const fuzzCanary = "c4n4ry-v4lu3"

// FuzzDecodeResponse feeds arbitrary status codes and bodies, decoded the way the
// real client decodes them (decodeSecret for successes, vault/api's error decoding
// for the rest), through every call that parses an answer: no panic, and the
// canary never appears in provider.SafeMessage. ErrNotFound comes only from a 404
// or a KV v2 answer that says the version was deleted or destroyed.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []struct {
		status uint16
		body   string
		op     uint8
	}{
		{200, `{"data":{"data":{"password":"@@"},"metadata":{"version":1}}}`, 0},
		{200, `{"data":{"password":"@@"}}`, 1},
		{404, `{"errors":[]}`, 0},
		{404, `{"errors":["no handler for route \"@@\""]}`, 0},
		{400, `{"errors":["invalid ciphertext @@"]}`, 5},
		{200, `{"data":{"keys":["@@","a/","..","a/../b"]}}`, 2},
		{200, `{"data":{"keys":["@@/"]}}`, 3},
		{200, `{"data":{"custom_metadata":{"k":"@@"}}}`, 3},
		{200, `{"lease_id":"@@","lease_duration":60,"renewable":true,"data":{"username":"@@","n":1}}`, 4},
		{200, `{"data":{"plaintext":"@@"}}`, 5},
		{200, `{"lease_id":"@@","lease_duration":"x"}`, 6},
		{200, `{"data":{"data":null,"metadata":{"deletion_time":"@@"}}}`, 0},
		{200, `@@`, 7},
		{500, `<html>@@</html>`, 0},
		{200, `{"data":{"type":"kv","options":{"version":"@@"}}}`, 8},
		{200, ``, 1},
		{200, `{"data":null}`, 0},
	} {
		f.Add(s.status, []byte(s.body), s.op)
	}
	f.Fuzz(func(t *testing.T, status uint16, body []byte, op uint8) {
		body = bytes.ReplaceAll(body, []byte("@@"), []byte(fuzzCanary))
		code := int(status % 600)
		if code < 200 {
			code = 200
		}
		probe := op%16 == 8 // the fuzzed answer is the mount probe's
		fa := &fakeAPI{handle: func(method, _, p string, _ url.Values, _ map[string]any) (*api.Secret, error) {
			switch {
			case p == "auth/token/lookup-self":
				return &api.Secret{Data: map[string]any{}}, nil
			case strings.HasPrefix(p, "sys/internal/ui/mounts/") && !probe:
				return kvMount("2"), nil
			case method == "LIST" && p != "secret/metadata/app/" && p != "secret/app/":
				return nil, respErr(404) // sub-folders: empty
			case probe && !strings.HasPrefix(p, "sys/"):
				return nil, respErr(404) // every read is missing: the probe decides
			}
			return answerOf(code, body)
		}}
		spec := appRoleSpec()
		if op%16 == 1 || op%16 == 3 {
			spec.Version = v1alpha1.VaultKVv1
		}
		c := newClient(fa, staticToken{token: "t"}, spec, clocktesting.NewFakeClock(time.Now()), nil)
		ctx := t.Context()
		var err error
		switch op % 16 {
		case 0, 1, 8:
			_, err = c.GetSecret(ctx, provider.Ref{Key: "app/db"})
		case 2, 3:
			_, err = c.Find(ctx, provider.FindQuery{Path: "app"})
		case 9:
			_, err = c.Find(ctx, provider.FindQuery{Path: "app", Tags: map[string]string{"k": "v"}})
		case 4, 10:
			method := "GET"
			if op%16 == 10 {
				method = "POST"
			}
			_, _, err = c.Issue(ctx, provider.DynamicRequest{Path: "database/creds/ro", Method: method})
		case 5:
			_, err = c.Decrypt(ctx, "", "k", "vault:v1:x")
		case 6:
			_, err = c.Renew(ctx, "lease", time.Minute)
		case 7:
			err = c.Check(ctx)
		default:
			_, err = c.GetSecret(ctx, provider.Ref{Key: "app/db", Version: "2"})
		}
		if err == nil {
			return
		}
		if msg := provider.SafeMessage(err); strings.Contains(msg, fuzzCanary) || strings.Contains(msg, "c4n4ry") {
			t.Fatalf("SafeMessage renders a value from the answer: %q", msg)
		}
		if errors.Is(err, provider.ErrNotFound) && op%16 != 6 && !probe && code != http.StatusNotFound &&
			!bytes.Contains(body, []byte("deletion_time")) && !bytes.Contains(body, []byte("destroyed")) {
			t.Fatalf("ErrNotFound from a %d answer without a deletion: %v", code, err)
		}
	})
}

// answerOf is what the real client makes of a status and body: decodeSecret for a
// success, vault/api's own *api.ResponseError decoding otherwise.
func answerOf(code int, body []byte) (*api.Secret, error) {
	if code < 400 {
		return decodeSecret(bytes.NewReader(body))
	}
	resp := &api.Response{Response: &http.Response{
		StatusCode: code,
		Body:       io.NopCloser(bytes.NewReader(body)),
		Header:     http.Header{},
		Request:    &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/v1/x"}},
	}}
	return nil, resp.Error()
}
