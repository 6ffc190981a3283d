package parameterstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/internal/provider"
)

// fakeSSM is ssmAPI with function fields; it records the calls.
type fakeSSM struct {
	mu        sync.Mutex
	get       func(*ssm.GetParameterInput) (*ssm.GetParameterOutput, error)
	getMany   func(*ssm.GetParametersInput) (*ssm.GetParametersOutput, error)
	byPath    func(*ssm.GetParametersByPathInput) (*ssm.GetParametersByPathOutput, error)
	describe  func(*ssm.DescribeParametersInput) (*ssm.DescribeParametersOutput, error)
	gets      []ssm.GetParameterInput
	batches   [][]string
	paths     []ssm.GetParametersByPathInput
	describes []ssm.DescribeParametersInput
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.mu.Lock()
	f.gets = append(f.gets, *in)
	f.mu.Unlock()
	return f.get(in)
}

func (f *fakeSSM) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	f.mu.Lock()
	f.batches = append(f.batches, slices.Clone(in.Names))
	f.mu.Unlock()
	if !awssdk.ToBool(in.WithDecryption) {
		panic("GetParameters without decryption")
	}
	return f.getMany(in)
}

func (f *fakeSSM) GetParametersByPath(_ context.Context, in *ssm.GetParametersByPathInput, _ ...func(*ssm.Options)) (*ssm.GetParametersByPathOutput, error) {
	f.mu.Lock()
	f.paths = append(f.paths, *in)
	f.mu.Unlock()
	return f.byPath(in)
}

func (f *fakeSSM) DescribeParameters(_ context.Context, in *ssm.DescribeParametersInput, _ ...func(*ssm.Options)) (*ssm.DescribeParametersOutput, error) {
	f.mu.Lock()
	f.describes = append(f.describes, *in)
	f.mu.Unlock()
	return f.describe(in)
}

func param(name, value string, version int64, sel string) ssmtypes.Parameter {
	p := ssmtypes.Parameter{
		Name: awssdk.String(name), Value: awssdk.String(value), Version: version, Type: ssmtypes.ParameterTypeSecureString,
		ARN: awssdk.String("arn:aws:ssm:eu-west-1:123456789012:parameter" + name),
	}
	if sel != "" {
		p.Selector = awssdk.String(sel)
	}
	return p
}

// getManyFrom answers GetParameters: "name" -> value@3, "name:N" -> value@N, names
// starting with /missing are invalid.
func getManyFrom(in *ssm.GetParametersInput) (*ssm.GetParametersOutput, error) {
	out := &ssm.GetParametersOutput{}
	for _, raw := range in.Names {
		name, sel, hasSel := strings.Cut(raw, ":")
		if strings.HasPrefix(raw, "arn:") {
			name, sel, hasSel = "/"+strings.TrimPrefix(raw, "arn:aws:ssm:eu-west-1:123456789012:parameter/"), "", false
		}
		if strings.HasPrefix(name, "/missing") {
			out.InvalidParameters = append(out.InvalidParameters, raw)
			continue
		}
		var version int64 = 3
		if hasSel {
			_, _ = fmt.Sscan(sel, &version) // a label selector keeps version 3
			out.Parameters = append(out.Parameters, param(name, "val-"+name+"@"+sel, version, ":"+sel))
			continue
		}
		out.Parameters = append(out.Parameters, param(name, "val-"+name, version, ""))
	}
	return out, nil
}

func TestSelector(t *testing.T) {
	tests := []struct {
		name     string
		ref      provider.Ref
		want     string
		wantCode string // "" = valid
	}{
		{"name", provider.Ref{Key: "/a/b"}, "/a/b", ""},
		{"version", provider.Ref{Key: "/a/b", Version: "3"}, "/a/b:3", ""},
		{"version with leading zeros is sent canonical", provider.Ref{Key: "/a/b", Version: "007"}, "/a/b:7", ""},
		{"label", provider.Ref{Key: "/a/b", Version: "live"}, "/a/b:live", ""},
		{"label with dots, dashes, underscores", provider.Ref{Key: "plain", Version: "v2.blue-green_1"}, "plain:v2.blue-green_1", ""},
		{"label of 100", provider.Ref{Key: "/a", Version: "l" + strings.Repeat("9", 99)}, "/a:l" + strings.Repeat("9", 99), ""},
		{"ARN", provider.Ref{Key: "arn:aws:ssm:eu-west-1:123456789012:parameter/a/b", Version: "2"}, "arn:aws:ssm:eu-west-1:123456789012:parameter/a/b:2", ""},
		{"version 0", provider.Ref{Key: "/a", Version: "0"}, "", "InvalidVersion"},
		{"version overflows", provider.Ref{Key: "/a", Version: "99999999999999999999"}, "", "InvalidVersion"},
		{"selector inside the version", provider.Ref{Key: "/a", Version: "a:b"}, "", "InvalidVersion"},
		{"slash in the version", provider.Ref{Key: "/a", Version: "a/b"}, "", "InvalidVersion"},
		{"space in the version", provider.Ref{Key: "/a", Version: "a b"}, "", "InvalidVersion"},
		{"label starting with a digit", provider.Ref{Key: "/a", Version: "1abc"}, "", "InvalidVersion"},
		{"label reserved prefix aws", provider.Ref{Key: "/a", Version: "AWSlive"}, "", "InvalidVersion"},
		{"label reserved prefix ssm", provider.Ref{Key: "/a", Version: "ssm-x"}, "", "InvalidVersion"},
		{"label too long", provider.Ref{Key: "/a", Version: "l" + strings.Repeat("9", 100)}, "", "InvalidVersion"},
		{"-1 fits the label rules but reads as a number", provider.Ref{Key: "/a", Version: "-1"}, "", "InvalidVersion"},
		{"label starting with '-'", provider.Ref{Key: "/a", Version: "-live"}, "/a:-live", ""},
		{"empty key", provider.Ref{Key: ""}, "", "EmptyKey"},
		{"dot-dot segment", provider.Ref{Key: "/team-a/../team-b/db"}, "", "NotCanonical"},
		{"empty segment", provider.Ref{Key: "/team-a//db"}, "", "NotCanonical"},
		{"percent sign", provider.Ref{Key: "/team-a/%2e%2e/db"}, "", "NotCanonical"},
		{"control character", provider.Ref{Key: "/team-a/db\x00"}, "", "NotCanonical"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := selector(tc.ref)
			if tc.wantCode != "" {
				if !errors.Is(err, provider.ErrInvalid) || !strings.HasSuffix(provider.SafeMessage(err), "invalid request ("+tc.wantCode+")") {
					t.Fatalf("err = %v (%s), want ErrInvalid (%s)", err, provider.SafeMessage(err), tc.wantCode)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func TestFindPath(t *testing.T) {
	for in, want := range map[string]string{"": "/", "/": "/", "//": "/", "/a/": "/a", "a/b": "/a/b", "/a/b//": "/a/b"} {
		if got := findPath(in); got != want {
			t.Errorf("findPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGetSecret(t *testing.T) {
	f := &fakeSSM{get: func(in *ssm.GetParameterInput) (*ssm.GetParameterOutput, error) {
		if !awssdk.ToBool(in.WithDecryption) {
			t.Fatal("GetParameter without decryption")
		}
		switch *in.Name {
		case "/list":
			p := param("/list", "a,b,c", 2, "")
			p.Type = ssmtypes.ParameterTypeStringList
			return &ssm.GetParameterOutput{Parameter: &p}, nil
		case "/db:live":
			p := param("/db", "old", 4, ":live")
			return &ssm.GetParameterOutput{Parameter: &p}, nil
		case "/db:9":
			return nil, &smithy.GenericAPIError{Code: "ParameterVersionNotFound"}
		}
		return nil, &smithy.GenericAPIError{Code: "ParameterNotFound"}
	}}
	c := &Client{api: f}
	got, err := c.GetSecret(context.Background(), provider.Ref{Key: "/list"})
	if err != nil || string(got.Value) != "a,b,c" || got.Version != "2" {
		t.Fatalf("list: %q@%q %v", got.Value, got.Version, err)
	}
	got, err = c.GetSecret(context.Background(), provider.Ref{Key: "/db", Version: "live"})
	if err != nil || string(got.Value) != "old" || got.Version != "4" {
		t.Fatalf("label: %q@%q %v", got.Value, got.Version, err)
	}
	for _, ref := range []provider.Ref{{Key: "/db", Version: "9"}, {Key: "/nope"}} {
		if _, err := c.GetSecret(context.Background(), ref); !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("%v: err %v", ref, err)
		}
	}
}

func TestGetSecretsChunksAndAligns(t *testing.T) {
	var refs []provider.Ref
	for i := range 23 {
		refs = append(refs, provider.Ref{Key: fmt.Sprint("/p/", i)})
	}
	refs = append(refs,
		provider.Ref{Key: "/p/0"},                                               // duplicate
		provider.Ref{Key: "/p/1", Version: "2"},                                 // version selector
		provider.Ref{Key: "/p/2", Version: "0"},                                 // invalid: never sent
		provider.Ref{Key: "/missing/x"},                                         // InvalidParameters
		provider.Ref{Key: "arn:aws:ssm:eu-west-1:123456789012:parameter/p/arn"}, // by ARN
	)
	f := &fakeSSM{getMany: getManyFrom}
	res, err := (&Client{api: f}).GetSecrets(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, b := range f.batches {
		sizes = append(sizes, len(b))
	}
	// 23 names + /p/1:2 + /missing/x + the ARN = 26 distinct selectors.
	if !slices.Equal(sizes, []int{10, 10, 6}) {
		t.Fatalf("batch sizes %v", sizes)
	}
	for i := range 23 {
		if want := "val-" + refs[i].Key; string(res[i].Secret.Value) != want || res[i].Secret.Version != "3" {
			t.Fatalf("res[%d] = %q@%q %v", i, res[i].Secret.Value, res[i].Secret.Version, res[i].Err)
		}
	}
	if string(res[23].Secret.Value) != "val-/p/0" {
		t.Fatalf("duplicate %v", res[23])
	}
	if string(res[24].Secret.Value) != "val-/p/1@2" || res[24].Secret.Version != "2" {
		t.Fatalf("versioned %v", res[24])
	}
	if !errors.Is(res[25].Err, provider.ErrInvalid) || !errors.Is(res[26].Err, provider.ErrNotFound) {
		t.Fatalf("invalid %v / missing %v", res[25].Err, res[26].Err)
	}
	if string(res[27].Secret.Value) != "val-/p/arn" {
		t.Fatalf("ARN %v", res[27])
	}

	throttled := &smithy.GenericAPIError{Code: "ThrottlingException"}
	f = &fakeSSM{getMany: func(*ssm.GetParametersInput) (*ssm.GetParametersOutput, error) { return nil, throttled }}
	if res, err := (&Client{api: f}).GetSecrets(context.Background(), refs[:3]); !errors.Is(err, provider.ErrThrottled) || res != nil {
		t.Fatalf("all calls failing: %v %v", res, err)
	}
}

func TestFindByPath(t *testing.T) {
	var all []ssmtypes.Parameter
	for _, n := range []string{"/app/db-user", "/app/db-pass", "/app/sub/db-deep", "/app/api"} {
		all = append(all, param(n, "v"+n, 1, ""))
	}
	for i := range 12 {
		all = append(all, param(fmt.Sprintf("/app/bulk/%02d", i), "b", 2, ""))
	}
	f := &fakeSSM{byPath: func(in *ssm.GetParametersByPathInput) (*ssm.GetParametersByPathOutput, error) {
		start := 0
		if in.NextToken != nil {
			_, _ = fmt.Sscan(*in.NextToken, &start) // the fake made the token
		}
		end := min(start+int(awssdk.ToInt32(in.MaxResults)), len(all))
		out := &ssm.GetParametersByPathOutput{Parameters: all[start:end]}
		if end < len(all) {
			out.NextToken = awssdk.String(fmt.Sprint(end))
		}
		return out, nil
	}}
	got, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Path: "app/", NameRegexp: "db-"})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"/app/db-pass", "/app/db-user", "/app/sub/db-deep"}) || string(got["/app/db-user"].Value) != "v/app/db-user" || got["/app/db-user"].Version != "1" || got["/app/db-user"].Key != "/app/db-user" {
		t.Fatalf("found %v", got)
	}
	if len(f.paths) != 2 {
		t.Fatalf("%d GetParametersByPath calls, want 2", len(f.paths))
	}
	in := f.paths[0]
	if awssdk.ToString(in.Path) != "/app" || !awssdk.ToBool(in.Recursive) || !awssdk.ToBool(in.WithDecryption) || awssdk.ToInt32(in.MaxResults) != 10 || len(in.ParameterFilters) != 0 {
		t.Fatalf("request %+v", in)
	}
	if len(f.describes) != 0 || len(f.batches) != 0 {
		t.Fatal("find without tags used DescribeParameters/GetParameters")
	}
}

func TestFindByTags(t *testing.T) {
	var metas []ssmtypes.ParameterMetadata
	for i := range 25 {
		metas = append(metas, ssmtypes.ParameterMetadata{Name: awssdk.String(fmt.Sprintf("/app/db-%02d", i))})
	}
	metas = append(metas, ssmtypes.ParameterMetadata{Name: awssdk.String("/app/api")}, ssmtypes.ParameterMetadata{Name: awssdk.String("/missing/gone")})
	f := &fakeSSM{
		getMany: getManyFrom,
		describe: func(in *ssm.DescribeParametersInput) (*ssm.DescribeParametersOutput, error) {
			start := 0
			if in.NextToken != nil {
				_, _ = fmt.Sscan(*in.NextToken, &start) // the fake made the token
			}
			end := min(start+20, len(metas))
			out := &ssm.DescribeParametersOutput{Parameters: metas[start:end]}
			if end < len(metas) {
				out.NextToken = awssdk.String(fmt.Sprint(end))
			}
			return out, nil
		},
	}
	got, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Path: "/app", NameRegexp: "db-|gone", Tags: map[string]string{"team": "a", "flag": ""}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 25 || string(got["/app/db-07"].Value) != "val-/app/db-07" || got["/app/db-07"].Key != "/app/db-07" {
		t.Fatalf("found %d: %v", len(got), got["/app/db-07"])
	}
	var fs []string
	for _, fl := range f.describes[0].ParameterFilters {
		fs = append(fs, fmt.Sprintf("%s/%s/%v", awssdk.ToString(fl.Key), awssdk.ToString(fl.Option), fl.Values))
	}
	if strings.Join(fs, " ") != "Path/Recursive/[/app] tag:flag/Equals/[] tag:team/Equals/[a]" || awssdk.ToInt32(f.describes[0].MaxResults) != 50 {
		t.Fatalf("filters %v", fs)
	}
	var sizes []int
	for _, b := range f.batches {
		sizes = append(sizes, len(b))
	}
	if len(f.describes) != 2 || !slices.Equal(sizes, []int{10, 10, 6}) || len(f.paths) != 0 {
		t.Fatalf("describes %d, batches %v, by-path %d", len(f.describes), sizes, len(f.paths))
	}

	// The root has no Path filter.
	f.describes = nil
	if _, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Tags: map[string]string{"team": "a"}}); err != nil {
		t.Fatal(err)
	}
	if len(f.describes[0].ParameterFilters) != 1 {
		t.Fatalf("root filters %+v", f.describes[0].ParameterFilters)
	}
}

func TestCheck(t *testing.T) {
	f := &fakeSSM{describe: func(*ssm.DescribeParametersInput) (*ssm.DescribeParametersOutput, error) {
		return &ssm.DescribeParametersOutput{}, nil
	}}
	if err := (&Client{api: f}).Check(context.Background()); err != nil || awssdk.ToInt32(f.describes[0].MaxResults) != 1 {
		t.Fatalf("err %v, calls %+v", err, f.describes)
	}
	f.describe = func(*ssm.DescribeParametersInput) (*ssm.DescribeParametersOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "AccessDeniedException"}
	}
	if err := (&Client{api: f}).Check(context.Background()); !errors.Is(err, provider.ErrAccessDenied) {
		t.Fatalf("err %v", err)
	}
}

func TestBatches(t *testing.T) {
	many := make([]string, 12)
	for i := range many {
		many[i] = fmt.Sprintf("/p%02d", i)
	}
	tests := []struct {
		name string
		sels []string
		want [][]string
	}{
		{"one selector per parameter: calls of 10", many, [][]string{many[:10], many[10:]}},
		{"versions of one parameter go to separate calls", []string{"/a", "/a:1", "/b", "/a:live"}, [][]string{{"/a", "/b"}, {"/a:1"}, {"/a:live"}}},
		{"ARN and name spellings are not merged", []string{"/a", "arn:aws:ssm:eu-west-1:1:parameter/a:2"}, [][]string{{"/a", "arn:aws:ssm:eu-west-1:1:parameter/a:2"}}},
		{"none", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := batches(tc.sels)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("batches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAnswers(t *testing.T) {
	p := func(name, sel string, version int64) ssmtypes.Parameter {
		out := ssmtypes.Parameter{Name: awssdk.String(name), Value: awssdk.String(fmt.Sprint(name, "@", version)), Version: version}
		if sel != "" {
			out.Selector = awssdk.String(sel)
		}
		return out
	}
	tests := []struct {
		name   string
		sels   []string
		params []ssmtypes.Parameter
		want   map[string]string // selector -> value; absent: unanswered
	}{
		{"AWS: Selector matched exactly", []string{"/a:2", "/b:live", "/c"}, []ssmtypes.Parameter{p("/a", ":2", 2), p("/b", ":live", 5), p("/c", "", 7)},
			map[string]string{"/a:2": "/a@2", "/b:live": "/b@5", "/c": "/c@7"}},
		{"without Selector: version checked, label and name taken by name", []string{"/a:2", "/b:live", "/c"}, []ssmtypes.Parameter{p("/a", "", 2), p("/b", "", 5), p("/c", "", 7)},
			map[string]string{"/a:2": "/a@2", "/b:live": "/b@5", "/c": "/c@7"}},
		{"without Selector, another version than asked is refused", []string{"/a:2"}, []ssmtypes.Parameter{p("/a", "", 3)}, map[string]string{}},
		{"a Selector that does not match is refused", []string{"/a:2"}, []ssmtypes.Parameter{p("/a", ":3", 3)}, map[string]string{}},
		{"two answers without Selector for one name: only a version picks", []string{"/a:live"}, []ssmtypes.Parameter{p("/a", "", 2), p("/a", "", 3)}, map[string]string{}},
		{"an answer for a name not asked is ignored", []string{"/a"}, []ssmtypes.Parameter{p("/z", "", 1)}, map[string]string{}},
		{"an answer without Name is ignored", []string{"/a"}, []ssmtypes.Parameter{{Value: awssdk.String("x")}}, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, byKey := map[string]string{}, answers(tc.sels, tc.params)
			for _, sel := range tc.sels {
				if p := byKey[sel]; p != nil {
					got[sel] = *p.Value
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("answers = %v, want %v", got, tc.want)
			}
		})
	}
}
