package parameterstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/awstest"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/providertest"
	"github.com/secretsync/secretsync/test/awsemu"
)

// emuClient is the provider's client (real SDK) against a fresh emulator holding
// /app/p00../app/p14, tagged team=a.
func emuClient(t *testing.T) (*awsemu.Server, provider.Client) {
	t.Helper()
	seed := &awsemu.Seed{}
	for i := range 15 {
		seed.Parameters = append(seed.Parameters, awsemu.SeedParameter{Name: fmt.Sprintf("/app/p%02d", i), Value: fmt.Sprint("v", i), Tags: map[string]string{"team": "a"}})
	}
	srv := awsemu.NewTestServer(t, awsemu.Options{Seed: seed})
	akid, secret := srv.StaticCredentials()
	client, err := parameterstore.NewWithOptions(awstest.FastOptions()).NewClient(context.Background(),
		awstest.Store(v1alpha1.AWSServiceParameterStore, srv.URL(), awstest.StaticAuth), awstest.StaticKube(akid, secret), "team-a")
	if err != nil {
		t.Fatal(err)
	}
	return srv, client
}

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
	_, err := c.GetSecret(bg, provider.Ref{Key: "/app/../other/db"})
	wantErr(t, err, provider.ErrInvalid, "NotCanonical")
	_, err = c.GetSecret(bg, provider.Ref{Key: "/app/p00", Version: "0"})
	wantErr(t, err, provider.ErrInvalid, "InvalidVersion")
	res, err := c.(provider.BatchGetter).GetSecrets(bg, []provider.Ref{{Key: "/app//p00"}, {Key: "/app/p01", Version: "ssm-label"}})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, res[0].Err, provider.ErrInvalid, "NotCanonical")
	wantErr(t, res[1].Err, provider.ErrInvalid, "InvalidVersion")
	_, err = c.Find(bg, provider.FindQuery{Path: "/app/%2e%2e"})
	wantErr(t, err, provider.ErrInvalid, "NotCanonical")
	if n := srv.TotalCalls(); n != 0 {
		t.Fatalf("%d requests reached the server: %v", n, srv.CallCounts())
	}
}

func TestSDKFindStopsEndlessListings(t *testing.T) {
	tests := []struct {
		name      string
		op        string
		tags      map[string]string
		kind      awsemu.FaultKind
		wantCode  string
		wantCalls int
	}{
		{"GetParametersByPath, repeated NextToken", "GetParametersByPath", nil, awsemu.FaultEndlessTokenRepeat, "RepeatedNextToken", 2},
		{"GetParametersByPath, fresh NextTokens", "GetParametersByPath", nil, awsemu.FaultEndlessTokenFresh, "TooManyPages", awsp.MaxPages},
		{"DescribeParameters, repeated NextToken", "DescribeParameters", map[string]string{"team": "a"}, awsemu.FaultEndlessTokenRepeat, "RepeatedNextToken", 2},
		{"DescribeParameters, fresh NextTokens", "DescribeParameters", map[string]string{"team": "a"}, awsemu.FaultEndlessTokenFresh, "TooManyPages", awsp.MaxPages},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := emuClient(t)
			if err := srv.InjectFault(awsemu.Fault{Op: tc.op, Kind: tc.kind}); err != nil {
				t.Fatal(err)
			}
			got, err := c.Find(context.Background(), provider.FindQuery{Path: "/app", Tags: tc.tags})
			if got != nil {
				t.Fatalf("partial result: %d keys", len(got))
			}
			wantErr(t, err, provider.ErrUnavailable, tc.wantCode)
			if n := srv.Calls(tc.op); n != tc.wantCalls {
				t.Fatalf("%s calls = %d, want %d", tc.op, n, tc.wantCalls)
			}
			if n := srv.Calls("GetParameters"); n != 0 {
				t.Fatalf("values read for an unfinished listing: %d calls", n)
			}
		})
	}
}

// TestSDKHugeResponse: a 64 MiB answer is an error after at most 2 MiB read, not an
// out-of-memory (retries: see the Secrets Manager test of the same name).
func TestSDKHugeResponse(t *testing.T) {
	srv, c := emuClient(t)
	bg := context.Background()
	tests := []struct {
		name string
		op   string
		call func() error
	}{
		{"GetParameter", "GetParameter", func() error { _, err := c.GetSecret(bg, provider.Ref{Key: "/app/p00"}); return err }},
		{"GetParameters", "GetParameters", func() error {
			_, err := c.(provider.BatchGetter).GetSecrets(bg, []provider.Ref{{Key: "/app/p00"}, {Key: "/app/p01"}})
			return err
		}},
		{"GetParametersByPath", "GetParametersByPath", func() error { _, err := c.Find(bg, provider.FindQuery{Path: "/app"}); return err }},
		{"DescribeParameters", "DescribeParameters", func() error {
			_, err := c.Find(bg, provider.FindQuery{Path: "/app", Tags: map[string]string{"team": "a"}})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.ClearFaults()
			srv.ResetCalls()
			if err := srv.InjectFault(awsemu.Fault{Op: tc.op, Kind: awsemu.FaultHugeResponse}); err != nil {
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
		{"GetSecret", "GetParameter", func() error { _, err := c.GetSecret(bg, provider.Ref{Key: "/app/p00"}); return err }},
		{"GetSecrets", "GetParameters", func() error {
			_, err := c.(provider.BatchGetter).GetSecrets(bg, []provider.Ref{{Key: "/app/p00"}})
			return err
		}},
		{"Find by path", "GetParametersByPath", func() error { _, err := c.Find(bg, provider.FindQuery{Path: "/app"}); return err }},
		{"Find by tags: describe", "DescribeParameters", func() error {
			_, err := c.Find(bg, provider.FindQuery{Path: "/app", Tags: map[string]string{"team": "a"}})
			return err
		}},
		{"Find by tags: values", "GetParameters", func() error {
			_, err := c.Find(bg, provider.FindQuery{Path: "/app", Tags: map[string]string{"team": "a"}})
			return err
		}},
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
	_, err := c.GetSecret(bg, provider.Ref{Key: "/app/nope"})
	wantErr(t, err, provider.ErrNotFound, "ParameterNotFound")
	res, err := c.(provider.BatchGetter).GetSecrets(bg, []provider.Ref{{Key: "/app/nope"}})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, res[0].Err, provider.ErrNotFound, "InvalidParameters")
}

// TestSDKDeadline: a backend that accepts and never answers fails the call with
// ErrUnavailable in about the WithTimeout duration.
func TestSDKDeadline(t *testing.T) {
	const timeout = 300 * time.Millisecond
	hole := providertest.NewBlackHole(t).URL()
	p := parameterstore.New(parameterstore.WithTimeout(timeout))
	calls := map[string]func(provider.Client) error{
		"GetSecret": func(c provider.Client) error {
			_, err := c.GetSecret(context.Background(), provider.Ref{Key: "/db"})
			return err
		},
		"Find": func(c provider.Client) error {
			_, err := c.Find(context.Background(), provider.FindQuery{Path: "/app"})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			c, err := p.NewClient(context.Background(), awstest.Store(v1alpha1.AWSServiceParameterStore, hole, awstest.StaticAuth), awstest.StaticKube("AKIAEXAMPLE", "secret"), "team-a")
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
