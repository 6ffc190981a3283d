package parameterstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/internal/provider"
)

// noCalls is a fakeSSM whose every call fails the test.
func noCalls(t *testing.T) *fakeSSM {
	fail := func(op string) { t.Helper(); t.Errorf("%s called", op) }
	return &fakeSSM{
		get: func(*ssm.GetParameterInput) (*ssm.GetParameterOutput, error) {
			fail("GetParameter")
			return nil, errors.New("unexpected")
		},
		getMany: func(*ssm.GetParametersInput) (*ssm.GetParametersOutput, error) {
			fail("GetParameters")
			return nil, errors.New("unexpected")
		},
		byPath: func(*ssm.GetParametersByPathInput) (*ssm.GetParametersByPathOutput, error) {
			fail("GetParametersByPath")
			return nil, errors.New("unexpected")
		},
		describe: func(*ssm.DescribeParametersInput) (*ssm.DescribeParametersOutput, error) {
			fail("DescribeParameters")
			return nil, errors.New("unexpected")
		},
	}
}

// TestRefusedBeforeAnyRequest: a non-canonical name or path, or a malformed version,
// is ErrInvalid and no request is built.
func TestRefusedBeforeAnyRequest(t *testing.T) {
	bg := context.Background()
	get := func(key, version string) func(*Client) error {
		return func(c *Client) error {
			_, err := c.GetSecret(bg, provider.Ref{Key: key, Version: version})
			return err
		}
	}
	batch := func(key, version string) func(*Client) error {
		return func(c *Client) error {
			res, err := c.GetSecrets(bg, []provider.Ref{{Key: key, Version: version}})
			if err != nil {
				return err
			}
			return res[0].Err
		}
	}
	find := func(path string, tags map[string]string) func(*Client) error {
		return func(c *Client) error {
			_, err := c.Find(bg, provider.FindQuery{Path: path, Tags: tags})
			return err
		}
	}
	tests := []struct {
		name     string
		call     func(*Client) error
		wantSafe string
	}{
		{"dot-dot segment", get("/team-a/../team-b/db", ""), `parameterstore get "/team-a/../team-b/db": ".." segment: not a canonical key: invalid request (NotCanonical)`},
		{"empty segment", get("/team-a//db", ""), ""},
		{"backslash", get(`/team-a\db`, ""), ""},
		{"version 0", get("/db", "0"), `parameterstore get "/db": version "0": a version number is a positive 64-bit number: invalid request (InvalidVersion)`},
		{"label with a slash", get("/db", "a/b"), ""},
		{"batch, dot segment", batch("/team-a/./db", ""), ""},
		{"batch, reserved label", batch("/db", "aws-x"), ""},
		{"find path", find("/team-a/../", nil), `parameterstore find "/team-a/../": path: ".." segment: not a canonical key: invalid request (NotCanonical)`},
		{"find path with tags", find("/team-a//x", map[string]string{"team": "a"}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(&Client{api: noCalls(t)})
			if !errors.Is(err, provider.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if tc.wantSafe != "" && provider.SafeMessage(err) != tc.wantSafe {
				t.Fatalf("SafeMessage = %q\nwant          %q", provider.SafeMessage(err), tc.wantSafe)
			}
		})
	}
}

// TestFindPagination: for both listings find uses, a listing that does not end, or
// fails part-way, is an error for the whole find, never a partial result.
func TestFindPagination(t *testing.T) {
	type pageFn func(call int) (names []string, token *string, err error)
	repeat := func(call int) ([]string, *string, error) {
		return []string{fmt.Sprintf("/app/p%d", call)}, awssdk.String("same"), nil
	}
	fresh := func(call int) ([]string, *string, error) {
		return nil, awssdk.String(fmt.Sprint("t", call)), nil
	}
	failOn3 := func(call int) ([]string, *string, error) {
		if call == 3 {
			return nil, nil, &smithy.GenericAPIError{Code: "ThrottlingException"}
		}
		return []string{fmt.Sprintf("/app/p%d", call)}, awssdk.String(fmt.Sprint("t", call)), nil
	}
	many := func(call int) ([]string, *string, error) {
		var names []string
		for i := range 10 {
			names = append(names, fmt.Sprintf("/app/p%04d-%d", call, i))
		}
		return names, awssdk.String(fmt.Sprint("t", call)), nil
	}
	noName := func(int) ([]string, *string, error) { return []string{""}, nil, nil } // "" = Name omitted
	oddName := func(int) ([]string, *string, error) { return []string{"/app/../other"}, nil, nil }
	tests := []struct {
		name      string
		maxPages  int
		page      pageFn
		want      error
		wantCode  string
		wantCalls int
	}{
		{"repeated token", 0, repeat, provider.ErrUnavailable, "RepeatedNextToken", 2},
		{"fresh tokens forever: the page cap", 0, fresh, provider.ErrUnavailable, "TooManyPages", 1000},
		{"fresh tokens, a lower cap", 4, fresh, provider.ErrUnavailable, "TooManyPages", 4},
		{"fails on page 3", 0, failOn3, provider.ErrThrottled, "ThrottlingException", 3},
		{"more than 10,000 matches", 2000, many, provider.ErrInvalid, "TooManyResults", 1001},
		{"a parameter without a name", 0, noName, provider.ErrUnavailable, "MalformedResponse", 1},
		{"a listed name that is not canonical", 0, oddName, provider.ErrInvalid, "NotCanonical", 1},
	}
	for _, listing := range []string{"GetParametersByPath", "DescribeParameters"} {
		for _, tc := range tests {
			t.Run(listing+"/"+tc.name, func(t *testing.T) {
				calls := 0
				f := &fakeSSM{
					byPath: func(*ssm.GetParametersByPathInput) (*ssm.GetParametersByPathOutput, error) {
						calls++
						names, tok, err := tc.page(calls)
						out := &ssm.GetParametersByPathOutput{NextToken: tok}
						for _, n := range names {
							p := param(n, "v", 1, "")
							if n == "" {
								p.Name = nil
							}
							out.Parameters = append(out.Parameters, p)
						}
						return out, err
					},
					describe: func(*ssm.DescribeParametersInput) (*ssm.DescribeParametersOutput, error) {
						calls++
						names, tok, err := tc.page(calls)
						out := &ssm.DescribeParametersOutput{NextToken: tok}
						for _, n := range names {
							m := ssmtypes.ParameterMetadata{Name: awssdk.String(n)}
							if n == "" {
								m.Name = nil
							}
							out.Parameters = append(out.Parameters, m)
						}
						return out, err
					},
					getMany: getManyFrom,
				}
				q := provider.FindQuery{Path: "/app"}
				if listing == "DescribeParameters" {
					q.Tags = map[string]string{"team": "a"}
				}
				got, err := (&Client{api: f, maxPages: tc.maxPages}).Find(context.Background(), q)
				if got != nil || !errors.Is(err, tc.want) || !strings.HasSuffix(provider.SafeMessage(err), "("+tc.wantCode+")") {
					t.Fatalf("got %d keys, err %v (%s)", len(got), err, provider.SafeMessage(err))
				}
				if calls != tc.wantCalls || len(f.batches) != 0 {
					t.Fatalf("%d listing calls (want %d), %d GetParameters calls", calls, tc.wantCalls, len(f.batches))
				}
			})
		}
	}
}

// TestAmbiguousAnswers: only ParameterNotFound (and ParameterVersionNotFound) and
// GetParameters' InvalidParameters are ErrNotFound; answers that lack what was asked
// are ErrUnavailable.
func TestAmbiguousAnswers(t *testing.T) {
	bg := context.Background()
	t.Run("GetParameter", func(t *testing.T) {
		noValue := param("/db", "", 1, "")
		noValue.Value = nil
		tests := []struct {
			name     string
			out      *ssm.GetParameterOutput
			err      error
			want     error
			wantCode string
		}{
			{"no Parameter", &ssm.GetParameterOutput{}, nil, provider.ErrUnavailable, "EmptyResponse"},
			{"Parameter without Value", &ssm.GetParameterOutput{Parameter: &noValue}, nil, provider.ErrUnavailable, "EmptyResponse"},
			{"ParameterNotFound", nil, &smithy.GenericAPIError{Code: "ParameterNotFound"}, provider.ErrNotFound, "ParameterNotFound"},
			{"no AWS error code", nil, &smithy.GenericAPIError{Code: "UnknownError"}, provider.ErrUnavailable, "Unknown"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := &Client{api: &fakeSSM{get: func(*ssm.GetParameterInput) (*ssm.GetParameterOutput, error) { return tc.out, tc.err }}}
				_, err := c.GetSecret(bg, provider.Ref{Key: "/db"})
				if !errors.Is(provider.Classify(err), tc.want) || provider.SafeMessage(err) != `parameterstore get "/db": `+tc.want.Error()+" ("+tc.wantCode+")" {
					t.Fatalf("err = %v (%s)", err, provider.SafeMessage(err))
				}
			})
		}
	})
	t.Run("GetParameters", func(t *testing.T) {
		noValue := param("/novalue", "", 1, "")
		noValue.Value = nil
		bare := func(name string, version int64) ssmtypes.Parameter { // emulator-style: no Selector, no ARN
			return ssmtypes.Parameter{Name: awssdk.String(name), Value: awssdk.String(fmt.Sprint(name, "@", version)), Version: version}
		}
		out := &ssm.GetParametersOutput{
			Parameters: []ssmtypes.Parameter{
				param("/ok", "v", 1, ""), noValue,
				bare("/nosel", 4),                    // asked as "/nosel:4"
				bare("/twice", 1), bare("/twice", 2), // asked as "/twice" and "/twice:2"
			},
			InvalidParameters: []string{"/gone"},
		}
		c := &Client{api: &fakeSSM{getMany: func(*ssm.GetParametersInput) (*ssm.GetParametersOutput, error) { return out, nil }}}
		refs := []provider.Ref{{Key: "/ok"}, {Key: "/novalue"}, {Key: "/gone"}, {Key: "/unmentioned"}, {Key: "/nosel", Version: "4"}, {Key: "/twice"}, {Key: "/twice", Version: "2"}}
		res, err := c.GetSecrets(bg, refs)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"", "backend unavailable (EmptyResponse)", "not found (InvalidParameters)", "backend unavailable (IncompleteBatchResponse)",
			"", "backend unavailable (IncompleteBatchResponse)", ""}
		for i, r := range refs {
			if got := provider.SafeMessage(res[i].Err); !strings.HasSuffix(got, want[i]) || (want[i] == "") != (got == "") {
				t.Errorf("%v: %q, want %q", r, got, want[i])
			}
		}
		if string(res[4].Secret.Value) != "/nosel@4" || string(res[6].Secret.Value) != "/twice@2" {
			t.Fatalf("values %q %q", res[4].Secret.Value, res[6].Secret.Value)
		}
	})
	t.Run("a whole call answered ParameterNotFound", func(t *testing.T) {
		pnf := &smithy.GenericAPIError{Code: "ParameterNotFound"}
		f := &fakeSSM{
			getMany:  func(*ssm.GetParametersInput) (*ssm.GetParametersOutput, error) { return nil, pnf },
			byPath:   func(*ssm.GetParametersByPathInput) (*ssm.GetParametersByPathOutput, error) { return nil, pnf },
			describe: func(*ssm.DescribeParametersInput) (*ssm.DescribeParametersOutput, error) { return nil, pnf },
		}
		c := &Client{api: f}
		if _, err := c.GetSecrets(bg, []provider.Ref{{Key: "/a"}}); !errors.Is(provider.Classify(err), provider.ErrUnavailable) {
			t.Fatalf("batch: %v", err)
		}
		for _, q := range []provider.FindQuery{{Path: "/app"}, {Path: "/app", Tags: map[string]string{"t": "a"}}} {
			if _, err := c.Find(bg, q); !errors.Is(provider.Classify(err), provider.ErrUnavailable) {
				t.Fatalf("find %+v: %v", q, err)
			}
		}
	})
	t.Run("Find: a parameter without a value fails the find", func(t *testing.T) {
		p := param("/app/a", "", 1, "")
		p.Value = nil
		f := &fakeSSM{byPath: func(*ssm.GetParametersByPathInput) (*ssm.GetParametersByPathOutput, error) {
			return &ssm.GetParametersByPathOutput{Parameters: []ssmtypes.Parameter{param("/app/b", "v", 1, ""), p}}, nil
		}}
		got, err := (&Client{api: f}).Find(bg, provider.FindQuery{Path: "/app"})
		if got != nil || !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("got %v, err %v", got, err)
		}
	})
}
