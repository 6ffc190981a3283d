package parameterstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/awstest"
)

// FuzzParseVersion: the selector parser never panics; what it accepts is a suffix
// SSM reads one way (":<positive number>" or ":<label>") that parses back to itself,
// and what it refuses is an ErrInvalid naming the field, the value quoted.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"", "3", "007", "0", "-1", "live", "a:b", "a/b", "aws-x", "SSM", "1abc",
		"99999999999999999999", "l\x00", "ünï", strings.Repeat("l", 101)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		suffix, err := parseVersion(v)
		if err != nil {
			msg := provider.SafeMessage(err)
			if !errors.Is(err, provider.ErrInvalid) || !strings.HasPrefix(msg, "version ") || !strings.HasSuffix(msg, "(InvalidVersion)") {
				t.Fatalf("%q: err %v (%s)", v, err, msg)
			}
			if strings.IndexFunc(msg, unicode.IsControl) >= 0 {
				t.Fatalf("%q: raw control character in %q", v, msg)
			}
			return
		}
		if v == "" {
			if suffix != "" {
				t.Fatalf("empty: %q", suffix)
			}
			return
		}
		sel, ok := strings.CutPrefix(suffix, ":")
		if !ok || sel == "" || strings.ContainsAny(sel, ":/ ") || len(sel) > 100 {
			t.Fatalf("%q: suffix %q", v, suffix)
		}
		if n, err := strconv.ParseInt(sel, 10, 64); err == nil && (n < 1 || strconv.FormatInt(n, 10) != sel) {
			t.Fatalf("%q: version suffix %q", v, suffix)
		}
		if again, err := parseVersion(sel); err != nil || again != suffix {
			t.Fatalf("%q: %q parses as %q, %v", v, sel, again, err)
		}
	})
}

const canary = "CANARY-7f3a9c"

var fuzzStatuses = []int{200, 201, 204, 400, 403, 404, 413, 429, 500, 502, 503}

// fuzzClient is the provider's client with every request answered by the returned
// Canned (no network, no retries).
func fuzzClient(f *testing.F) (*awstest.Canned, provider.Client) {
	canned := &awstest.Canned{}
	opts := awsp.Options{HTTPClient: awstest.HTTPClient(f, canned), MaxAttempts: 1, Timeout: 5 * time.Second}
	c, err := NewWithOptions(opts).NewClient(context.Background(),
		awstest.Store(v1alpha1.AWSServiceParameterStore, "http://backend.invalid", awstest.StaticAuth), awstest.StaticKube("AKIAEXAMPLE", "secret"), "team-a")
	if err != nil {
		f.Fatal(err)
	}
	return canned, c
}

func checkErr(t *testing.T, err error, notFoundOK bool) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(provider.SafeMessage(err), canary) || strings.Contains(err.Error(), canary) {
		t.Fatalf("canary rendered: %q / %q", provider.SafeMessage(err), err.Error())
	}
	if errors.Is(err, provider.ErrNotFound) && !notFoundOK {
		t.Fatalf("ErrNotFound from an answer that cannot say so: %s", provider.SafeMessage(err))
	}
}

func ok2xx(status int) bool { return status >= 200 && status < 300 }

// FuzzDecodeGetParameters feeds arbitrary answers to GetSecrets (GetParameters)
// through the real SDK deserializer and the provider's mapping: no panic, no canary
// in an error, per-name "not found" only from a 2xx answer (InvalidParameters).
func FuzzDecodeGetParameters(f *testing.F) {
	for _, s := range []struct {
		status uint8
		body   string
	}{
		{0, `{"Parameters":[{"Name":"/app/a","Value":"` + canary + `","Version":1,"Type":"SecureString"},{"Name":"/app/b","Selector":":3","Value":"x","Version":3}],"InvalidParameters":[]}`},
		{0, `{"Parameters":[],"InvalidParameters":["/app/a","` + canary + `"]}`},
		{0, `{"Parameters":[{"Name":"/app/a"},{"Name":"/app/b","Version":3,"Value":"` + canary + `"}]}`},
		{0, ""}, {0, "{}"}, {0, `{"Parameters":[{"Name":"` + canary + `","Value":"v"}]}`}, {0, "<html>" + canary},
		{3, `{"__type":"ParameterNotFound","message":"` + canary + `"}`}, {3, `{"__type":"` + canary + `"}`}, {5, canary},
	} {
		f.Add(s.status, []byte(s.body))
	}
	canned, c := fuzzClient(f)
	bg := c.(provider.BatchGetter)
	f.Fuzz(func(t *testing.T, st uint8, body []byte) {
		status := fuzzStatuses[int(st)%len(fuzzStatuses)]
		canned.Set(status, body)
		res, err := bg.GetSecrets(context.Background(), []provider.Ref{{Key: "/app/a"}, {Key: "/app/b", Version: "3"}})
		if n := canned.Requests(); n != 1 {
			t.Fatalf("%d requests", n)
		}
		checkErr(t, err, false) // a whole batch is never "not found"
		if err != nil {
			return
		}
		if len(res) != 2 {
			t.Fatalf("%d results for 2 refs", len(res))
		}
		for _, r := range res {
			checkErr(t, r.Err, ok2xx(status))
			if r.Err == nil && !ok2xx(status) {
				t.Fatalf("status %d read as a value", status)
			}
		}
	})
}

// FuzzDecodeGetParametersByPath feeds arbitrary answers to Find (every page gets the
// same answer, so a NextToken repeats): no panic, no canary in an error, never "not
// found", never a partial result, and every key found is canonical and named by
// Secret.Key.
func FuzzDecodeGetParametersByPath(f *testing.F) {
	for _, s := range []struct {
		status uint8
		body   string
	}{
		{0, `{"Parameters":[{"Name":"/app/a","Value":"` + canary + `","Version":2}]}`},
		{0, `{"Parameters":[{"Name":"/app/a","Value":"v"}],"NextToken":"` + canary + `"}`},
		{0, `{"Parameters":[{"Name":"/app/../` + canary + `","Value":"v"}]}`},
		{0, `{"Parameters":[{"Value":"` + canary + `"}]}`},
		{0, `{"Parameters":[{"Name":"/app/a"}]}`},
		{0, ""}, {0, "{}"}, {0, `{"Parameters":null,"NextToken":""}`}, {0, "<html>" + canary},
		{3, `{"__type":"ParameterNotFound","message":"` + canary + `"}`}, {5, "<html>" + canary}, {9, ""},
	} {
		f.Add(s.status, []byte(s.body))
	}
	canned, c := fuzzClient(f)
	f.Fuzz(func(t *testing.T, st uint8, body []byte) {
		status := fuzzStatuses[int(st)%len(fuzzStatuses)]
		canned.Set(status, body)
		got, err := c.Find(context.Background(), provider.FindQuery{Path: "/app"})
		if n := canned.Requests(); n < 1 || n > 2 {
			t.Fatalf("%d requests: a repeated NextToken must stop the listing at the second page", n)
		}
		checkErr(t, err, false)
		if err != nil {
			if got != nil {
				t.Fatalf("partial result with %v", err)
			}
			return
		}
		if !ok2xx(status) {
			t.Fatalf("status %d read as a listing", status)
		}
		for k, s := range got {
			if s.Key != k || provider.CheckKey(k) != nil {
				t.Fatalf("key %q, Secret.Key %q", k, s.Key)
			}
		}
	})
}
