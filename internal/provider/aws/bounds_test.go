package aws_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/middleware"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/awstest"
	"github.com/secretsync/secretsync/internal/provider/providertest"
)

func TestPages(t *testing.T) {
	tok := func(s string) *string { return &s }
	tests := []struct {
		name     string
		max      int
		tokens   []*string // NextToken of each page read, in order
		wantMore []bool
		wantCode string // the error on the last page; "" = none
	}{
		{"one page", 0, []*string{nil}, []bool{false}, ""},
		{"empty token ends", 0, []*string{tok("")}, []bool{false}, ""},
		{"three pages", 0, []*string{tok("a"), tok("b"), nil}, []bool{true, true, false}, ""},
		{"repeated token", 0, []*string{tok("a"), tok("b"), tok("a")}, []bool{true, true, false}, "RepeatedNextToken"},
		{"same token twice in a row", 0, []*string{tok("a"), tok("a")}, []bool{true, false}, "RepeatedNextToken"},
		{"page cap", 3, []*string{tok("a"), tok("b"), tok("c")}, []bool{true, true, false}, "TooManyPages"},
		{"last allowed page may end the listing", 3, []*string{tok("a"), tok("b"), nil}, []bool{true, true, false}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := awsp.Pages{Max: tc.max}
			for i, tk := range tc.tokens {
				more, err := p.Next(tk)
				last := i == len(tc.tokens)-1
				if more != tc.wantMore[i] {
					t.Fatalf("page %d: more = %v", i, more)
				}
				switch {
				case last && tc.wantCode != "":
					if !errors.Is(err, provider.ErrUnavailable) || provider.SafeMessage(err) != "backend unavailable ("+tc.wantCode+")" {
						t.Fatalf("page %d: err %v (%s)", i, err, provider.SafeMessage(err))
					}
				case err != nil:
					t.Fatalf("page %d: %v", i, err)
				}
			}
		})
	}
	t.Run("default cap is MaxPages", func(t *testing.T) {
		var p awsp.Pages
		for i := 1; ; i++ {
			more, err := p.Next(aws.String(fmt.Sprint(i)))
			if err != nil {
				if i != awsp.MaxPages || provider.SafeMessage(err) != "backend unavailable (TooManyPages)" {
					t.Fatalf("stopped at page %d: %v", i, err)
				}
				return
			}
			if !more {
				t.Fatal("ended without error")
			}
		}
	})
}

// smClient is a Secrets Manager SDK client built by NewConfig for a store aimed at
// endpoint, with static keys.
func smClient(t *testing.T, endpoint string, opts awsp.Options) *sm.Client {
	t.Helper()
	cfg, err := awsp.NewConfig(ctx, awstest.Store(v1alpha1.AWSServiceSecretsManager, endpoint, awstest.StaticAuth), awstest.StaticKube("AKIAEXAMPLE", "secret"), "team-a", opts)
	if err != nil {
		t.Fatal(err)
	}
	return sm.NewFromConfig(cfg)
}

// hugeRT answers every request with a body of size 'A's after a JSON prefix,
// generated as it is read (never allocated), counting the requests.
type hugeRT struct {
	size     int64
	declare  bool // send Content-Length
	requests atomic.Int64
}

func (h *hugeRT) RoundTrip(r *http.Request) (*http.Response, error) {
	h.requests.Add(1)
	body := io.MultiReader(strings.NewReader(`{"SecretString":"`), io.LimitReader(repeatA{}, h.size))
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}}, Body: io.NopCloser(body), ContentLength: -1, Request: r}
	if h.declare {
		resp.ContentLength = h.size + 17
	}
	return resp, nil
}

type repeatA struct{}

func (repeatA) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

// TestResponseSizeLimit: an answer over provider.MaxResponseBytes is ErrUnavailable
// and is not asked for again, whether it announces its length or streams. (No
// network here: over a real connection, net/http may fail the first attempt with a
// connection error instead when the answer races the request's end, and the SDK
// retries that.)
func TestResponseSizeLimit(t *testing.T) {
	tests := []struct {
		name    string
		size    int64
		declare bool
	}{
		{"declared 3 MiB", 3 << 20, true},
		{"streamed 64 MiB", 64 << 20, false},
		{"streamed 1 GiB", 1 << 30, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := &hugeRT{size: tc.size, declare: tc.declare}
			opts := awstest.FastOptions()
			opts.HTTPClient = awstest.HTTPClient(t, rt)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := smClient(t, "http://backend.invalid", opts).GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("big")})
			runtime.ReadMemStats(&after)
			raw := err
			err = awsp.MapError(err)
			if !errors.Is(err, provider.ErrUnavailable) || !errors.Is(err, provider.ErrResponseTooLarge) || provider.SafeMessage(err) != "backend unavailable (response-too-large)" {
				t.Fatalf("err = %v (%s)", raw, provider.SafeMessage(err))
			}
			if n := rt.requests.Load(); n != 1 {
				t.Fatalf("%d requests: an oversized answer was asked for again", n)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 32<<20 {
				t.Fatalf("allocated %d MiB", grew>>20)
			}
		})
	}
}

// TestEmptySuccessRefused: a 2xx with no body is not an answer, whether or not it
// says Content-Length: 0. "{}" is (every field absent is the caller's to judge).
func TestEmptySuccessRefused(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		chunked  bool
		wantCode string // "" = no error
	}{
		{"Content-Length 0", "", false, "EmptyResponse"},
		{"chunked, nothing", "", true, "EmptyResponse"},
		{"empty object", "{}", false, ""},
		{"empty object, chunked", "{}", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				if tc.chunked {
					w.(http.Flusher).Flush()
				}
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			_, err := smClient(t, srv.URL, awstest.FastOptions()).ListSecrets(ctx, &sm.ListSecretsInput{})
			err = awsp.MapError(err)
			if tc.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, provider.ErrUnavailable) || provider.SafeMessage(err) != "backend unavailable ("+tc.wantCode+")" {
				t.Fatalf("err = %v (%s)", err, provider.SafeMessage(err))
			}
		})
	}
}

// TestDeadline: against a backend that accepts and never answers, a call (its
// retries included) and the STS calls made for credentials end with ErrUnavailable
// in about the timeout.
func TestDeadline(t *testing.T) {
	isolateEnv(t)
	const timeout = 300 * time.Millisecond
	opts := awstest.FastOptions()
	awsp.WithTimeout(timeout)(&opts)
	if opts.Timeout != timeout {
		t.Fatalf("WithTimeout set %v", opts.Timeout)
	}
	hole := providertest.NewBlackHole(t).URL()
	within := func(t *testing.T, start time.Time) {
		t.Helper()
		if d := time.Since(start); d < timeout || d > timeout+1500*time.Millisecond {
			t.Fatalf("took %v, want about %v", d, timeout)
		}
	}
	t.Run("service call", func(t *testing.T) {
		start := time.Now()
		_, err := smClient(t, hole, opts).ListSecrets(ctx, &sm.ListSecretsInput{})
		within(t, start)
		if err = awsp.MapError(err); !errors.Is(err, provider.ErrUnavailable) || provider.SafeMessage(err) != "backend unavailable (Timeout)" {
			t.Fatalf("err = %v (%s)", err, provider.SafeMessage(err))
		}
	})
	stores := map[string]func(*v1alpha1.AWSProvider){
		"AssumeRole": func(p *v1alpha1.AWSProvider) { awstest.StaticAuth(p); p.Role = role },
		"AssumeRoleWithWebIdentity": func(p *v1alpha1.AWSProvider) {
			p.Role = role
			p.Auth = &v1alpha1.AWSAuth{JWT: &v1alpha1.AWSJWTAuth{ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "reader"}}}
		},
	}
	for name, mutate := range stores {
		t.Run("STS "+name+" on its own", func(t *testing.T) {
			kube := awstest.StaticKube("AKIAEXAMPLE", "secret")
			kube.Token = func(string, string, []string) (string, error) { return "token", nil }
			cfg, err := awsp.NewConfig(ctx, awstest.Store(v1alpha1.AWSServiceSecretsManager, hole, mutate), kube, "team-a", opts)
			if err != nil {
				t.Fatal(err)
			}
			// The credentials cache calls STS detached from the caller's context: only
			// the client's own deadline can end a hung STS call.
			start := time.Now()
			_, err = cfg.Credentials.Retrieve(context.Background())
			within(t, start)
			if err == nil || !errors.Is(awsp.MapError(err), provider.ErrUnavailable) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	t.Run("default is 30s", func(t *testing.T) {
		cfg, err := awsp.NewConfig(ctx, awstest.Store(v1alpha1.AWSServiceSecretsManager, hole, awstest.StaticAuth), awstest.StaticKube("AKIAEXAMPLE", "secret"), "team-a", awsp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var left time.Duration
		stop := errors.New("stop before sending")
		_, err = sm.NewFromConfig(cfg, func(o *sm.Options) {
			o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
				return s.Initialize.Add(middleware.InitializeMiddlewareFunc("probe", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if dl, ok := ctx.Deadline(); ok {
						left = time.Until(dl)
					}
					return middleware.InitializeOutput{}, middleware.Metadata{}, stop
				}), middleware.After)
			})
		}).ListSecrets(ctx, &sm.ListSecretsInput{})
		if !errors.Is(err, stop) || left < 29*time.Second || left > awsp.DefaultTimeout {
			t.Fatalf("deadline in %v (err %v), want %v", left, err, awsp.DefaultTimeout)
		}
	})
}
