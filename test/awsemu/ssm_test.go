package awsemu_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/secretsync/secretsync/test/awsemu"
)

func put(t *testing.T, c *clients, name, value string, typ ssmtypes.ParameterType, overwrite bool, tags ...string) int64 {
	t.Helper()
	in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(overwrite)}
	for i := 0; i+1 < len(tags); i += 2 {
		in.Tags = append(in.Tags, ssmtypes.Tag{Key: aws.String(tags[i]), Value: aws.String(tags[i+1])})
	}
	return must[*ssm.PutParameterOutput](t)(c.ssm.PutParameter(ctx, in)).Version
}

func TestSSMPutAndGet(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	if v := put(t, c, "/app/db/password", "pw1", ssmtypes.ParameterTypeSecureString, false); v != 1 {
		t.Fatalf("version = %d", v)
	}
	if v := put(t, c, "/app/db/password", "pw2", "", true); v != 2 {
		t.Fatalf("overwrite version = %d", v)
	}
	put(t, c, "/app/hosts", "a,b,c", ssmtypes.ParameterTypeStringList, false)
	put(t, c, "plain", "top-level", ssmtypes.ParameterTypeString, false)
	must[*ssm.LabelParameterVersionOutput](t)(c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/app/db/password"), ParameterVersion: aws.Int64(1), Labels: []string{"old"}}))

	tests := []struct {
		name        string
		param       string
		decrypt     bool
		wantValue   string
		wantVersion int64
		wantSel     string
		wantCode    string
	}{
		{name: "latest decrypted", param: "/app/db/password", decrypt: true, wantValue: "pw2", wantVersion: 2},
		{name: "version selector", param: "/app/db/password:1", decrypt: true, wantValue: "pw1", wantVersion: 1, wantSel: ":1"},
		{name: "label selector", param: "/app/db/password:old", decrypt: true, wantValue: "pw1", wantVersion: 1, wantSel: ":old"},
		{name: "by ARN", param: "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/password", decrypt: true, wantValue: "pw2", wantVersion: 2},
		{name: "StringList as written", param: "/app/hosts", wantValue: "a,b,c", wantVersion: 1},
		{name: "name without slash", param: "plain", wantValue: "top-level", wantVersion: 1},
		{name: "missing", param: "/app/nope", wantCode: "ParameterNotFound"},
		{name: "missing version", param: "/app/db/password:9", wantCode: "ParameterVersionNotFound"},
		{name: "missing label", param: "/app/db/password:nolabel", wantCode: "ParameterNotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(tc.param), WithDecryption: aws.Bool(tc.decrypt)})
			if tc.wantCode != "" {
				wantCode(t, err, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := out.Parameter
			if aws.ToString(p.Value) != tc.wantValue || p.Version != tc.wantVersion || aws.ToString(p.Selector) != tc.wantSel {
				t.Fatalf("got %q v%d sel %q", aws.ToString(p.Value), p.Version, aws.ToString(p.Selector))
			}
			if strings.Contains(aws.ToString(p.Name), ":") || p.ARN == nil || p.LastModifiedDate == nil {
				t.Fatalf("metadata: %+v", p)
			}
		})
	}
	t.Run("SecureString without decryption is opaque", func(t *testing.T) {
		out := must[*ssm.GetParameterOutput](t)(c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/db/password")}))
		if v := aws.ToString(out.Parameter.Value); v == "pw2" || strings.Contains(v, "pw2") || v == "" {
			t.Fatalf("value = %q", v)
		}
		if out.Parameter.Type != ssmtypes.ParameterTypeSecureString {
			t.Fatalf("type = %s", out.Parameter.Type)
		}
	})
}

func TestSSMPutErrors(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	put(t, c, "/exists", "x", ssmtypes.ParameterTypeString, false)
	deep := strings.Repeat("/a", 16)
	tests := []struct {
		name string
		in   ssm.PutParameterInput
		want string
	}{
		{"exists without overwrite", ssm.PutParameterInput{Name: aws.String("/exists"), Value: aws.String("y"), Type: "String"}, "ParameterAlreadyExists"},
		{"overwrite with tags", ssm.PutParameterInput{Name: aws.String("/exists"), Value: aws.String("y"), Overwrite: aws.Bool(true), Tags: []ssmtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}, "ValidationException"},
		{"aws prefix", ssm.PutParameterInput{Name: aws.String("/aws/x"), Value: aws.String("y"), Type: "String"}, "ValidationException"},
		{"relative path", ssm.PutParameterInput{Name: aws.String("a/b"), Value: aws.String("y"), Type: "String"}, "ValidationException"},
		{"bad characters", ssm.PutParameterInput{Name: aws.String("/a b"), Value: aws.String("y"), Type: "String"}, "ValidationException"},
		{"too deep", ssm.PutParameterInput{Name: aws.String(deep), Value: aws.String("y"), Type: "String"}, "HierarchyLevelLimitExceededException"},
		{"no type on create", ssm.PutParameterInput{Name: aws.String("/new"), Value: aws.String("y")}, "ValidationException"},
		{"empty value", ssm.PutParameterInput{Name: aws.String("/new"), Value: aws.String(""), Type: "String"}, "ValidationException"},
		{"standard too large", ssm.PutParameterInput{Name: aws.String("/big"), Value: aws.String(strings.Repeat("x", 4097)), Type: "String"}, "ValidationException"},
		{"pattern mismatch", ssm.PutParameterInput{Name: aws.String("/pat"), Value: aws.String("abc"), Type: "String", AllowedPattern: aws.String("^[0-9]+$")}, "ParameterPatternMismatchException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ssm.PutParameter(ctx, &tc.in)
			wantCode(t, err, tc.want)
		})
	}
	t.Run("advanced tier takes 8 KiB", func(t *testing.T) {
		out := must[*ssm.PutParameterOutput](t)(c.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/big"), Value: aws.String(strings.Repeat("x", 5000)), Type: "String", Tier: ssmtypes.ParameterTierAdvanced}))
		if out.Tier != ssmtypes.ParameterTierAdvanced {
			t.Fatalf("tier = %s", out.Tier)
		}
	})
}

func TestSSMVersionLimit(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	for i := 1; i <= 100; i++ {
		put(t, c, "/v", fmt.Sprint(i), ssmtypes.ParameterTypeString, i > 1)
	}
	must[*ssm.LabelParameterVersionOutput](t)(c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/v"), ParameterVersion: aws.Int64(1), Labels: []string{"keep"}}))
	_, err := c.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/v"), Value: aws.String("101"), Overwrite: aws.Bool(true)})
	wantCode(t, err, "ParameterMaxVersionLimitExceeded")
	// Moving the label away lets the oldest version go.
	must[*ssm.LabelParameterVersionOutput](t)(c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/v"), ParameterVersion: aws.Int64(2), Labels: []string{"keep"}}))
	if v := put(t, c, "/v", "101", "", true); v != 101 {
		t.Fatalf("version = %d", v)
	}
	_, err = c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/v:1")})
	wantCode(t, err, "ParameterVersionNotFound")
}

func TestSSMGetParameters(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	put(t, c, "/p/a", "A1", ssmtypes.ParameterTypeString, false)
	put(t, c, "/p/a", "A2", "", true)
	put(t, c, "/p/b", "B", ssmtypes.ParameterTypeSecureString, false)
	must[*ssm.LabelParameterVersionOutput](t)(c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/p/a"), ParameterVersion: aws.Int64(1), Labels: []string{"first"}}))

	out := must[*ssm.GetParametersOutput](t)(c.ssm.GetParameters(ctx, &ssm.GetParametersInput{
		Names: []string{"/p/a", "/p/a:1", "/p/a:first", "/p/b", "/p/missing", "/p/a:7"}, WithDecryption: aws.Bool(true),
	}))
	got := map[string]string{}
	for _, p := range out.Parameters {
		got[aws.ToString(p.Name)+aws.ToString(p.Selector)] = aws.ToString(p.Value)
	}
	want := map[string]string{"/p/a": "A2", "/p/a:1": "A1", "/p/a:first": "A1", "/p/b": "B"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("parameters = %v, want %v", got, want)
	}
	if !slices.Equal(out.InvalidParameters, []string{"/p/missing", "/p/a:7"}) {
		t.Fatalf("InvalidParameters = %v", out.InvalidParameters)
	}
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = fmt.Sprint("/p/", i)
	}
	_, err := c.ssm.GetParameters(ctx, &ssm.GetParametersInput{Names: eleven})
	wantCode(t, err, "ValidationException")
}

func seedTree(t *testing.T, c *clients) {
	t.Helper()
	put(t, c, "/app/db/user", "u", ssmtypes.ParameterTypeString, false, "team", "a")
	put(t, c, "/app/db/pass", "p", ssmtypes.ParameterTypeSecureString, false, "team", "b")
	put(t, c, "/app/api", "k", ssmtypes.ParameterTypeSecureString, false, "team", "a")
	put(t, c, "/app/deep/x/y", "d", ssmtypes.ParameterTypeString, false, "team", "a", "env", "prod")
	put(t, c, "/application/z", "z", ssmtypes.ParameterTypeString, false)
	put(t, c, "/other/q", "q", ssmtypes.ParameterTypeString, false, "team", "a")
}

func TestSSMGetParametersByPath(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	seedTree(t, c)
	must[*ssm.LabelParameterVersionOutput](t)(c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/app/api"), Labels: []string{"live"}}))
	put(t, c, "/app/api", "k2", "", true)

	byPath := func(in ssm.GetParametersByPathInput) ([]string, error) {
		var out []string
		p := ssm.NewGetParametersByPathPaginator(c.ssm, &in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			if len(page.Parameters) > 10 {
				return nil, fmt.Errorf("page of %d", len(page.Parameters))
			}
			for _, prm := range page.Parameters {
				out = append(out, aws.ToString(prm.Name)+"="+aws.ToString(prm.Value))
			}
		}
		return out, nil
	}
	f := func(key, opt string, values ...string) ssmtypes.ParameterStringFilter {
		return ssmtypes.ParameterStringFilter{Key: aws.String(key), Option: aws.String(opt), Values: values}
	}
	tests := []struct {
		name     string
		in       ssm.GetParametersByPathInput
		want     []string
		wantCode string
	}{
		{name: "one level", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), WithDecryption: aws.Bool(true)}, want: []string{"/app/api=k2"}},
		{name: "recursive", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), Recursive: aws.Bool(true), WithDecryption: aws.Bool(true)}, want: []string{"/app/api=k2", "/app/db/pass=p", "/app/db/user=u", "/app/deep/x/y=d"}},
		{name: "trailing slash", in: ssm.GetParametersByPathInput{Path: aws.String("/app/db/"), WithDecryption: aws.Bool(true)}, want: []string{"/app/db/pass=p", "/app/db/user=u"}},
		{name: "paging by 1", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), Recursive: aws.Bool(true), MaxResults: aws.Int32(1), WithDecryption: aws.Bool(true)}, want: []string{"/app/api=k2", "/app/db/pass=p", "/app/db/user=u", "/app/deep/x/y=d"}},
		{name: "type filter", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), Recursive: aws.Bool(true), ParameterFilters: []ssmtypes.ParameterStringFilter{f("Type", "Equals", "String")}}, want: []string{"/app/db/user=u", "/app/deep/x/y=d"}},
		{name: "label filter reads the labelled version", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), Recursive: aws.Bool(true), WithDecryption: aws.Bool(true), ParameterFilters: []ssmtypes.ParameterStringFilter{f("Label", "Equals", "live")}}, want: []string{"/app/api=k"}},
		{name: "tag filter is refused", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), ParameterFilters: []ssmtypes.ParameterStringFilter{f("tag:team", "Equals", "a")}}, wantCode: "InvalidFilterKey"},
		{name: "label BeginsWith is refused", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), ParameterFilters: []ssmtypes.ParameterStringFilter{f("Label", "BeginsWith", "l")}}, wantCode: "InvalidFilterOption"},
		{name: "max results above 10", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), MaxResults: aws.Int32(11)}, wantCode: "ValidationException"},
		{name: "path without slash", in: ssm.GetParametersByPathInput{Path: aws.String("app")}, wantCode: "ValidationException"},
		{name: "bad token", in: ssm.GetParametersByPathInput{Path: aws.String("/app"), NextToken: aws.String("x")}, wantCode: "InvalidNextToken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := byPath(tc.in)
			if tc.wantCode != "" {
				wantCode(t, err, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("SecureString encrypted without decryption", func(t *testing.T) {
		got, err := byPath(ssm.GetParametersByPathInput{Path: aws.String("/app/db")})
		if err != nil {
			t.Fatal(err)
		}
		if got[0] == "/app/db/pass=p" || got[1] != "/app/db/user=u" {
			t.Fatalf("got %v", got)
		}
	})
}

func TestSSMDescribeParameters(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	seedTree(t, c)
	f := func(key, opt string, values ...string) ssmtypes.ParameterStringFilter {
		return ssmtypes.ParameterStringFilter{Key: aws.String(key), Option: aws.String(opt), Values: values}
	}
	tests := []struct {
		name     string
		filters  []ssmtypes.ParameterStringFilter
		want     []string
		wantCode string
	}{
		{name: "tag", filters: []ssmtypes.ParameterStringFilter{f("tag:team", "Equals", "a")}, want: []string{"/app/api", "/app/deep/x/y", "/app/db/user", "/other/q"}},
		{name: "tag key only", filters: []ssmtypes.ParameterStringFilter{{Key: aws.String("tag:env")}}, want: []string{"/app/deep/x/y"}},
		{name: "path recursive and tag", filters: []ssmtypes.ParameterStringFilter{f("Path", "Recursive", "/app"), f("tag:team", "Equals", "a")}, want: []string{"/app/api", "/app/deep/x/y", "/app/db/user"}},
		{name: "path one level", filters: []ssmtypes.ParameterStringFilter{f("Path", "OneLevel", "/app/db")}, want: []string{"/app/db/pass", "/app/db/user"}},
		{name: "name begins with", filters: []ssmtypes.ParameterStringFilter{f("Name", "BeginsWith", "/app")}, want: []string{"/app/api", "/app/db/pass", "/app/db/user", "/app/deep/x/y", "/application/z"}},
		{name: "name contains", filters: []ssmtypes.ParameterStringFilter{f("Name", "Contains", "deep")}, want: []string{"/app/deep/x/y"}},
		{name: "type", filters: []ssmtypes.ParameterStringFilter{f("Type", "Equals", "SecureString")}, want: []string{"/app/api", "/app/db/pass"}},
		{name: "label is refused", filters: []ssmtypes.ParameterStringFilter{f("Label", "Equals", "x")}, wantCode: "InvalidFilterKey"},
		{name: "bad option", filters: []ssmtypes.ParameterStringFilter{f("Path", "Equals", "/app")}, wantCode: "InvalidFilterOption"},
		{name: "bad type value", filters: []ssmtypes.ParameterStringFilter{f("Type", "Equals", "Blob")}, wantCode: "InvalidFilterValue"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			p := ssm.NewDescribeParametersPaginator(c.ssm, &ssm.DescribeParametersInput{ParameterFilters: tc.filters, MaxResults: aws.Int32(2)})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if tc.wantCode != "" {
					wantCode(t, err, tc.wantCode)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range page.Parameters {
					got = append(got, aws.ToString(m.Name))
				}
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
	one := must[*ssm.DescribeParametersOutput](t)(c.ssm.DescribeParameters(ctx, &ssm.DescribeParametersInput{MaxResults: aws.Int32(1)}))
	if len(one.Parameters) != 1 || one.NextToken == nil || one.Parameters[0].Version != 1 || one.Parameters[0].LastModifiedUser == nil {
		t.Fatalf("MaxResults 1: %+v", one)
	}
	_, err := c.ssm.DescribeParameters(ctx, &ssm.DescribeParametersInput{MaxResults: aws.Int32(51)})
	wantCode(t, err, "ValidationException")
}

func TestSSMLabelsHistoryTagsDelete(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	for i := 1; i <= 3; i++ {
		put(t, c, "/h", fmt.Sprint("v", i), ssmtypes.ParameterTypeSecureString, i > 1)
	}
	lbl := must[*ssm.LabelParameterVersionOutput](t)(c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/h"), ParameterVersion: aws.Int64(1), Labels: []string{"blue", "1bad", "awsx", "ok.label"}}))
	if lbl.ParameterVersion != 1 || !slices.Equal(lbl.InvalidLabels, []string{"1bad", "awsx"}) {
		t.Fatalf("label: %+v", lbl)
	}
	// Labels move: blue now on the latest version.
	lbl = must[*ssm.LabelParameterVersionOutput](t)(c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/h"), Labels: []string{"blue"}}))
	if lbl.ParameterVersion != 3 {
		t.Fatalf("label latest: %+v", lbl)
	}
	_, err := c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/h"), ParameterVersion: aws.Int64(9), Labels: []string{"x"}})
	wantCode(t, err, "ParameterVersionNotFound")
	_, err = c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/nope"), Labels: []string{"x"}})
	wantCode(t, err, "ParameterNotFound")
	many := make([]string, 10)
	for i := range many {
		many[i] = fmt.Sprint("l", i)
	}
	_, err = c.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/h"), ParameterVersion: aws.Int64(1), Labels: many})
	wantCode(t, err, "ParameterVersionLabelLimitExceeded")

	var hist []ssmtypes.ParameterHistory
	p := ssm.NewGetParameterHistoryPaginator(c.ssm, &ssm.GetParameterHistoryInput{Name: aws.String("/h"), WithDecryption: aws.Bool(true), MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		page := must[*ssm.GetParameterHistoryOutput](t)(p.NextPage(ctx))
		hist = append(hist, page.Parameters...)
	}
	if len(hist) != 3 || aws.ToString(hist[0].Value) != "v1" || !slices.Equal(hist[0].Labels, []string{"ok.label"}) || !slices.Equal(hist[2].Labels, []string{"blue"}) {
		t.Fatalf("history: %+v", hist)
	}

	must[*ssm.AddTagsToResourceOutput](t)(c.ssm.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{ResourceType: "Parameter", ResourceId: aws.String("/h"), Tags: []ssmtypes.Tag{{Key: aws.String("b"), Value: aws.String("2")}, {Key: aws.String("a"), Value: aws.String("1")}}}))
	must[*ssm.RemoveTagsFromResourceOutput](t)(c.ssm.RemoveTagsFromResource(ctx, &ssm.RemoveTagsFromResourceInput{ResourceType: "Parameter", ResourceId: aws.String("/h"), TagKeys: []string{"b"}}))
	tags := must[*ssm.ListTagsForResourceOutput](t)(c.ssm.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: "Parameter", ResourceId: aws.String("/h")}))
	if len(tags.TagList) != 1 || aws.ToString(tags.TagList[0].Key) != "a" {
		t.Fatalf("tags: %+v", tags.TagList)
	}
	_, err = c.ssm.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: "Parameter", ResourceId: aws.String("/nope")})
	wantCode(t, err, "InvalidResourceId")
	_, err = c.ssm.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: "Document", ResourceId: aws.String("/h")})
	wantCode(t, err, "InvalidResourceType")

	must[*ssm.DeleteParameterOutput](t)(c.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/h")}))
	_, err = c.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/h")})
	wantCode(t, err, "ParameterNotFound")
	put(t, c, "/d1", "x", ssmtypes.ParameterTypeString, false)
	del := must[*ssm.DeleteParametersOutput](t)(c.ssm.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: []string{"/d1", "/d2"}}))
	if !slices.Equal(del.DeletedParameters, []string{"/d1"}) || !slices.Equal(del.InvalidParameters, []string{"/d2"}) {
		t.Fatalf("DeleteParameters: %+v", del)
	}
}
