package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/secretsync/secretsync/internal/metrics"
)

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// byStatus names every request "op" and classifies answers by status.
type byStatus struct{}

func (byStatus) Operation(*http.Request) string { return "op" }
func (byStatus) Result(resp *http.Response) (string, *http.Response) {
	return StatusResult(resp.StatusCode), resp
}

func TestCountRequests(t *testing.T) {
	answer := func(status int) rtFunc {
		return func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("{}"))}, nil
		}
	}
	fail := func(err error) rtFunc {
		return func(*http.Request) (*http.Response, error) { return nil, err }
	}
	tests := []struct {
		name string
		rt   rtFunc
		want string
	}{
		{"200", answer(200), ResultOK},
		{"204", answer(204), ResultOK},
		{"404", answer(404), ResultNotFound},
		{"401", answer(401), ResultDenied},
		{"403", answer(403), ResultDenied},
		{"429", answer(429), ResultThrottled},
		{"400", answer(400), ResultError},
		{"503", answer(503), ResultUnavailable},
		{"deadline", fail(fmt.Errorf("send: %w", context.DeadlineExceeded)), ResultTimeout},
		{"cancelled by us", fail(context.Canceled), ResultError},
		{"connection refused", fail(syscall.ECONNREFUSED), ResultUnavailable},
		{"Content-Length over the limit", fail(tooLarge()), ResultUnavailable},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prov := fmt.Sprint("test-", i) // a fresh series per case
			c := metrics.ProviderRequests.WithLabelValues(prov, "op", tc.want)
			rt := CountRequests(tc.rt, prov, byStatus{})
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://backend.invalid/x", http.NoBody)
			resp, err := rt.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			if n := testutil.ToFloat64(c); n != 1 {
				t.Fatalf("%s/op/%s = %v, want 1", prov, tc.want, n)
			}
		})
	}
}

func TestResultOf(t *testing.T) {
	tests := []struct {
		kind error
		want string
	}{
		{nil, ResultOK}, {ErrNotFound, ResultNotFound}, {ErrAccessDenied, ResultDenied}, {ErrAuth, ResultDenied},
		{ErrThrottled, ResultThrottled}, {ErrUnavailable, ResultUnavailable}, {ErrInvalid, ResultError},
		{errors.New("unclassified"), ResultError},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.kind), func(t *testing.T) {
			if got := ResultOf(tc.kind); got != tc.want {
				t.Fatalf("ResultOf(%v) = %q, want %q", tc.kind, got, tc.want)
			}
		})
	}
}
