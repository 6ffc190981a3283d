package secretsmanager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/internal/provider"
)

// noCalls is a fakeSM whose every call fails the test.
func noCalls(t *testing.T) *fakeSM {
	fail := func(op string) { t.Helper(); t.Errorf("%s called", op) }
	return &fakeSM{
		get: func(*sm.GetSecretValueInput) (*sm.GetSecretValueOutput, error) {
			fail("GetSecretValue")
			return nil, errors.New("unexpected")
		},
		batch: func(*sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) {
			fail("BatchGetSecretValue")
			return nil, errors.New("unexpected")
		},
		list: func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
			fail("ListSecrets")
			return nil, errors.New("unexpected")
		},
	}
}

// TestRefusedBeforeAnyRequest: a non-canonical key or path, or a malformed version,
// is ErrInvalid and no request is built.
func TestRefusedBeforeAnyRequest(t *testing.T) {
	tests := []struct {
		name      string
		call      func(*Client) error
		canonical bool // the refusal is ErrNotCanonical (else a version error)
		wantSafe  string
	}{
		{"dot-dot segment", get("team-a/../team-b/db", ""), true, `secretsmanager get "team-a/../team-b/db": ".." segment: not a canonical key: invalid request (NotCanonical)`},
		{"dot segment", get("./db", ""), true, ""},
		{"empty segment", get("team-a//db", ""), true, ""},
		{"backslash", get(`team-a\db`, ""), true, ""},
		{"percent sign", get("team-a/%2e%2e/db", ""), true, ""},
		{"control character", get("team-a/db\n", ""), true, ""},
		{"non-canonical ARN", get("arn:aws:secretsmanager:eu-west-1:1:secret:a/../b", ""), true, ""},
		{"uuid/ without an id", get("db", "uuid/"), false, `secretsmanager get "db": version "uuid/": "uuid/" without a version id: invalid request (InvalidVersion)`},
		{"stage with a slash", get("db", "a/b"), false, ""},
		{"batch, non-canonical key", func(c *Client) error {
			res, err := c.GetSecrets(context.Background(), []provider.Ref{{Key: "a/../b"}})
			if err != nil {
				return err
			}
			return res[0].Err
		}, true, ""},
		{"batch, malformed version", func(c *Client) error {
			res, err := c.GetSecrets(context.Background(), []provider.Ref{{Key: "a", Version: "uuid/"}})
			if err != nil {
				return err
			}
			return res[0].Err
		}, false, ""},
		{"find path with a dot-dot segment", find("team-a/.."), true, `secretsmanager find "team-a/..": path: ".." segment: not a canonical key: invalid request (NotCanonical)`},
		{"find path with an empty segment", find("team-a//x"), true, ""},
		{"find path with a percent sign", find("team-a/%"), true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(&Client{api: noCalls(t)})
			if !errors.Is(err, provider.ErrInvalid) || errors.Is(err, provider.ErrNotCanonical) != tc.canonical {
				t.Fatalf("err = %v, want ErrInvalid (canonical: %v)", err, tc.canonical)
			}
			if tc.wantSafe != "" && provider.SafeMessage(err) != tc.wantSafe {
				t.Fatalf("SafeMessage = %q\nwant          %q", provider.SafeMessage(err), tc.wantSafe)
			}
		})
	}
	t.Run("batch: refused refs are left out, the others are read", func(t *testing.T) {
		f := &fakeSM{batch: batchFrom(map[string]string{"good": "v"})}
		res, err := (&Client{api: f}).GetSecrets(context.Background(), []provider.Ref{{Key: "a//b"}, {Key: "good"}})
		if err != nil || !errors.Is(res[0].Err, provider.ErrInvalid) || string(res[1].Secret.Value) != "v" {
			t.Fatalf("res %v, err %v", res, err)
		}
		if len(f.batches) != 1 || len(f.batches[0]) != 1 || f.batches[0][0] != "good" {
			t.Fatalf("batches %v", f.batches)
		}
	})
	t.Run("empty and root find paths are the whole account", func(t *testing.T) {
		for _, p := range []string{"", "/"} {
			f := &fakeSM{list: func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error) { return &sm.ListSecretsOutput{}, nil }}
			if _, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Path: p}); err != nil || len(f.lists) != 1 {
				t.Fatalf("path %q: %v", p, err)
			}
		}
	})
}

func get(key, version string) func(*Client) error {
	return func(c *Client) error {
		_, err := c.GetSecret(context.Background(), provider.Ref{Key: key, Version: version})
		return err
	}
}

func find(path string) func(*Client) error {
	return func(c *Client) error {
		_, err := c.Find(context.Background(), provider.FindQuery{Path: path})
		return err
	}
}

// TestFindPagination: a listing that does not end, or fails part-way, is an error for
// the whole find, never a partial result.
func TestFindPagination(t *testing.T) {
	page := func(n int) []smtypes.SecretListEntry {
		return []smtypes.SecretListEntry{entry(fmt.Sprintf("app/s%04d", n))}
	}
	tests := []struct {
		name      string
		maxPages  int
		list      func(call int, in *sm.ListSecretsInput) (*sm.ListSecretsOutput, error)
		want      error
		wantCode  string
		wantCalls int
	}{
		{
			name: "repeated token",
			list: func(call int, _ *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				return &sm.ListSecretsOutput{SecretList: page(call), NextToken: awssdk.String("same")}, nil
			},
			want: provider.ErrUnavailable, wantCode: "RepeatedNextToken", wantCalls: 2,
		},
		{
			name: "token seen two pages ago",
			list: func(call int, _ *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				return &sm.ListSecretsOutput{SecretList: page(call), NextToken: awssdk.String(fmt.Sprint(call % 2))}, nil
			},
			want: provider.ErrUnavailable, wantCode: "RepeatedNextToken", wantCalls: 3,
		},
		{
			name: "fresh tokens forever: the page cap",
			list: func(call int, _ *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				return &sm.ListSecretsOutput{NextToken: awssdk.String(fmt.Sprint("t", call))}, nil
			},
			want: provider.ErrUnavailable, wantCode: "TooManyPages", wantCalls: 1000,
		},
		{
			name:     "fresh tokens, a lower cap",
			maxPages: 5,
			list: func(call int, _ *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				return &sm.ListSecretsOutput{NextToken: awssdk.String(fmt.Sprint("t", call))}, nil
			},
			want: provider.ErrUnavailable, wantCode: "TooManyPages", wantCalls: 5,
		},
		{
			name: "fails on page 3",
			list: func(call int, _ *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				if call == 3 {
					return nil, &smithy.GenericAPIError{Code: "ThrottlingException"}
				}
				return &sm.ListSecretsOutput{SecretList: page(call), NextToken: awssdk.String(fmt.Sprint("t", call))}, nil
			},
			want: provider.ErrThrottled, wantCode: "ThrottlingException", wantCalls: 3,
		},
		{
			name: "more than 10,000 matches",
			list: func(call int, _ *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				out := &sm.ListSecretsOutput{NextToken: awssdk.String(fmt.Sprint("t", call))}
				for i := range 100 {
					out.SecretList = append(out.SecretList, entry(fmt.Sprintf("app/s%03d-%02d", call, i)))
				}
				return out, nil
			},
			want: provider.ErrInvalid, wantCode: "TooManyResults", wantCalls: 101,
		},
		{
			name: "an entry without a name",
			list: func(call int, _ *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				return &sm.ListSecretsOutput{SecretList: []smtypes.SecretListEntry{{ARN: awssdk.String(arnOf("x"))}}}, nil
			},
			want: provider.ErrUnavailable, wantCode: "MalformedResponse", wantCalls: 1,
		},
		{
			name: "a listed name that is not canonical",
			list: func(call int, _ *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				return &sm.ListSecretsOutput{SecretList: []smtypes.SecretListEntry{entry("app/../other")}}, nil
			},
			want: provider.ErrInvalid, wantCode: "NotCanonical", wantCalls: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			f := &fakeSM{
				list: func(in *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
					calls++
					return tc.list(calls, in)
				},
				batch: batchFrom(map[string]string{}),
			}
			got, err := (&Client{api: f, maxPages: tc.maxPages}).Find(context.Background(), provider.FindQuery{Path: "app"})
			if got != nil || !errors.Is(err, tc.want) || !strings.HasSuffix(provider.SafeMessage(err), "("+tc.wantCode+")") {
				t.Fatalf("got %d keys, err %v (%s)", len(got), err, provider.SafeMessage(err))
			}
			if calls != tc.wantCalls || len(f.batches) != 0 {
				t.Fatalf("%d list calls (want %d), %d batch calls", calls, tc.wantCalls, len(f.batches))
			}
		})
	}
	t.Run("empty pages with tokens, then the end", func(t *testing.T) {
		calls := 0
		f := &fakeSM{
			list: func(in *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				calls++
				if calls < 4 { // ListSecrets with filters may answer empty pages
					return &sm.ListSecretsOutput{NextToken: awssdk.String(fmt.Sprint("t", calls))}, nil
				}
				return &sm.ListSecretsOutput{SecretList: page(1)}, nil
			},
			batch: batchFrom(map[string]string{"app/s0001": "v"}),
		}
		got, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Path: "app"})
		if err != nil || len(got) != 1 || got["app/s0001"].Key != "app/s0001" {
			t.Fatalf("got %v, %v", got, err)
		}
	})
}

// TestAmbiguousAnswers: only ResourceNotFoundException (the call's error, or a batch
// Errors entry) is ErrNotFound; answers that lack what was asked are ErrUnavailable.
func TestAmbiguousAnswers(t *testing.T) {
	t.Run("GetSecretValue", func(t *testing.T) {
		tests := []struct {
			name     string
			out      *sm.GetSecretValueOutput
			err      error
			want     error
			wantCode string
		}{
			{"neither SecretString nor SecretBinary", &sm.GetSecretValueOutput{VersionId: awssdk.String("v")}, nil, provider.ErrUnavailable, "EmptyResponse"},
			{"empty SecretBinary", &sm.GetSecretValueOutput{SecretBinary: []byte{}}, nil, provider.ErrUnavailable, "EmptyResponse"},
			{"ResourceNotFoundException", nil, &smithy.GenericAPIError{Code: "ResourceNotFoundException"}, provider.ErrNotFound, "ResourceNotFoundException"},
			{"no AWS error code", nil, &smithy.GenericAPIError{Code: "UnknownError"}, provider.ErrUnavailable, "Unknown"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := &Client{api: &fakeSM{get: func(*sm.GetSecretValueInput) (*sm.GetSecretValueOutput, error) { return tc.out, tc.err }}}
				_, err := c.GetSecret(context.Background(), provider.Ref{Key: "db"})
				if !errors.Is(provider.Classify(err), tc.want) || provider.SafeMessage(err) != `secretsmanager get "db": `+tc.want.Error()+" ("+tc.wantCode+")" {
					t.Fatalf("err = %v (%s)", err, provider.SafeMessage(err))
				}
			})
		}
		c := &Client{api: &fakeSM{get: func(*sm.GetSecretValueInput) (*sm.GetSecretValueOutput, error) {
			return &sm.GetSecretValueOutput{SecretString: awssdk.String("")}, nil
		}}}
		if s, err := c.GetSecret(context.Background(), provider.Ref{Key: "db"}); err != nil || len(s.Value) != 0 {
			t.Fatalf("an empty SecretString is a value: %v %v", s, err)
		}
	})
	t.Run("BatchGetSecretValue", func(t *testing.T) {
		out := &sm.BatchGetSecretValueOutput{
			SecretValues: []smtypes.SecretValueEntry{
				{Name: awssdk.String("ok"), ARN: awssdk.String(arnOf("ok")), SecretString: awssdk.String("v")},
				{Name: awssdk.String("novalue"), ARN: awssdk.String(arnOf("novalue"))},
				{Name: awssdk.String("noarn"), SecretString: awssdk.String("n")}, // emulator-style: ARN omitted
			},
			Errors: []smtypes.APIErrorType{
				{SecretId: awssdk.String("gone"), ErrorCode: awssdk.String("ResourceNotFoundException")},
				{SecretId: awssdk.String("nocode"), Message: awssdk.String("?")},
				{SecretId: awssdk.String("broken"), ErrorCode: awssdk.String("InternalServiceError")},
				{ErrorCode: awssdk.String("ResourceNotFoundException")}, // no SecretId: matches nothing
			},
		}
		c := &Client{api: &fakeSM{batch: func(*sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) { return out, nil }}}
		ids := []string{"ok", "novalue", "gone", "nocode", "broken", "unmentioned", arnOf("noarn")}
		res, err := c.GetSecrets(context.Background(), refsOf(ids...))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"", "backend unavailable (EmptyResponse)", "not found (ResourceNotFoundException)", "backend unavailable (NoErrorCode)",
			"backend unavailable (InternalServiceError)", "backend unavailable (IncompleteBatchResponse)", ""}
		for i, id := range ids {
			if got := provider.SafeMessage(res[i].Err); !strings.HasSuffix(got, want[i]) || (want[i] == "") != (got == "") {
				t.Errorf("%s: %q, want %q", id, got, want[i])
			}
		}
		if string(res[0].Secret.Value) != "v" || string(res[6].Secret.Value) != "n" {
			t.Fatalf("values %q %q", res[0].Secret.Value, res[6].Secret.Value)
		}
	})
	t.Run("a whole call answered ResourceNotFoundException", func(t *testing.T) {
		rnf := &smithy.GenericAPIError{Code: "ResourceNotFoundException"}
		f := &fakeSM{
			batch: func(*sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) { return nil, rnf },
			list:  func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error) { return nil, rnf },
		}
		c := &Client{api: f}
		_, err := c.GetSecrets(context.Background(), refsOf("a", "b"))
		if !errors.Is(provider.Classify(err), provider.ErrUnavailable) {
			t.Fatalf("batch: %v", err)
		}
		if _, err := c.Find(context.Background(), provider.FindQuery{Path: "app"}); !errors.Is(provider.Classify(err), provider.ErrUnavailable) {
			t.Fatalf("find: %v", err)
		}
	})
	t.Run("Find: a listed secret without a value fails the find", func(t *testing.T) {
		f := &fakeSM{
			list: func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				return &sm.ListSecretsOutput{SecretList: []smtypes.SecretListEntry{entry("app/a"), entry("app/b")}}, nil
			},
			batch: func(in *sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) {
				return &sm.BatchGetSecretValueOutput{SecretValues: []smtypes.SecretValueEntry{
					{Name: awssdk.String("app/a"), ARN: awssdk.String(arnOf("app/a")), SecretString: awssdk.String("v")},
					{Name: awssdk.String("app/b"), ARN: awssdk.String(arnOf("app/b"))},
				}}, nil
			},
		}
		got, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Path: "app"})
		if got != nil || !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("got %v, err %v", got, err)
		}
	})
	t.Run("Find: a listing without ARNs reads by name", func(t *testing.T) {
		f := &fakeSM{
			list: func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				return &sm.ListSecretsOutput{SecretList: []smtypes.SecretListEntry{{Name: awssdk.String("app/a")}}}, nil
			},
			batch: batchFrom(map[string]string{"app/a": "v"}),
		}
		got, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Path: "app"})
		if err != nil || string(got["app/a"].Value) != "v" || got["app/a"].Key != "app/a" || f.batches[0][0] != "app/a" {
			t.Fatalf("got %v, err %v, batches %v", got, err, f.batches)
		}
	})
}

func refsOf(keys ...string) []provider.Ref {
	refs := make([]provider.Ref, len(keys))
	for i, k := range keys {
		refs[i] = provider.Ref{Key: k}
	}
	return refs
}
