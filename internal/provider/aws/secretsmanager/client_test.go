package secretsmanager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/internal/provider"
)

// fakeSM is smAPI with function fields; it records the calls.
type fakeSM struct {
	mu      sync.Mutex
	get     func(*sm.GetSecretValueInput) (*sm.GetSecretValueOutput, error)
	batch   func(*sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error)
	list    func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error)
	gets    []sm.GetSecretValueInput
	batches [][]string
	lists   []sm.ListSecretsInput
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *sm.GetSecretValueInput, _ ...func(*sm.Options)) (*sm.GetSecretValueOutput, error) {
	f.mu.Lock()
	f.gets = append(f.gets, *in)
	f.mu.Unlock()
	return f.get(in)
}

func (f *fakeSM) BatchGetSecretValue(_ context.Context, in *sm.BatchGetSecretValueInput, _ ...func(*sm.Options)) (*sm.BatchGetSecretValueOutput, error) {
	f.mu.Lock()
	f.batches = append(f.batches, slices.Clone(in.SecretIdList))
	f.mu.Unlock()
	return f.batch(in)
}

func (f *fakeSM) ListSecrets(_ context.Context, in *sm.ListSecretsInput, _ ...func(*sm.Options)) (*sm.ListSecretsOutput, error) {
	f.mu.Lock()
	f.lists = append(f.lists, *in)
	f.mu.Unlock()
	return f.list(in)
}

func arnOf(name string) string {
	return "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + name + "-AbCdEf"
}

// batchFrom answers BatchGetSecretValue from a name -> value map; names starting with
// "missing" are reported in Errors.
func batchFrom(values map[string]string) func(*sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) {
	return func(in *sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) {
		out := &sm.BatchGetSecretValueOutput{}
		for _, id := range in.SecretIdList {
			name := id
			if strings.HasPrefix(id, "arn:") {
				name = strings.TrimSuffix(id[strings.Index(id, ":secret:")+8:], "-AbCdEf")
			}
			v, ok := values[name]
			if !ok {
				out.Errors = append(out.Errors, smtypes.APIErrorType{SecretId: awssdk.String(id), ErrorCode: awssdk.String("ResourceNotFoundException"), Message: awssdk.String("Secrets Manager can't find the specified secret.")})
				continue
			}
			out.SecretValues = append(out.SecretValues, smtypes.SecretValueEntry{
				Name: awssdk.String(name), ARN: awssdk.String(arnOf(name)), SecretString: awssdk.String(v), VersionId: awssdk.String("v-" + name),
			})
		}
		return out, nil
	}
}

func TestParseVersion(t *testing.T) {
	const id36 = "01234567-89ab-4cde-8f01-23456789abcd"
	tests := []struct {
		name      string
		version   string
		wantID    string
		wantStage string
		wantErr   string // substring of the message; "" = valid
	}{
		{"empty: AWSCURRENT", "", "", "", ""},
		{"stage AWSCURRENT", "AWSCURRENT", "", "AWSCURRENT", ""},
		{"stage AWSPREVIOUS", "AWSPREVIOUS", "", "AWSPREVIOUS", ""},
		{"custom stage", "blue", "", "blue", ""},
		{"uuid/ prefix", "uuid/" + id36, id36, "", ""},
		{"uuid/ prefix, any case", "UUID/" + id36, id36, "", ""},
		{"uuid/ with a 32-character token", "uuid/" + strings.Repeat("a", 32), strings.Repeat("a", 32), "", ""},
		{"bare UUID", "01234567-89AB-4cde-8f01-23456789abcd", "01234567-89AB-4cde-8f01-23456789abcd", "", ""},
		{"almost a UUID: a stage", "01234567-89ab-4cde-8f01-23456789abc", "", "01234567-89ab-4cde-8f01-23456789abc", ""},
		{"uuid/ alone", "uuid/", "", "", `"uuid/" without a version id`},
		{"uuid/ with a short id", "uuid/abc", "", "", "32 to 64 characters"},
		{"uuid/ with a long id", "uuid/" + strings.Repeat("a", 65), "", "", "32 to 64 characters"},
		{"uuid/ with a space", "uuid/" + strings.Repeat("a", 31) + " b", "", "", "printable ASCII"},
		{"stage with a slash", "blue/green", "", "", `no "/"`},
		{"stage with a control character", "blue\n", "", "", "printable ASCII"},
		{"stage with a space", "my stage", "", "", "printable ASCII"},
		{"stage too long", strings.Repeat("s", 257), "", "", "at most 256"},
		{"stage of 256", strings.Repeat("s", 256), "", strings.Repeat("s", 256), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVersion(tc.version)
			if tc.wantErr != "" {
				if !errors.Is(err, provider.ErrInvalid) || !strings.Contains(provider.SafeMessage(err), tc.wantErr) ||
					!strings.HasPrefix(provider.SafeMessage(err), "version ") || !strings.HasSuffix(provider.SafeMessage(err), "invalid request (InvalidVersion)") {
					t.Fatalf("err = %v (safe: %q), want ErrInvalid naming the version and %q", err, provider.SafeMessage(err), tc.wantErr)
				}
				return
			}
			if err != nil || got.ID != tc.wantID || got.Stage != tc.wantStage {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestGetSecret(t *testing.T) {
	f := &fakeSM{get: func(in *sm.GetSecretValueInput) (*sm.GetSecretValueOutput, error) {
		switch *in.SecretId {
		case "bin":
			return &sm.GetSecretValueOutput{SecretBinary: []byte{0, 0xff}, VersionId: awssdk.String("v2")}, nil
		case "str":
			return &sm.GetSecretValueOutput{SecretString: awssdk.String("hello"), VersionId: awssdk.String("v1")}, nil
		}
		return nil, &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "nope"}
	}}
	c := &Client{api: f}
	got, err := c.GetSecret(context.Background(), provider.Ref{Key: "str", Version: "AWSPREVIOUS"})
	if err != nil || string(got.Value) != "hello" || got.Version != "v1" {
		t.Fatalf("str: %q@%q %v", got.Value, got.Version, err)
	}
	if awssdk.ToString(f.gets[0].VersionStage) != "AWSPREVIOUS" || f.gets[0].VersionId != nil {
		t.Fatalf("request %+v", f.gets[0])
	}
	got, err = c.GetSecret(context.Background(), provider.Ref{Key: "bin"})
	if err != nil || string(got.Value) != "\x00\xff" || got.Version != "v2" {
		t.Fatalf("bin: %v %v", got, err)
	}
	_, err = c.GetSecret(context.Background(), provider.Ref{Key: "gone"})
	if !errors.Is(err, provider.ErrNotFound) || provider.SafeMessage(err) != `secretsmanager get "gone": not found (ResourceNotFoundException)` {
		t.Fatalf("gone: %v / %s", err, provider.SafeMessage(err))
	}
	if _, err := c.GetSecret(context.Background(), provider.Ref{}); !errors.Is(err, provider.ErrInvalid) {
		t.Fatalf("empty key: %v", err)
	}
}

func TestGetSecretsChunksAndAligns(t *testing.T) {
	values := map[string]string{}
	var refs []provider.Ref
	for i := range 45 {
		name := fmt.Sprint("s", i)
		values[name] = "val-" + name
		refs = append(refs, provider.Ref{Key: name})
	}
	refs = append(refs,
		provider.Ref{Key: "s3"},                                                       // duplicate: asked once
		provider.Ref{Key: "missing-1"},                                                // per-id error
		provider.Ref{Key: "s7", Version: "AWSPREVIOUS"},                               // versioned: GetSecretValue
		provider.Ref{Key: arnOf("s9")},                                                // by ARN
		provider.Ref{Key: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s10"}, // partial ARN
	)
	f := &fakeSM{
		batch: batchFrom(values),
		get: func(in *sm.GetSecretValueInput) (*sm.GetSecretValueOutput, error) {
			return &sm.GetSecretValueOutput{SecretString: awssdk.String("prev-" + *in.SecretId), VersionId: awssdk.String("old")}, nil
		},
	}
	c := &Client{api: f}
	res, err := c.GetSecrets(context.Background(), refs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(refs) {
		t.Fatalf("%d results for %d refs", len(res), len(refs))
	}
	var sizes []int
	for _, b := range f.batches {
		sizes = append(sizes, len(b))
	}
	// 45 names + missing-1 + two ARNs = 48 distinct ids: 20, 20, 8.
	if !slices.Equal(sizes, []int{20, 20, 8}) {
		t.Fatalf("batch sizes %v", sizes)
	}
	if len(f.gets) != 1 || awssdk.ToString(f.gets[0].VersionStage) != "AWSPREVIOUS" {
		t.Fatalf("gets %+v", f.gets)
	}
	for i := range 45 {
		if want := "val-" + refs[i].Key; string(res[i].Secret.Value) != want || res[i].Err != nil || res[i].Secret.Version != "v-"+refs[i].Key {
			t.Fatalf("res[%d] = %q %v", i, res[i].Secret.Value, res[i].Err)
		}
	}
	if string(res[45].Secret.Value) != "val-s3" {
		t.Fatalf("duplicate: %q", res[45].Secret.Value)
	}
	if !errors.Is(res[46].Err, provider.ErrNotFound) || strings.Contains(res[46].Err.Error(), "can't find") {
		t.Fatalf("missing: %v", res[46].Err)
	}
	if string(res[47].Secret.Value) != "prev-s7" || res[47].Secret.Version != "old" {
		t.Fatalf("versioned: %v", res[47])
	}
	if string(res[48].Secret.Value) != "val-s9" || string(res[49].Secret.Value) != "val-s10" {
		t.Fatalf("ARNs: %q %q (%v %v)", res[48].Secret.Value, res[49].Secret.Value, res[48].Err, res[49].Err)
	}
}

func TestGetSecretsCallErrors(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	t.Run("every call fails: the error is returned", func(t *testing.T) {
		c := &Client{api: &fakeSM{batch: func(*sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) { return nil, throttled }}}
		res, err := c.GetSecrets(context.Background(), []provider.Ref{{Key: "a"}, {Key: "b"}})
		if !errors.Is(err, provider.ErrThrottled) || res != nil {
			t.Fatalf("res %v err %v", res, err)
		}
	})
	t.Run("one chunk fails: its refs carry the error", func(t *testing.T) {
		calls := 0
		ok := batchFrom(map[string]string{"x0": "v"})
		c := &Client{api: &fakeSM{batch: func(in *sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) {
			calls++
			if calls == 2 {
				return nil, throttled
			}
			return ok(in)
		}}}
		var refs []provider.Ref
		for i := range 25 {
			refs = append(refs, provider.Ref{Key: fmt.Sprint("x", i)})
		}
		res, err := c.GetSecrets(context.Background(), refs)
		if err != nil {
			t.Fatal(err)
		}
		if string(res[0].Secret.Value) != "v" || !errors.Is(res[1].Err, provider.ErrNotFound) || !errors.Is(res[24].Err, provider.ErrThrottled) {
			t.Fatalf("res %v / %v / %v", res[0], res[1].Err, res[24].Err)
		}
	})
	t.Run("an id missing from the answer", func(t *testing.T) {
		c := &Client{api: &fakeSM{batch: func(*sm.BatchGetSecretValueInput) (*sm.BatchGetSecretValueOutput, error) {
			return &sm.BatchGetSecretValueOutput{}, nil
		}}}
		res, err := c.GetSecrets(context.Background(), []provider.Ref{{Key: "a"}})
		if err != nil || !errors.Is(res[0].Err, provider.ErrUnavailable) {
			t.Fatalf("res %v err %v", res, err)
		}
	})
}

func entry(name string, tags ...string) smtypes.SecretListEntry {
	e := smtypes.SecretListEntry{Name: awssdk.String(name), ARN: awssdk.String(arnOf(name))}
	for i := 0; i+1 < len(tags); i += 2 {
		e.Tags = append(e.Tags, smtypes.Tag{Key: awssdk.String(tags[i]), Value: awssdk.String(tags[i+1])})
	}
	return e
}

func TestFind(t *testing.T) {
	// The listing is a superset (as a loose server filter would return): Find must
	// re-check prefix, regexp and exact tags itself.
	listed := []smtypes.SecretListEntry{
		entry("prod/app/db-user", "team", "a"),
		entry("prod/app/db-pass", "team", "b"),
		entry("prod/app/sub/db-deep", "team", "a", "env", "x"),
		entry("prod/app/api", "team", "a"),
		entry("prod/apple/db-z", "team", "a"),
		entry("other/db-x", "team", "a"),
		entry("prod/app/db-gone", "team", "a"),
	}
	values := map[string]string{}
	for _, e := range listed {
		if n := awssdk.ToString(e.Name); n != "prod/app/db-gone" { // deleted after listing
			values[n] = "v-" + n
		}
	}
	for i := range 30 {
		n := fmt.Sprintf("prod/app/bulk-%02d", i)
		listed = append(listed, entry(n, "team", "a"))
		values[n] = "v-" + n
	}
	newFake := func() *fakeSM {
		return &fakeSM{
			batch: batchFrom(values),
			list: func(in *sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
				start := 0
				if in.NextToken != nil {
					_, _ = fmt.Sscan(*in.NextToken, &start) // the fake made the token
				}
				end := min(start+15, len(listed)) // pages smaller than asked, as AWS may do
				out := &sm.ListSecretsOutput{SecretList: listed[start:end]}
				if end < len(listed) {
					out.NextToken = awssdk.String(fmt.Sprint(end))
				}
				return out, nil
			},
		}
	}
	tests := []struct {
		name        string
		q           provider.FindQuery
		wantKeys    []string
		wantFilters string
	}{
		{
			name:        "regexp and tags",
			q:           provider.FindQuery{Path: "prod/app/", NameRegexp: "db-", Tags: map[string]string{"team": "a"}},
			wantKeys:    []string{"prod/app/db-user", "prod/app/sub/db-deep", "prod/apple/db-z"},
			wantFilters: "name=[prod/app] tag-key=[team] tag-value=[a]",
		},
		{
			name:        "trailing slash does not matter",
			q:           provider.FindQuery{Path: "prod/app", NameRegexp: "^prod/app/db-"},
			wantKeys:    []string{"prod/app/db-pass", "prod/app/db-user"},
			wantFilters: "name=[prod/app]",
		},
		{
			name:        "values the filter syntax refuses are checked client-side only",
			q:           provider.FindQuery{Path: "prod/app", NameRegexp: "deep", Tags: map[string]string{"env": "x", "team": "a*"}},
			wantFilters: "name=[prod/app] tag-key=[env] tag-value=[x] tag-key=[team]",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			got, err := (&Client{api: f}).Find(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k, v := range got {
				keys = append(keys, k)
				if string(v.Value) != "v-"+k || v.Version != "v-"+k || v.Key != k {
					t.Errorf("%s = %q@%q", k, v.Value, v.Version)
				}
			}
			slices.Sort(keys)
			want := slices.Clone(tc.wantKeys)
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Fatalf("keys %v, want %v", keys, want)
			}
			var fs []string
			for _, fl := range f.lists[0].Filters {
				fs = append(fs, fmt.Sprintf("%s=%v", fl.Key, fl.Values))
			}
			if strings.Join(fs, " ") != tc.wantFilters {
				t.Fatalf("filters %q, want %q", strings.Join(fs, " "), tc.wantFilters)
			}
			if awssdk.ToInt32(f.lists[0].MaxResults) != 100 || len(f.lists) != 3 {
				t.Fatalf("list calls %d, MaxResults %d", len(f.lists), awssdk.ToInt32(f.lists[0].MaxResults))
			}
		})
	}
	t.Run("values read in batches of 20 by ARN", func(t *testing.T) {
		f := newFake()
		got, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Path: "prod/app/bulk"})
		if err != nil || len(got) != 30 {
			t.Fatalf("%d found, %v", len(got), err)
		}
		if len(f.batches) != 2 || len(f.batches[0]) != 20 || len(f.batches[1]) != 10 || !strings.HasPrefix(f.batches[0][0], "arn:") {
			t.Fatalf("batches %v", f.batches)
		}
	})
	t.Run("bad regexp", func(t *testing.T) {
		_, err := (&Client{api: newFake()}).Find(context.Background(), provider.FindQuery{NameRegexp: "("})
		if !errors.Is(err, provider.ErrInvalid) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("list fails", func(t *testing.T) {
		f := newFake()
		f.list = func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
			return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"}
		}
		_, err := (&Client{api: f}).Find(context.Background(), provider.FindQuery{Path: "x"})
		if !errors.Is(err, provider.ErrAccessDenied) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestCheck(t *testing.T) {
	f := &fakeSM{list: func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error) { return &sm.ListSecretsOutput{}, nil }}
	if err := (&Client{api: f}).Check(context.Background()); err != nil || awssdk.ToInt32(f.lists[0].MaxResults) != 1 {
		t.Fatalf("err %v, calls %+v", err, f.lists)
	}
	f.list = func(*sm.ListSecretsInput) (*sm.ListSecretsOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "UnrecognizedClientException"}
	}
	if err := (&Client{api: f}).Check(context.Background()); !errors.Is(err, provider.ErrAuth) {
		t.Fatalf("err %v", err)
	}
}
