package secretsmanager

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/awstest"
)

// FuzzParseVersion: the selector parser never panics; what it accepts is one
// well-formed VersionId or VersionStage that parses back to itself, and what it
// refuses is an ErrInvalid naming the field, with the value quoted (no raw control
// characters in the message).
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"", "AWSCURRENT", "uuid/", "uuid/01234567-89ab-4cde-8f01-23456789abcd", "UUID/x",
		"01234567-89ab-4cde-8f01-23456789abcd", "a/b", "st\x00age", "ünïcode", strings.Repeat("s", 257)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := parseVersion(v)
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
		switch {
		case v == "":
			if got != (version{}) {
				t.Fatalf("empty: %+v", got)
			}
		case got.ID != "" && got.Stage != "", got.ID == "" && got.Stage == "":
			t.Fatalf("%q: %+v: want exactly one of ID and Stage", v, got)
		case got.ID != "":
			if len(got.ID) < 32 || len(got.ID) > 64 || !printable(got.ID) {
				t.Fatalf("%q: VersionId %q", v, got.ID)
			}
			if again, err := parseVersion("uuid/" + got.ID); err != nil || again != got {
				t.Fatalf("%q: uuid/%s parses as %+v, %v", v, got.ID, again, err)
			}
		default:
			if len(got.Stage) > 256 || !printable(got.Stage) || strings.Contains(got.Stage, "/") || got.Stage != v {
				t.Fatalf("%q: VersionStage %q", v, got.Stage)
			}
		}
	})
}

// canary stands for a secret value in a response; it must never reach an error
// message.
const canary = "CANARY-7f3a9c"

// fuzzStatuses are the statuses a fuzzed response may carry.
var fuzzStatuses = []int{200, 201, 204, 400, 403, 404, 413, 429, 500, 502, 503}

// fuzzClient is the provider's client with every request answered by the returned
// Canned (no network, no retries).
func fuzzClient(f *testing.F) (*awstest.Canned, provider.Client) {
	canned := &awstest.Canned{}
	opts := awsp.Options{HTTPClient: awstest.HTTPClient(f, canned), MaxAttempts: 1, Timeout: 5 * time.Second}
	c, err := NewWithOptions(opts).NewClient(context.Background(),
		awstest.Store(v1alpha1.AWSServiceSecretsManager, "http://backend.invalid", awstest.StaticAuth), awstest.StaticKube("AKIAEXAMPLE", "secret"), "team-a")
	if err != nil {
		f.Fatal(err)
	}
	return canned, c
}

// checkErr fails when err renders the canary, or claims "not found" for an answer
// that cannot say so.
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

// FuzzDecodeGetSecretValue feeds arbitrary answers to GetSecret through the real SDK
// deserializer and the provider's mapping: no panic, no canary in an error, "not
// found" only from a 4xx, and an empty 2xx is never a value.
func FuzzDecodeGetSecretValue(f *testing.F) {
	for _, s := range []struct {
		status uint8
		body   string
	}{
		{0, `{"ARN":"arn:aws:secretsmanager:eu-west-1:1:secret:app/db-AbCdEf","Name":"app/db","SecretString":"` + canary + `","VersionId":"01234567-89ab-4cde-8f01-23456789abcd"}`},
		{0, `{"SecretBinary":"` + canary + `"}`},
		{0, ""}, {0, "{}"}, {0, "<html>" + canary + "</html>"}, {0, `{"SecretString":"` + canary},
		{3, `{"__type":"ResourceNotFoundException","message":"` + canary + `"}`},
		{3, `{"__type":"` + canary + `","message":"x"}`},
		{3, `{"__type":"InvalidRequestException","message":"marked for deletion ` + canary + `"}`},
		{5, "<html>404 " + canary + "</html>"}, {5, ""}, {8, `{"__type":"InternalServiceError"}`}, {10, canary},
	} {
		f.Add(s.status, []byte(s.body))
	}
	canned, c := fuzzClient(f)
	f.Fuzz(func(t *testing.T, st uint8, body []byte) {
		status := fuzzStatuses[int(st)%len(fuzzStatuses)]
		canned.Set(status, body)
		sec, err := c.GetSecret(context.Background(), provider.Ref{Key: "app/db"})
		if n := canned.Requests(); n != 1 {
			t.Fatalf("%d requests", n)
		}
		checkErr(t, err, status >= 400 && status < 500)
		if err == nil && !ok2xx(status) {
			t.Fatalf("status %d read as a value", status)
		}
		if err == nil && len(sec.Value) == 0 && !strings.Contains(string(body), "SecretString") {
			t.Fatalf("an answer without a value read as one: %q", body)
		}
		if ok2xx(status) && len(body) == 0 && !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("empty %d: %v", status, err)
		}
	})
}

// FuzzDecodeBatchGetSecretValue is FuzzDecodeGetSecretValue for GetSecrets: "not
// found" only per id, from a 2xx answer's Errors.
func FuzzDecodeBatchGetSecretValue(f *testing.F) {
	for _, s := range []struct {
		status uint8
		body   string
	}{
		{0, `{"SecretValues":[{"Name":"app/a","ARN":"arn:x","SecretString":"` + canary + `"},{"Name":"app/b"}],"Errors":[]}`},
		{0, `{"Errors":[{"SecretId":"app/a","ErrorCode":"ResourceNotFoundException","Message":"` + canary + `"},{"SecretId":"app/b","ErrorCode":"` + canary + `"}]}`},
		{0, `{"Errors":[{"SecretId":"app/a","Message":"` + canary + `"}],"NextToken":"` + canary + `"}`},
		{0, ""}, {0, "{}"}, {0, `{"SecretValues":[{"Name":"app/a","SecretBinary":"AAE="}]}`}, {0, "[" + canary + "]"},
		{3, `{"__type":"ResourceNotFoundException","message":"` + canary + `"}`}, {5, canary},
	} {
		f.Add(s.status, []byte(s.body))
	}
	canned, c := fuzzClient(f)
	bg := c.(provider.BatchGetter)
	f.Fuzz(func(t *testing.T, st uint8, body []byte) {
		status := fuzzStatuses[int(st)%len(fuzzStatuses)]
		canned.Set(status, body)
		res, err := bg.GetSecrets(context.Background(), []provider.Ref{{Key: "app/a"}, {Key: "app/b"}})
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
