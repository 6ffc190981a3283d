package secretsmanager_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/awstest"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/provider/providertest"
	"github.com/secretsync/secretsync/test/awsemu"
)

// emuClient is the provider's client (real SDK) against a fresh emulator holding
// app/s00..app/s04.
func emuClient(t *testing.T) (*awsemu.Server, provider.Client) {
	t.Helper()
	seed := &awsemu.Seed{}
	for i := range 5 {
		seed.Secrets = append(seed.Secrets, awsemu.SeedSecret{Name: fmt.Sprintf("app/s%02d", i), Value: aws.String(fmt.Sprint("v", i))})
	}
	srv := awsemu.NewTestServer(t, awsemu.Options{Seed: seed})
	akid, secret := srv.StaticCredentials()
	client, err := secretsmanager.NewWithOptions(awstest.FastOptions()).NewClient(context.Background(),
		awstest.Store(v1alpha1.AWSServiceSecretsManager, srv.URL(), awstest.StaticAuth), awstest.StaticKube(akid, secret), "team-a")
	if err != nil {
		t.Fatal(err)
	}
	return srv, client
}

// wantErr checks err's sentinel and that SafeMessage ends with "(code)".
func wantErr(t *testing.T, err error, kind error, code string) {
	t.Helper()
	if !errors.Is(provider.Classify(err), kind) || !strings.HasSuffix(provider.SafeMessage(err), "("+code+")") {
		t.Fatalf("err = %v (safe: %q), want %v (%s)", err, provider.SafeMessage(err), kind, code)
	}
}

func TestSDKRefusesNonCanonicalKeysWithoutARequest(t *testing.T) {
	srv, c := emuClient(t)
	bg := context.Background()
	srv.ResetCalls()
	_, err := c.GetSecret(bg, provider.Ref{Key: "app/../other/db"})
	wantErr(t, err, provider.ErrInvalid, "NotCanonical")
	_, err = c.GetSecret(bg, provider.Ref{Key: "app/s00", Version: "uuid/"})
	wantErr(t, err, provider.ErrInvalid, "InvalidVersion")
	res, err := c.(provider.BatchGetter).GetSecrets(bg, []provider.Ref{{Key: "app//s00"}, {Key: `app\s01`}})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, res[0].Err, provider.ErrInvalid, "NotCanonical")
	wantErr(t, res[1].Err, provider.ErrInvalid, "NotCanonical")
	_, err = c.Find(bg, provider.FindQuery{Path: "app/.."})
	wantErr(t, err, provider.ErrInvalid, "NotCanonical")
	if n := srv.TotalCalls(); n != 0 {
		t.Fatalf("%d requests reached the server: %v", n, srv.CallCounts())
	}
}

func TestSDKFindStopsEndlessListings(t *testing.T) {
	tests := []struct {
		name      string
		kind      awsemu.FaultKind
		wantCode  string
		wantCalls int
	}{
		{"repeated NextToken", awsemu.FaultEndlessTokenRepeat, "RepeatedNextToken", 2},
		{"fresh NextToken on every page", awsemu.FaultEndlessTokenFresh, "TooManyPages", awsp.MaxPages},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := emuClient(t)
			if err := srv.InjectFault(awsemu.Fault{Op: "ListSecrets", Kind: tc.kind}); err != nil {
				t.Fatal(err)
			}
			got, err := c.Find(context.Background(), provider.FindQuery{Path: "app/"})
			if got != nil {
				t.Fatalf("partial result: %d keys", len(got))
			}
			wantErr(t, err, provider.ErrUnavailable, tc.wantCode)
			if n := srv.Calls("ListSecrets"); n != tc.wantCalls {
				t.Fatalf("ListSecrets calls = %d, want %d", n, tc.wantCalls)
			}
			if n := srv.Calls("BatchGetSecretValue"); n != 0 {
				t.Fatalf("values read for an unfinished listing: %d calls", n)
			}
		})
	}
}

// TestSDKHugeResponse: a 64 MiB answer is an error after at most 2 MiB read, not an
// out-of-memory. (The limit's error is not retried — see TestResponseSizeLimit in
// package aws — but over a real connection net/http may fail an attempt with a
// connection error when the answer races the end of the request, which the SDK
// retries: up to MaxAttempts requests.)
func TestSDKHugeResponse(t *testing.T) {
	srv, c := emuClient(t)
	bg := context.Background()
	tests := []struct {
		name string
		op   string
		call func() error
	}{
		{"GetSecretValue", "GetSecretValue", func() error { _, err := c.GetSecret(bg, provider.Ref{Key: "app/s00"}); return err }},
		{"BatchGetSecretValue", "BatchGetSecretValue", func() error {
			_, err := c.(provider.BatchGetter).GetSecrets(bg, []provider.Ref{{Key: "app/s00"}, {Key: "app/s01"}})
			return err
		}},
		{"ListSecrets", "ListSecrets", func() error { _, err := c.Find(bg, provider.FindQuery{Path: "app"}); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.ClearFaults()
			srv.ResetCalls()
			if err := srv.InjectFault(awsemu.Fault{Op: tc.op, Kind: awsemu.FaultHugeResponse, Size: awsemu.HugeResponseSize}); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := tc.call()
			runtime.ReadMemStats(&after)
			wantErr(t, err, provider.ErrUnavailable, "response-too-large")
			if n := srv.Calls(tc.op); n < 1 || n > awstest.FastOptions().MaxAttempts {
				t.Fatalf("%s calls = %d", tc.op, n)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
				t.Fatalf("allocated %d MiB for a 64 MiB answer", grew>>20)
			}
		})
	}
}

// TestSDKAmbiguousAnswersAreNotNotFound: an empty 200 and a 404 without an AWS error
// code are ErrUnavailable for every call, and a find fails instead of finding nothing.
func TestSDKAmbiguousAnswersAreNotNotFound(t *testing.T) {
	srv, c := emuClient(t)
	bg := context.Background()
	calls := []struct {
		name string
		op   string
		call func() error
	}{
		{"GetSecret", "GetSecretValue", func() error { _, err := c.GetSecret(bg, provider.Ref{Key: "app/s00"}); return err }},
		{"GetSecret by version", "GetSecretValue", func() error {
			_, err := c.GetSecret(bg, provider.Ref{Key: "app/s00", Version: "AWSCURRENT"})
			return err
		}},
		{"GetSecrets", "BatchGetSecretValue", func() error {
			_, err := c.(provider.BatchGetter).GetSecrets(bg, []provider.Ref{{Key: "app/s00"}})
			return err
		}},
		{"Find: listing", "ListSecrets", func() error { _, err := c.Find(bg, provider.FindQuery{Path: "app"}); return err }},
		{"Find: values", "BatchGetSecretValue", func() error { _, err := c.Find(bg, provider.FindQuery{Path: "app"}); return err }},
	}
	faults := []struct {
		kind     awsemu.FaultKind
		wantCode string
	}{
		{awsemu.FaultEmpty200, "EmptyResponse"},
		{awsemu.Fault404NoCode, "HTTP 404"},
	}
	for _, f := range faults {
		for _, tc := range calls {
			t.Run(string(f.kind)+"/"+tc.name, func(t *testing.T) {
				srv.ClearFaults()
				if err := srv.InjectFault(awsemu.Fault{Op: tc.op, Kind: f.kind}); err != nil {
					t.Fatal(err)
				}
				defer srv.ClearFaults()
				wantErr(t, tc.call(), provider.ErrUnavailable, f.wantCode)
			})
		}
	}
	// The real "does not exist" still is.
	_, err := c.GetSecret(bg, provider.Ref{Key: "app/nope"})
	wantErr(t, err, provider.ErrNotFound, "ResourceNotFoundException")
}

// TestSDKDeadline: a backend that accepts and never answers fails the call with
// ErrUnavailable in about the WithTimeout duration, retries and STS included.
func TestSDKDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	hole := providertest.NewBlackHole(t).URL()
	p := secretsmanager.New(secretsmanager.WithTimeout(timeout))
	stores := []struct {
		name   string
		mutate func(*v1alpha1.AWSProvider)
	}{
		{"static keys", awstest.StaticAuth},
		{"assumed role (STS hangs)", func(a *v1alpha1.AWSProvider) {
			awstest.StaticAuth(a)
			a.Role = "arn:aws:iam::123456789012:role/reader"
		}},
	}
	calls := map[string]func(provider.Client) error{
		"GetSecret": func(c provider.Client) error {
			_, err := c.GetSecret(context.Background(), provider.Ref{Key: "db"})
			return err
		},
		"Find": func(c provider.Client) error {
			_, err := c.Find(context.Background(), provider.FindQuery{Path: "app"})
			return err
		},
		"Check": func(c provider.Client) error { return c.Check(context.Background()) },
	}
	for _, st := range stores {
		for name, call := range calls {
			t.Run(st.name+"/"+name, func(t *testing.T) {
				// A client per call: calls of one client share an STS fetch in flight.
				c, err := p.NewClient(context.Background(), awstest.Store(v1alpha1.AWSServiceSecretsManager, hole, st.mutate), awstest.StaticKube("AKIAEXAMPLE", "secret"), "team-a")
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				err = call(c)
				if d := time.Since(start); d < timeout || d > timeout+1500*time.Millisecond {
					t.Fatalf("took %v, want about %v", d, timeout)
				}
				if !errors.Is(err, provider.ErrUnavailable) {
					t.Fatalf("err = %v", err)
				}
			})
		}
	}
}
