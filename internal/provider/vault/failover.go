package vault

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Failover of a Vault/OpenBao HA cluster, as the client sees it through the
// Service in front of the pods (measured with OpenBao 2.4.0, see docs/vault-ha.md):
//   - a killed active node refuses connections (or drops the ones in flight);
//   - a standby forwards requests to the active node; while the active node is
//     gone it answers 307 to the dead node's api_addr (or, with forwarding
//     disabled, always 307 to the active node);
//   - a few seconds later a standby wins the election and everything answers.
// Tokens and leases live in Raft, so the new active node accepts them: the client
// retries instead of logging in again.

// failoverGrace is how long after an outage began requests keep retrying (api.md:
// a leader change that lasts less than 30 s must not make anything Ready=False).
// The per-call deadline (--backend-timeout) bounds each call too: its retries are
// inside that deadline.
const failoverGrace = 30 * time.Second

const (
	firstBackoff = 200 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// retrying is vaultAPI with failover retries. Whether a failed request may be sent
// again depends on what it does:
//   - A request that certainly never reached a Vault node that could act on it
//     (the connection was refused) is always sent again.
//   - A request whose repetition is harmless (reads of the store's KV mount,
//     sys/ and token self-lookups; lease and token renewal and revocation; Transit
//     decryption, marked by its caller) is also sent again after errors that may
//     have happened after Vault acted: a dropped connection, a bad gateway, a
//     standby that cannot reach the active node.
//   - Everything else may issue credentials (logins, dynamic secrets read or
//     written on other mounts, PKI issue): sent again only in the first case, so a
//     failover never issues a credential twice.
//
// The grace runs from the first failure of an outage, not per request: once the
// backend has failed for longer than the grace, requests are sent once and fail
// fast (the contract's "the outage outlasts the grace"), until one succeeds.
type retrying struct {
	next    vaultAPI
	timeout time.Duration // the whole call, retries included
	clock   clock.Clock
	kvMount string
	outage  *outage
}

// outage is when the backend began failing like a failover (zero: it is
// answering), shared by every request of one client.
type outage struct {
	mu          sync.Mutex
	since, last time.Time
}

// begin records a failure and returns when its outage began. A failure long after
// the last one (an idle client) starts a new outage.
func (o *outage) begin(now time.Time) time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() || now.Sub(o.last) > failoverGrace {
		o.since = now
	}
	o.last = now
	return o.since
}

func (o *outage) end() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.since = time.Time{}
}

func (r retrying) Read(ctx context.Context, token, path string, query url.Values) (*api.Secret, error) {
	return r.do(ctx, path, r.readIsSafe(path), func(ctx context.Context) (*api.Secret, error) {
		return r.next.Read(ctx, token, path, query)
	})
}

func (r retrying) List(ctx context.Context, token, path string) (*api.Secret, error) {
	return r.do(ctx, path, r.readIsSafe(path), func(ctx context.Context) (*api.Secret, error) {
		return r.next.List(ctx, token, path)
	})
}

func (r retrying) Write(ctx context.Context, token, path string, body map[string]any) (*api.Secret, error) {
	return r.do(ctx, path, idempotentWrites[path] || isIdempotent(ctx), func(ctx context.Context) (*api.Secret, error) {
		return r.next.Write(ctx, token, path, body)
	})
}

// readIsSafe: reads that only read. A GET elsewhere may issue a credential
// (database/creds/<role>).
func (r retrying) readIsSafe(path string) bool {
	return strings.HasPrefix(path, r.kvMount+"/") || strings.HasPrefix(path, "sys/") || strings.HasPrefix(path, "auth/token/lookup")
}

// idempotentWrites are the POSTs whose repetition changes nothing a second time.
var idempotentWrites = map[string]bool{
	"sys/leases/renew":       true,
	"sys/leases/revoke":      true,
	"sys/leases/lookup":      true,
	"auth/token/renew-self":  true,
	"auth/token/lookup-self": true,
	"auth/token/revoke-self": true,
}

type idempotentKey struct{}

// withIdempotent marks a write its caller knows to be harmless to repeat
// (Transit decrypt: a pure function of key and ciphertext).
func withIdempotent(ctx context.Context) context.Context {
	return context.WithValue(ctx, idempotentKey{}, true)
}

func isIdempotent(ctx context.Context) bool { v, _ := ctx.Value(idempotentKey{}).(bool); return v }

func (r retrying) do(ctx context.Context, path string, idempotent bool, send func(context.Context) (*api.Secret, error)) (*api.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		sec, err := send(ctx)
		var began time.Time
		switch {
		case err == nil:
			r.outage.end()
			return sec, nil
		case retryable(err, true):
			began = r.outage.begin(r.clock.Now())
		case statusOf(err) != 0:
			r.outage.end() // a node answered
		}
		if ctx.Err() != nil || !retryable(err, idempotent) {
			return sec, err
		}
		wait := backoff(attempt)
		if r.clock.Since(began)+wait > failoverGrace {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, err
		}
		log.FromContext(ctx).V(1).Info("vault request failed during a possible failover, retrying",
			"path", path, "attempt", attempt+1, "status", statusOf(err))
		select {
		case <-ctx.Done():
			return nil, err
		case <-r.clock.After(wait):
		}
	}
}

// backoff is the wait before retry attempt+1: doubling from 200 ms to 2 s, with
// ±20% jitter so the clients of a cluster do not come back in step.
func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 4 {
		d = firstBackoff << attempt
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// retryable says whether err may be cured by sending the request again.
func retryable(err error, idempotent bool) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if neverSent(err) {
		return true
	}
	if !idempotent {
		return false
	}
	switch code := statusOf(err); code {
	case 0:
		return connectionLost(err)
	case http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTemporaryRedirect:
		// 307: a redirect we could not follow (a second hop).
		return true
	case http.StatusServiceUnavailable:
		// A sealed server needs an operator, not a retry (a Service's readiness
		// probe keeps sealed pods out of an HA cluster's endpoints).
		return !strings.Contains(vaultErrors(err), "sealed")
	case http.StatusInternalServerError:
		return standbyTrouble(vaultErrors(err))
	}
	return false
}

// neverSent: the connection was refused (a dead node, or the dead active node a
// standby redirected to): no Vault node saw the request.
func neverSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// connectionLost: the connection broke after the request may have been sent (the
// node died with it). TLS and protocol errors are not: a retry meets them again.
func connectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// standbyTrouble: a standby's 500 when it cannot forward to the active node
// ("error during forwarding RPC request", "local node not active but active
// cluster node not found"). Other 500s are the backend's own and are not retried.
func standbyTrouble(msg string) bool {
	for _, s := range []string{"forward", "active cluster node", "not active", "standby", "leader"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// followRedirect follows one redirect (a standby's 307 to the active node's
// api_addr) inside the transport, re-sending the same method, headers and body.
// vault/api's own redirect handling re-encodes a raw body as JSON null, so it is
// switched off (DisableRedirects). A redirect from https to http is not followed:
// the token would travel in clear text.
type followRedirect struct{ next http.RoundTripper }

// maxRequestBody bounds what followRedirect buffers: our request bodies are small
// JSON documents (logins, lease ids, ciphertexts, PKI parameters).
const maxRequestBody = 4 << 20

func (f followRedirect) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if len(b) > maxRequestBody {
			return nil, errors.New("vault request body over 4 MiB")
		}
		body = b
	}
	resp, err := f.next.RoundTrip(withBody(req, req.URL, body))
	if err != nil || !isRedirect(resp.StatusCode) {
		return resp, err
	}
	loc, lerr := resp.Location()
	if lerr != nil || loc.Host == "" || (req.URL.Scheme == "https" && loc.Scheme != "https") {
		return resp, nil //nolint:nilerr // not followed: the caller gets the redirect status as it is
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	next := withBody(req, loc, body)
	next.Host = ""
	return f.next.RoundTrip(next)
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// withBody is req for u with a fresh reader over body.
func withBody(req *http.Request, u *url.URL, body []byte) *http.Request {
	r := req.Clone(req.Context())
	r.URL = u
	if body == nil {
		r.Body, r.GetBody, r.ContentLength = nil, nil, 0
		if req.Body == http.NoBody {
			r.Body = http.NoBody
		}
		return r
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	return r
}
