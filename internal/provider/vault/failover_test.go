package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

var (
	errRefused = &url.Error{Op: "Get", URL: "http://127.0.0.1:1/v1/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	errDropped = &url.Error{Op: "Get", URL: "http://127.0.0.1:1/v1/x", Err: io.EOF}
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name             string
		err              error
		idempotent, want bool
	}{
		{"refused, idempotent", errRefused, true, true},
		{"refused, may issue: nothing was sent", errRefused, false, true},
		{"dropped, idempotent", errDropped, true, true},
		{"dropped, may issue: Vault may have issued", errDropped, false, false},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true, true},
		{"502", respErr(502), true, true},
		{"503 standby", respErr(503, "node is not active"), true, true},
		{"503 sealed needs an operator", respErr(503, "Vault is sealed"), true, false},
		{"503, may issue", respErr(503), false, false},
		{"500 forwarding", respErr(500, "error during forwarding RPC request"), true, true},
		{"500 no active node", respErr(500, "local node not active but active cluster node not found"), true, true},
		{"500 of the backend", respErr(500, "internal error"), true, false},
		{"307 not followed", respErr(307), true, true},
		{"403", respErr(403, "permission denied"), true, false},
		{"400", respErr(400, "bad"), true, false},
		{"404", respErr(404), true, false},
		{"TLS", &url.Error{Op: "Get", URL: "https://x", Err: errors.New("x509: certificate signed by unknown authority")}, true, false},
		{"deadline", context.DeadlineExceeded, true, false},
		{"canceled", context.Canceled, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryable(tc.err, tc.idempotent); got != tc.want {
				t.Fatalf("retryable = %v, want %v", got, tc.want)
			}
		})
	}
}

// scripted answers each call with the next error of its script (then success).
type scripted struct {
	mu      sync.Mutex
	errs    []error
	forever error // once errs ran out, instead of success
	calls   int
}

func (s *scripted) next() (*api.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.errs) == 0 {
		if s.forever != nil {
			return nil, s.forever
		}
		return &api.Secret{Data: map[string]any{"ok": "1"}}, nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return nil, err
}

func (s *scripted) n() int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls }

func (s *scripted) Read(context.Context, string, string, url.Values) (*api.Secret, error) {
	return s.next()
}
func (s *scripted) List(context.Context, string, string) (*api.Secret, error) { return s.next() }
func (s *scripted) Write(context.Context, string, string, map[string]any) (*api.Secret, error) {
	return s.next()
}

// runStepping runs call while stepping clk whenever the retry loop waits on it.
func runStepping(t *testing.T, clk *clocktesting.FakeClock, call func() error) (error, time.Duration) { //nolint:staticcheck // ST1008: err is the call's result under test, read first
	t.Helper()
	start := clk.Now()
	done := make(chan error, 1)
	go func() { done <- call() }()
	for {
		select {
		case err := <-done:
			return err, clk.Since(start)
		default:
		}
		if clk.HasWaiters() {
			clk.Step(maxBackoff * 2)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRetryingAcrossFailover(t *testing.T) {
	for _, tc := range []struct {
		name      string
		errs      []error
		call      func(ctx context.Context, r retrying) (*api.Secret, error)
		wantCalls int // -1: until the budget ran out
		wantErr   bool
	}{
		{"a KV read rides out a dropped connection and a standby's 500", []error{errDropped, respErr(500, "error during forwarding RPC request")},
			func(ctx context.Context, r retrying) (*api.Secret, error) {
				return r.Read(ctx, "t", "secret/data/app", nil)
			}, 3, false},
		{"a lease renewal rides out a 502", []error{respErr(502)},
			func(ctx context.Context, r retrying) (*api.Secret, error) {
				return r.Write(ctx, "t", "sys/leases/renew", map[string]any{"lease_id": "x"})
			}, 2, false},
		{"a Transit decrypt (marked idempotent) rides out a dropped connection", []error{errDropped},
			func(ctx context.Context, r retrying) (*api.Secret, error) {
				return r.Write(withIdempotent(ctx), "t", "transit/decrypt/k", nil)
			}, 2, false},
		{"a login is sent again only when it was refused", []error{errRefused, errDropped},
			func(ctx context.Context, r retrying) (*api.Secret, error) {
				return r.Write(ctx, "", "auth/approle/login", nil)
			}, 2, true},
		{"a dynamic GET that may have issued is not sent again", []error{errDropped},
			func(ctx context.Context, r retrying) (*api.Secret, error) {
				return r.Read(ctx, "t", "database/creds/ro", nil)
			}, 1, true},
		{"a PKI issue that may have issued is not sent again", []error{respErr(502)},
			func(ctx context.Context, r retrying) (*api.Secret, error) {
				return r.Write(ctx, "t", "pki/issue/web", nil)
			}, 1, true},
		{"a sealed server is not waited for", []error{respErr(503, "Vault is sealed")},
			func(ctx context.Context, r retrying) (*api.Secret, error) {
				return r.Read(ctx, "t", "secret/data/app", nil)
			}, 1, true},
		{"an outage longer than the grace fails the call", []error{errRefused},
			func(ctx context.Context, r retrying) (*api.Secret, error) {
				return r.Read(ctx, "t", "secret/data/app", nil)
			}, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(time.Now())
			s := &scripted{errs: tc.errs}
			if tc.wantCalls == -1 {
				s.forever = errRefused
			}
			r := retrying{next: s, timeout: time.Minute, clock: clk, kvMount: "secret", outage: &outage{}}
			err, elapsed := runStepping(t, clk, func() error { _, err := tc.call(t.Context(), r); return err })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantCalls >= 0 && s.n() != tc.wantCalls {
				t.Fatalf("%d requests, want %d", s.n(), tc.wantCalls)
			}
			// The test steps the clock past each wait, so allow one step over.
			if tc.wantCalls == -1 && (elapsed > failoverGrace+2*maxBackoff || s.n() < 5) {
				t.Fatalf("gave up after %s and %d requests, want several within %s", elapsed, s.n(), failoverGrace)
			}
		})
	}
}

// The grace runs from the start of an outage: once it has outlasted the grace, a
// call makes one attempt (fails fast) until the backend answers again.
func TestOutageOutlastingTheGraceFailsFast(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	s := &scripted{forever: errRefused}
	r := retrying{next: s, timeout: time.Minute, clock: clk, kvMount: "secret", outage: &outage{}}
	read := func() error { _, err := r.Read(t.Context(), "t", "secret/data/app", nil); return err }
	if err, _ := runStepping(t, clk, read); err == nil {
		t.Fatal("a read during a long outage succeeded")
	}
	first := s.n()
	clk.Step(failoverGrace / 2) // the same outage, now older than the grace
	if err, _ := runStepping(t, clk, read); err == nil || s.n() != first+1 {
		t.Fatalf("after the grace: %d more requests (err %v), want exactly 1", s.n()-first, err)
	}
	s.mu.Lock()
	s.forever = nil // the backend answers again
	s.mu.Unlock()
	if err := read(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.errs = []error{errRefused} // a new, short outage is ridden out again
	s.mu.Unlock()
	if err, _ := runStepping(t, clk, read); err != nil {
		t.Fatalf("a new outage after recovery was not retried: %v", err)
	}
}

// A standby answers 307 to the active node (OpenBao with request forwarding off,
// or while it cannot forward): the request, body included, reaches the active node.
func TestStandbyRedirectIsFollowedWithItsBody(t *testing.T) {
	var mu sync.Mutex
	var got []string
	active := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b)+" token="+r.Header.Get("X-Vault-Token"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"lease_id":"db/creds/x/1","lease_duration":60,"renewable":true,"data":{"plaintext":"aGk="}}`)
	}))
	defer active.Close()
	standby := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, active.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer standby.Close()

	va, err := newAPI(&v1alpha1.VaultProvider{Server: standby.URL}, nil, 5*time.Second, clocktesting.NewFakeClock(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(va, staticToken{token: "tok"}, appRoleSpec(), clocktesting.NewFakeClock(time.Now()), nil)
	defer c.Close(context.Background())
	l, err := c.Renew(t.Context(), "db/creds/x/1", time.Minute)
	if err != nil || l.TTL != time.Minute {
		t.Fatalf("Renew through a standby = %+v, %v", l, err)
	}
	if _, err := c.Decrypt(t.Context(), "", "k", "vault:v1:x"); err != nil {
		t.Fatalf("Decrypt through a standby: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{}
	for _, g := range got {
		want[g] = true
	}
	renew, _ := json.Marshal(map[string]any{"increment": 60, "lease_id": "db/creds/x/1"})
	decrypt, _ := json.Marshal(map[string]any{"ciphertext": "vault:v1:x"})
	for _, w := range []string{
		"PUT /v1/sys/leases/renew " + string(renew) + " token=tok",
		"PUT /v1/transit/decrypt/k " + string(decrypt) + " token=tok",
	} {
		if !want[w] {
			t.Errorf("the active node did not get %q; it got %q", w, got)
		}
	}
}

func TestRedirectFromHTTPSToHTTPIsNotFollowed(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("the token was sent in clear text")
	}))
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer tlsSrv.Close()
	f := followRedirect{next: tlsSrv.Client().Transport}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, tlsSrv.URL+"/v1/secret/data/app", http.NoBody)
	req.Header.Set("X-Vault-Token", "tok")
	resp, err := f.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("status %d, want the unfollowed 307", resp.StatusCode)
	}
	if !errors.Is(classify(respErr(307)), provider.ErrUnavailable) {
		t.Fatal("an unfollowed redirect must be an outage, not a bad request")
	}
}

// A 403 whose token lookup cannot be answered (the cluster is failing over) is
// not a reason to log in again: tokens survive a leader change.
func TestNoLoginWhenTheTokenLookupFails(t *testing.T) {
	f := &fakeAPI{handle: func(_, _, path string, _ url.Values, _ map[string]any) (*api.Secret, error) {
		if path == "auth/token/lookup-self" {
			return nil, respErr(503, "node not active")
		}
		return nil, respErr(403, "permission denied")
	}}
	auth := &loginCounter{ttl: time.Hour}
	c := newClient(f, auth, appRoleSpec(), clocktesting.NewFakeClock(time.Now()), nil)
	defer c.Close(context.Background())
	_, err := c.GetSecret(t.Context(), provider.Ref{Key: "app"})
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if c.Logins() != 1 {
		t.Fatalf("logins = %d, want 1 (no second login while Vault cannot tell)", c.Logins())
	}
}

// A user's renewable token (tokenSecretRef) is renewed with its creation TTL and
// never revoked.
func TestUserTokenRenewedNeverRevoked(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	renewed := make(chan map[string]any, 10)
	f := &fakeAPI{handle: func(_, _, path string, _ url.Values, body map[string]any) (*api.Secret, error) {
		switch path {
		case "auth/token/lookup-self":
			return &api.Secret{Data: map[string]any{"ttl": json.Number("60"), "creation_ttl": json.Number("120"), "renewable": true}}, nil
		case "auth/token/renew-self":
			renewed <- body
			return &api.Secret{Auth: &api.SecretAuth{ClientToken: "user", LeaseDuration: 120, Renewable: true}}, nil
		}
		return kvData(1, map[string]any{"a": "b"}), nil
	}}
	c := newClient(f, staticToken{token: "user"}, appRoleSpec(), clk, nil)
	if _, err := c.GetSecret(t.Context(), provider.Ref{Key: "app"}); err != nil {
		t.Fatal(err)
	}
	for !clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	clk.Step(41 * time.Second) // past two thirds of the 60 s left
	select {
	case body := <-renewed:
		if body["increment"] != int64(120) {
			t.Fatalf("renewal asked for %v, want the token's creation TTL (120)", body["increment"])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the user's renewable token was not renewed")
	}
	if err := c.Close(t.Context()); err != nil || f.count("PUT auth/token/revoke-self") != 0 {
		t.Fatalf("Close revoked the user's token (err %v)", err)
	}
	if c.Logins() != 0 {
		t.Fatalf("a user token counted as %d logins", c.Logins())
	}
}

// FuzzUserTokenLife: whatever a lookup-self answer holds, a token is renewed only
// with a positive TTL and a positive increment.
func FuzzUserTokenLife(f *testing.F) {
	for _, seed := range []string{
		`{"data":{"ttl":60,"creation_ttl":120,"renewable":true}}`,
		`{"data":{"ttl":0,"renewable":true}}`,
		`{"data":{"ttl":60,"renewable":false}}`,
		`{"data":{"ttl":"60","creation_ttl":"x","renewable":"true"}}`,
		`{"data":{"ttl":60,"creation_ttl":99999999999999999,"renewable":true}}`,
		`{"data":{"ttl":-5,"creation_ttl":-1,"renewable":true}}`,
		`{"data":null}`, `null`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sec, err := decodeSecret(bytes.NewReader(body))
		if err != nil {
			return
		}
		if l, ok := userTokenLife(sec); ok && (l.ttl <= 0 || l.increment <= 0) {
			t.Fatalf("renewal with ttl %s, increment %s", l.ttl, l.increment)
		}
	})
}

// Decrypt marks its request idempotent, so a dropped connection is retried.
func TestDecryptIsRetriedAcrossFailover(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	var mu sync.Mutex
	decrypts := 0
	f := &fakeAPI{handle: func(_, _, path string, _ url.Values, _ map[string]any) (*api.Secret, error) {
		if path != "transit/decrypt/k" {
			return &api.Secret{Data: map[string]any{}}, nil
		}
		mu.Lock()
		defer mu.Unlock()
		decrypts++
		if decrypts == 1 {
			return nil, errDropped
		}
		return &api.Secret{Data: map[string]any{"plaintext": "aGk="}}, nil
	}}
	r := retrying{next: f, timeout: time.Minute, clock: clk, kvMount: "secret", outage: &outage{}}
	c := newClient(r, staticToken{token: "t"}, appRoleSpec(), clk, nil)
	defer c.Close(context.Background())
	err, _ := runStepping(t, clk, func() error { _, err := c.Decrypt(t.Context(), "", "k", "vault:v1:x"); return err })
	if err != nil || decrypts != 2 {
		t.Fatalf("Decrypt after a dropped connection: %v after %d requests, want success after 2", err, decrypts)
	}
}
