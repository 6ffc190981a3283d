package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/secretsync/secretsync/internal/metrics"
)

// MaxResponseBytes bounds what one backend response may carry: a Secret holds at
// most 1 MiB, so twice that leaves room for JSON/base64 overhead and metadata. A
// hostile or broken endpoint answering with more gets an error, not our memory.
const MaxResponseBytes = 2 << 20

// ErrResponseTooLarge is returned by a body read past MaxResponseBytes.
var ErrResponseTooLarge = errors.New("backend response larger than 2 MiB")

// LimitResponses wraps rt so that every response body fails with
// ErrResponseTooLarge (wrapped as ErrUnavailable) once more than limit bytes are read.
// A Content-Length over limit fails before the body is read at all.
func LimitResponses(rt http.RoundTripper, limit int64) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return limitRT{rt: rt, max: limit}
}

type limitRT struct {
	rt  http.RoundTripper
	max int64
}

func (l limitRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil || resp.Body == nil {
		return resp, err
	}
	if resp.ContentLength > l.max {
		resp.Body.Close()
		return nil, tooLarge()
	}
	resp.Body = &limitBody{rc: resp.Body, left: l.max}
	return resp, nil
}

func tooLarge() error {
	return Wrap(ErrUnavailable, "response-too-large", fmt.Errorf("%w", ErrResponseTooLarge))
}

type limitBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, tooLarge()
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, tooLarge()
	}
	return n, err
}

func (b *limitBody) Close() error { return b.rc.Close() }

// The result label of secretsync_provider_requests_total: a fixed set, so an error
// text (which may quote anything) never becomes a label value.
const (
	ResultOK          = "ok"          // the backend answered with a success status
	ResultNotFound    = "not_found"   // the backend said the thing does not exist
	ResultDenied      = "denied"      // refused: not authenticated, or not allowed
	ResultThrottled   = "throttled"   // the backend asked us to slow down
	ResultUnavailable = "unavailable" // a 5xx, a refused or broken connection, an answer too large
	ResultTimeout     = "timeout"     // no answer before the deadline
	ResultError       = "error"       // any other refusal (a 4xx the backend blames on the request)
)

// OperationOther is the operation label of a request no classifier names.
const OperationOther = "other"

// ResultOf is the result label of a failure of kind (a sentinel of this package; nil
// is a success).
func ResultOf(kind error) string {
	//nolint:errorlint // kind is a bare sentinel (Classify's result), compared by identity
	switch kind {
	case nil:
		return ResultOK
	case ErrNotFound:
		return ResultNotFound
	case ErrAccessDenied, ErrAuth:
		return ResultDenied
	case ErrThrottled:
		return ResultThrottled
	case ErrUnavailable:
		return ResultUnavailable
	}
	return ResultError
}

// RequestClassifier names a backend's requests and answers for the requests counter.
type RequestClassifier interface {
	// Operation names req from a small fixed set (never its path or body text, which
	// may name tenants and would grow the label without bound).
	Operation(req *http.Request) string
	// Result is the result label of an answer. It may read (part of) an error body to
	// find the backend's error code; it returns the response to hand on, whose body
	// still reads in full.
	Result(resp *http.Response) (string, *http.Response)
}

// CountRequests wraps rt so that every request it sends adds one to
// secretsync_provider_requests_total{provider,operation,result}. The transport is
// the one place every call passes: each page of a listing, each read of a batch,
// each retry the SDK makes, credential and login calls, renewals and revocations.
func CountRequests(rt http.RoundTripper, provider string, c RequestClassifier) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return countRT{rt: rt, provider: provider, c: c}
}

type countRT struct {
	rt       http.RoundTripper
	provider string
	c        RequestClassifier
}

func (c countRT) RoundTrip(req *http.Request) (*http.Response, error) {
	op := c.c.Operation(req)
	resp, err := c.rt.RoundTrip(req)
	var result string
	if err != nil {
		result = transportResult(err)
	} else {
		result, resp = c.c.Result(resp)
	}
	metrics.ProviderRequests.WithLabelValues(c.provider, op, result).Inc()
	return resp, err
}

// transportResult classifies a request that got no answer.
func transportResult(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return ResultTimeout
	case errors.Is(err, context.Canceled):
		return ResultError // we gave up, the backend did nothing wrong
	case Classify(err) != nil:
		return ResultOf(Classify(err))
	}
	return ResultUnavailable // refused or broken connection, TLS failure
}

// StatusResult is the result label of an HTTP status alone, for backends whose
// status says it all (Vault).
func StatusResult(status int) string {
	switch {
	case status < 400:
		return ResultOK
	case status == http.StatusNotFound:
		return ResultNotFound
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ResultDenied
	case status == http.StatusTooManyRequests:
		return ResultThrottled
	case status >= 500:
		return ResultUnavailable
	}
	return ResultError
}
