package awsemu_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/secretsync/secretsync/test/awsemu"
)

var ctx = context.Background()

type clients struct {
	srv *awsemu.Server
	sm  *secretsmanager.Client
	ssm *ssm.Client
	sts *sts.Client
}

// cfgFor builds an SDK config aimed at srv with creds and no retries, so every
// error reaches the test as the server sent it.
func cfgFor(srv *awsemu.Server, creds aws.CredentialsProvider) aws.Config {
	return aws.Config{
		Region:       "eu-west-1",
		Credentials:  creds,
		BaseEndpoint: aws.String(srv.URL()),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:   awshttp.NewBuildableClient(),
	}
}

func newClients(t *testing.T, opts awsemu.Options) *clients {
	t.Helper()
	srv := awsemu.NewTestServer(t, opts)
	akid, secret := srv.StaticCredentials()
	cfg := cfgFor(srv, credentials.NewStaticCredentialsProvider(akid, secret, ""))
	return &clients{srv: srv, sm: secretsmanager.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg)}
}

// code returns the AWS error code of err ("" for nil).
func code(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "non-API error: " + err.Error()
}

func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error code = %q, want %q (err: %v)", got, want, err)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

// rawPost sends a hand-made request (no SDK) to srv; the caller closes the body.
func rawPost(t *testing.T, srv *awsemu.Server, target, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL()+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
