package awsemu_test

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secretsync/secretsync/test/awsemu"
)

func TestSecretsManagerCreateAndGet(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	created := must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, &sm.CreateSecretInput{
		Name: aws.String("prod/db"), SecretString: aws.String(`{"password":"pw"}`),
		Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
	}))
	if !strings.HasPrefix(aws.ToString(created.ARN), "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-") || len(aws.ToString(created.ARN)) != len("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-")+6 {
		t.Errorf("ARN = %s", aws.ToString(created.ARN))
	}
	if created.VersionId == nil {
		t.Fatal("no VersionId")
	}
	bin := []byte{0, 1, 0xff, '\n'}
	must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("prod/cert"), SecretBinary: bin}))
	must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("empty")}))

	tests := []struct {
		name     string
		in       sm.GetSecretValueInput
		wantStr  string
		wantBin  []byte
		wantCode string
	}{
		{name: "by name", in: sm.GetSecretValueInput{SecretId: aws.String("prod/db")}, wantStr: `{"password":"pw"}`},
		{name: "by full ARN", in: sm.GetSecretValueInput{SecretId: created.ARN}, wantStr: `{"password":"pw"}`},
		{name: "by partial ARN", in: sm.GetSecretValueInput{SecretId: aws.String("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db")}, wantStr: `{"password":"pw"}`},
		{name: "by version id", in: sm.GetSecretValueInput{SecretId: aws.String("prod/db"), VersionId: created.VersionId}, wantStr: `{"password":"pw"}`},
		{name: "binary", in: sm.GetSecretValueInput{SecretId: aws.String("prod/cert")}, wantBin: bin},
		{name: "missing", in: sm.GetSecretValueInput{SecretId: aws.String("nope")}, wantCode: "ResourceNotFoundException"},
		{name: "wrong ARN suffix", in: sm.GetSecretValueInput{SecretId: aws.String(aws.ToString(created.ARN)[:len(aws.ToString(created.ARN))-6] + "zzzzzz")}, wantCode: "ResourceNotFoundException"},
		{name: "missing stage", in: sm.GetSecretValueInput{SecretId: aws.String("prod/db"), VersionStage: aws.String("AWSPREVIOUS")}, wantCode: "ResourceNotFoundException"},
		{name: "missing version", in: sm.GetSecretValueInput{SecretId: aws.String("prod/db"), VersionId: aws.String("00000000-0000-4000-8000-000000000000")}, wantCode: "ResourceNotFoundException"},
		{name: "secret without value", in: sm.GetSecretValueInput{SecretId: aws.String("empty")}, wantCode: "ResourceNotFoundException"},
		{name: "short version id", in: sm.GetSecretValueInput{SecretId: aws.String("prod/db"), VersionId: aws.String("v1")}, wantCode: "ValidationException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.sm.GetSecretValue(ctx, &tc.in)
			if tc.wantCode != "" {
				wantCode(t, err, tc.wantCode)
				if status(err) != 400 {
					t.Errorf("HTTP status = %d, want 400", status(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantBin != nil {
				if !bytes.Equal(out.SecretBinary, tc.wantBin) || out.SecretString != nil {
					t.Fatalf("binary = %v / %v", out.SecretBinary, out.SecretString)
				}
			} else if aws.ToString(out.SecretString) != tc.wantStr {
				t.Fatalf("SecretString = %q", aws.ToString(out.SecretString))
			}
			if !slices.Equal(out.VersionStages, []string{"AWSCURRENT"}) || out.CreatedDate == nil || out.VersionId == nil {
				t.Errorf("stages %v, created %v, version %v", out.VersionStages, out.CreatedDate, out.VersionId)
			}
		})
	}
}

func TestSecretsManagerCreateErrors(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String("dup"), SecretString: aws.String("x")}))
	tests := []struct {
		name string
		in   sm.CreateSecretInput
		want string
	}{
		{"exists", sm.CreateSecretInput{Name: aws.String("dup"), SecretString: aws.String("y")}, "ResourceExistsException"},
		{"both values", sm.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("y"), SecretBinary: []byte("z")}, "InvalidParameterException"},
		{"bad name", sm.CreateSecretInput{Name: aws.String("bad name*"), SecretString: aws.String("y")}, "ValidationException"},
		{"short token", sm.CreateSecretInput{Name: aws.String("tok"), SecretString: aws.String("y"), ClientRequestToken: aws.String("short")}, "ValidationException"},
		{"too large", sm.CreateSecretInput{Name: aws.String("big"), SecretString: aws.String(strings.Repeat("x", 65537))}, "ValidationException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.sm.CreateSecret(ctx, &tc.in)
			wantCode(t, err, tc.want)
		})
	}
}

func stagesOf(t *testing.T, c *clients, id string) map[string][]string {
	t.Helper()
	d := must[*sm.DescribeSecretOutput](t)(c.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(id)}))
	return d.VersionIdsToStages
}

func TestSecretsManagerVersionStages(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	id := aws.String("rot")
	v1 := aws.ToString(must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: id, SecretString: aws.String("one")})).VersionId)
	v2 := aws.ToString(must[*sm.PutSecretValueOutput](t)(c.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: id, SecretString: aws.String("two")})).VersionId)

	if got := stagesOf(t, c, "rot"); !slices.Equal(got[v2], []string{"AWSCURRENT"}) || !slices.Equal(got[v1], []string{"AWSPREVIOUS"}) {
		t.Fatalf("after second put: %v", got)
	}
	prev := must[*sm.GetSecretValueOutput](t)(c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id, VersionStage: aws.String("AWSPREVIOUS")}))
	if aws.ToString(prev.SecretString) != "one" || aws.ToString(prev.VersionId) != v1 {
		t.Fatalf("AWSPREVIOUS = %q@%s", aws.ToString(prev.SecretString), aws.ToString(prev.VersionId))
	}

	// A third version deprecates v1 (no label) but it stays readable by id.
	v3 := aws.ToString(must[*sm.PutSecretValueOutput](t)(c.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: id, SecretBinary: []byte("three")})).VersionId)
	got := stagesOf(t, c, "rot")
	if _, ok := got[v1]; ok || !slices.Equal(got[v2], []string{"AWSPREVIOUS"}) || !slices.Equal(got[v3], []string{"AWSCURRENT"}) {
		t.Fatalf("after third put: %v", got)
	}
	old := must[*sm.GetSecretValueOutput](t)(c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id, VersionId: &v1}))
	if aws.ToString(old.SecretString) != "one" || len(old.VersionStages) != 0 {
		t.Fatalf("deprecated v1 = %q %v", aws.ToString(old.SecretString), old.VersionStages)
	}

	// A pending version (rotation) leaves AWSCURRENT alone.
	pending := "11111111-2222-4333-8444-555555555555"
	must[*sm.PutSecretValueOutput](t)(c.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: id, SecretString: aws.String("four"), ClientRequestToken: &pending, VersionStages: []string{"AWSPENDING"}}))
	cur := must[*sm.GetSecretValueOutput](t)(c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id}))
	if aws.ToString(cur.VersionId) != v3 {
		t.Fatalf("current moved to %s", aws.ToString(cur.VersionId))
	}
	// Same token and value: idempotent; same token, other value: refused.
	must[*sm.PutSecretValueOutput](t)(c.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: id, SecretString: aws.String("four"), ClientRequestToken: &pending, VersionStages: []string{"AWSPENDING"}}))
	_, err := c.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: id, SecretString: aws.String("other"), ClientRequestToken: &pending})
	wantCode(t, err, "ResourceExistsException")

	// Promote pending: RemoveFromVersionId is required while AWSCURRENT is attached elsewhere.
	_, err = c.sm.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: &pending})
	wantCode(t, err, "InvalidParameterException")
	must[*sm.UpdateSecretVersionStageOutput](t)(c.sm.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: &pending, RemoveFromVersionId: &v3}))
	got = stagesOf(t, c, "rot")
	if !slices.Equal(got[pending], []string{"AWSCURRENT", "AWSPENDING"}) || !slices.Equal(got[v3], []string{"AWSPREVIOUS"}) {
		t.Fatalf("after promotion: %v", got)
	}
	// Custom label moved and removed.
	must[*sm.UpdateSecretVersionStageOutput](t)(c.sm.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("blue"), MoveToVersionId: &v1}))
	blue := must[*sm.GetSecretValueOutput](t)(c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id, VersionStage: aws.String("blue")}))
	if aws.ToString(blue.SecretString) != "one" {
		t.Fatalf("blue = %q", aws.ToString(blue.SecretString))
	}
	_, err = c.sm.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("blue"), RemoveFromVersionId: &v2})
	wantCode(t, err, "InvalidParameterException")
	must[*sm.UpdateSecretVersionStageOutput](t)(c.sm.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("blue"), RemoveFromVersionId: &v1}))
	_, err = c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id, VersionStage: aws.String("blue")})
	wantCode(t, err, "ResourceNotFoundException")

	vers := must[*sm.ListSecretVersionIdsOutput](t)(c.sm.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: id, IncludeDeprecated: aws.Bool(true)}))
	if len(vers.Versions) != 4 {
		t.Fatalf("versions = %d, want 4", len(vers.Versions))
	}
}

func TestSecretsManagerVersionPruning(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	id := aws.String("many")
	first := aws.ToString(must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: id, SecretString: aws.String("0")})).VersionId)
	for i := 1; i <= 101; i++ {
		must[*sm.PutSecretValueOutput](t)(c.sm.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: id, SecretString: aws.String(fmt.Sprint(i))}))
	}
	_, err := c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id, VersionId: &first})
	wantCode(t, err, "ResourceNotFoundException")
}

func seedSecrets(t *testing.T, c *clients) {
	t.Helper()
	for _, s := range []struct {
		name string
		tags map[string]string
	}{
		{"app/db-user", map[string]string{"team": "a", "env": "prod"}},
		{"app/db-pass", map[string]string{"team": "b"}},
		{"app/sub/db-deep", map[string]string{"team": "a"}},
		{"application", nil},
		{"other/db-x", map[string]string{"team": "a"}},
	} {
		in := &sm.CreateSecretInput{Name: aws.String(s.name), SecretString: aws.String("v-" + s.name), Description: aws.String("Secret " + s.name)}
		for k, v := range s.tags {
			in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, in))
	}
}

func names(entries []smtypes.SecretListEntry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, aws.ToString(e.Name))
	}
	sort.Strings(out)
	return out
}

func TestSecretsManagerListSecrets(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	seedSecrets(t, c)
	f := func(key smtypes.FilterNameStringType, values ...string) smtypes.Filter {
		return smtypes.Filter{Key: key, Values: values}
	}
	tests := []struct {
		name     string
		filters  []smtypes.Filter
		want     []string
		wantCode string
	}{
		{name: "all", want: []string{"app/db-pass", "app/db-user", "app/sub/db-deep", "application", "other/db-x"}},
		{name: "name prefix", filters: []smtypes.Filter{f("name", "app/")}, want: []string{"app/db-pass", "app/db-user", "app/sub/db-deep"}},
		{name: "name prefix without slash", filters: []smtypes.Filter{f("name", "app")}, want: []string{"app/db-pass", "app/db-user", "app/sub/db-deep", "application"}},
		{name: "name is case-sensitive", filters: []smtypes.Filter{f("name", "APP")}},
		{name: "name values are ORed", filters: []smtypes.Filter{f("name", "app/sub", "other")}, want: []string{"app/sub/db-deep", "other/db-x"}},
		{name: "negation", filters: []smtypes.Filter{f("name", "app/", "!app/sub")}, want: []string{"app/db-pass", "app/db-user"}},
		{name: "tag key", filters: []smtypes.Filter{f("tag-key", "env")}, want: []string{"app/db-user"}},
		{name: "tag value AND name", filters: []smtypes.Filter{f("name", "app/"), f("tag-value", "a")}, want: []string{"app/db-user", "app/sub/db-deep"}},
		{name: "description is case-insensitive", filters: []smtypes.Filter{f("description", "secret app/db")}, want: []string{"app/db-pass", "app/db-user"}},
		{name: "all words", filters: []smtypes.Filter{f("all", "deep")}, want: []string{"app/sub/db-deep"}},
		{name: "bad key", filters: []smtypes.Filter{f("colour", "x")}, wantCode: "ValidationException"},
		{name: "bad value", filters: []smtypes.Filter{f("name", "a*b")}, wantCode: "ValidationException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.sm.ListSecrets(ctx, &sm.ListSecretsInput{Filters: tc.filters})
			if tc.wantCode != "" {
				wantCode(t, err, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(out.SecretList); !slices.Equal(got, tc.want) {
				t.Fatalf("names = %v, want %v", got, tc.want)
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		var got []smtypes.SecretListEntry
		pages := 0
		p := sm.NewListSecretsPaginator(c.sm, &sm.ListSecretsInput{MaxResults: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.SecretList) > 2 {
				t.Fatalf("page of %d", len(out.SecretList))
			}
			pages++
			got = append(got, out.SecretList...)
		}
		if pages != 3 || len(got) != 5 {
			t.Fatalf("pages %d, secrets %d", pages, len(got))
		}
		// Default order is creation order.
		if aws.ToString(got[0].Name) != "app/db-user" || aws.ToString(got[4].Name) != "other/db-x" {
			t.Fatalf("order: %v", names(got))
		}
		if got[0].SecretVersionsToStages == nil || len(got[0].Tags) != 2 {
			t.Fatalf("entry: %+v", got[0])
		}
	})
	t.Run("sort by name desc", func(t *testing.T) {
		out := must[*sm.ListSecretsOutput](t)(c.sm.ListSecrets(ctx, &sm.ListSecretsInput{SortBy: "name", SortOrder: "desc", MaxResults: aws.Int32(1)}))
		if aws.ToString(out.SecretList[0].Name) != "other/db-x" {
			t.Fatalf("first = %s", aws.ToString(out.SecretList[0].Name))
		}
		out = must[*sm.ListSecretsOutput](t)(c.sm.ListSecrets(ctx, &sm.ListSecretsInput{SortBy: "name", SortOrder: "desc", MaxResults: aws.Int32(1), NextToken: out.NextToken}))
		if aws.ToString(out.SecretList[0].Name) != "application" {
			t.Fatalf("second = %s", aws.ToString(out.SecretList[0].Name))
		}
	})
	t.Run("limits and tokens", func(t *testing.T) {
		_, err := c.sm.ListSecrets(ctx, &sm.ListSecretsInput{MaxResults: aws.Int32(101)})
		wantCode(t, err, "ValidationException")
		_, err = c.sm.ListSecrets(ctx, &sm.ListSecretsInput{NextToken: aws.String("garbage")})
		wantCode(t, err, "InvalidNextTokenException")
	})
}

func TestSecretsManagerBatchGet(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	seedSecrets(t, c)
	desc := must[*sm.DescribeSecretOutput](t)(c.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("app/db-pass")}))

	t.Run("by id with per-id errors", func(t *testing.T) {
		out := must[*sm.BatchGetSecretValueOutput](t)(c.sm.BatchGetSecretValue(ctx, &sm.BatchGetSecretValueInput{
			SecretIdList: []string{"app/db-user", "missing", aws.ToString(desc.ARN)},
		}))
		if len(out.SecretValues) != 2 || aws.ToString(out.SecretValues[0].SecretString) != "v-app/db-user" || aws.ToString(out.SecretValues[1].Name) != "app/db-pass" {
			t.Fatalf("values: %+v", out.SecretValues)
		}
		if len(out.Errors) != 1 || aws.ToString(out.Errors[0].SecretId) != "missing" || aws.ToString(out.Errors[0].ErrorCode) != "ResourceNotFoundException" {
			t.Fatalf("errors: %+v", out.Errors)
		}
	})
	t.Run("filters with paging", func(t *testing.T) {
		var got []string
		p := sm.NewBatchGetSecretValuePaginator(c.sm, &sm.BatchGetSecretValueInput{Filters: []smtypes.Filter{{Key: "name", Values: []string{"app/"}}}, MaxResults: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range out.SecretValues {
				got = append(got, aws.ToString(v.SecretString))
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, []string{"v-app/db-pass", "v-app/db-user", "v-app/sub/db-deep"}) {
			t.Fatalf("got %v", got)
		}
	})
	tooMany := make([]string, 21)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("s", i)
	}
	for _, tc := range []struct {
		name string
		in   sm.BatchGetSecretValueInput
		want string
	}{
		{"more than 20 ids", sm.BatchGetSecretValueInput{SecretIdList: tooMany}, "ValidationException"},
		{"ids and filters", sm.BatchGetSecretValueInput{SecretIdList: []string{"a"}, Filters: []smtypes.Filter{{Key: "name", Values: []string{"a"}}}}, "InvalidParameterException"},
		{"neither", sm.BatchGetSecretValueInput{}, "InvalidParameterException"},
		{"max results with ids", sm.BatchGetSecretValueInput{SecretIdList: []string{"a"}, MaxResults: aws.Int32(5)}, "InvalidParameterException"},
		{"max results above 20", sm.BatchGetSecretValueInput{Filters: []smtypes.Filter{{Key: "name", Values: []string{"a"}}}, MaxResults: aws.Int32(21)}, "ValidationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.sm.BatchGetSecretValue(ctx, &tc.in)
			wantCode(t, err, tc.want)
		})
	}
}

func TestSecretsManagerTagsDescribeDelete(t *testing.T) {
	c := newClients(t, awsemu.Options{})
	id := aws.String("tagged")
	must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: id, SecretString: aws.String("x"), Description: aws.String("d")}))
	must[*sm.TagResourceOutput](t)(c.sm.TagResource(ctx, &sm.TagResourceInput{SecretId: id, Tags: []smtypes.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}))
	must[*sm.UntagResourceOutput](t)(c.sm.UntagResource(ctx, &sm.UntagResourceInput{SecretId: id, TagKeys: []string{"a"}}))
	d := must[*sm.DescribeSecretOutput](t)(c.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: id}))
	if len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "b" || aws.ToString(d.Description) != "d" || d.CreatedDate == nil || d.DeletedDate != nil {
		t.Fatalf("describe: %+v", d)
	}
	_, err := c.sm.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String("nope")})
	wantCode(t, err, "ResourceNotFoundException")

	_, err = c.sm.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: id, ForceDeleteWithoutRecovery: aws.Bool(true), RecoveryWindowInDays: aws.Int64(7)})
	wantCode(t, err, "InvalidParameterException")
	_, err = c.sm.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: id, RecoveryWindowInDays: aws.Int64(3)})
	wantCode(t, err, "InvalidParameterException")

	del := must[*sm.DeleteSecretOutput](t)(c.sm.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: id, RecoveryWindowInDays: aws.Int64(7)}))
	if del.DeletionDate == nil {
		t.Fatal("no DeletionDate")
	}
	_, err = c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id})
	wantCode(t, err, "InvalidRequestException")
	_, err = c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: id, SecretString: aws.String("y")})
	wantCode(t, err, "InvalidRequestException")
	if l := must[*sm.ListSecretsOutput](t)(c.sm.ListSecrets(ctx, &sm.ListSecretsInput{})); len(l.SecretList) != 0 {
		t.Fatalf("scheduled secret listed: %v", names(l.SecretList))
	}
	if l := must[*sm.ListSecretsOutput](t)(c.sm.ListSecrets(ctx, &sm.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true)})); len(l.SecretList) != 1 || l.SecretList[0].DeletedDate == nil {
		t.Fatalf("IncludePlannedDeletion: %+v", l.SecretList)
	}
	must[*sm.RestoreSecretOutput](t)(c.sm.RestoreSecret(ctx, &sm.RestoreSecretInput{SecretId: id}))
	must[*sm.GetSecretValueOutput](t)(c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id}))

	must[*sm.DeleteSecretOutput](t)(c.sm.DeleteSecret(ctx, &sm.DeleteSecretInput{SecretId: id, ForceDeleteWithoutRecovery: aws.Bool(true)}))
	_, err = c.sm.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: id})
	wantCode(t, err, "ResourceNotFoundException")
	must[*sm.CreateSecretOutput](t)(c.sm.CreateSecret(ctx, &sm.CreateSecretInput{Name: id, SecretString: aws.String("again")}))
}
