package awsemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults used when Options leave a field empty.
const (
	DefaultRegion          = "us-east-1"
	DefaultAccountID       = "123456789012"
	DefaultAccessKeyID     = "AKIAEMULATORSTATIC01"
	DefaultSecretAccessKey = "emulator-static-secret-access-key"
)

// maxBody bounds request bodies (Secrets Manager values are at most 64 KiB).
const maxBody = 4 << 20

// Options configures a Server. The zero value is usable.
type Options struct {
	// Region appears in ARNs (default us-east-1). Requests signed for any region are
	// accepted: one emulator serves every region a test uses.
	Region string
	// AccountID appears in ARNs (default 123456789012).
	AccountID string
	// AccessKeyID and SecretAccessKey are the static key pair the server accepts
	// besides credentials issued by its STS (defaults DefaultAccessKeyID /
	// DefaultSecretAccessKey). The secret is not checked: signatures are not verified.
	AccessKeyID     string
	SecretAccessKey string
	// ExternalIDs maps a role ARN to the ExternalId sts:AssumeRole must present for it.
	ExternalIDs map[string]string
	// WebIdentityValidator, when set, vets every AssumeRoleWithWebIdentity token; an
	// error is returned to the client as InvalidIdentityToken.
	WebIdentityValidator func(token, roleARN string) error
	// Seed is loaded by New.
	Seed *Seed
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Caller is the identity that made a request.
type Caller struct {
	AccessKeyID string
	// RoleARN and SessionName are set for credentials issued by AssumeRole* calls.
	RoleARN     string
	SessionName string
	// Source is "static", "AssumeRole" or "AssumeRoleWithWebIdentity".
	Source string
}

// Server is the emulator. It is an http.Handler; Start serves it on 127.0.0.1.
type Server struct {
	opts Options

	mu      sync.RWMutex // guards the data below
	secrets map[string]*smSecret
	params  map[string]*ssmParam
	creds   map[string]*issuedCred
	// inactive holds static access key IDs deactivated by DeactivateAccessKey;
	// extra holds the ones CreateAccessKey added (IAM allows two per user).
	inactive map[string]bool
	extra    map[string]bool
	seq      int64

	countMu sync.RWMutex
	counts  map[string]*atomic.Int64

	faultMu   sync.Mutex
	faults    []*faultRule
	latency   map[string]time.Duration
	hasFaults atomic.Bool // fast path: no fault or latency configured
	// endlessSeq numbers FaultEndlessTokenFresh's tokens.
	endlessSeq atomic.Int64

	webID     atomic.Pointer[func(token, roleARN string) error]
	callers   sync.Map // op -> Caller
	webClaims atomic.Pointer[map[string]any]

	srvMu sync.Mutex
	ln    net.Listener
	hs    *http.Server
}

// New builds a Server (not listening; see Start). It panics if opts.Seed is invalid,
// which is a bug in the test that passed it.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.AccessKeyID == "" {
		opts.AccessKeyID = DefaultAccessKeyID
	}
	if opts.SecretAccessKey == "" {
		opts.SecretAccessKey = DefaultSecretAccessKey
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:     opts,
		secrets:  map[string]*smSecret{},
		params:   map[string]*ssmParam{},
		creds:    map[string]*issuedCred{},
		inactive: map[string]bool{},
		extra:    map[string]bool{},
		counts:   map[string]*atomic.Int64{},
		latency:  map[string]time.Duration{},
	}
	if opts.WebIdentityValidator != nil {
		s.SetWebIdentityValidator(opts.WebIdentityValidator)
	}
	if opts.Seed != nil {
		if err := s.Seed(opts.Seed); err != nil {
			panic("awsemu: invalid seed: " + err.Error())
		}
	}
	return s
}

// Start listens on 127.0.0.1 with a free port and serves in the background.
func (s *Server) Start() error { return s.Listen("127.0.0.1:0") }

// Listen serves on addr (host:port) in the background.
func (s *Server) Listen(addr string) error {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.ln != nil {
		ln.Close()
		return errors.New("awsemu: already listening")
	}
	s.ln = ln
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.hs.Serve(ln) //nolint:errcheck // ErrServerClosed on Close
	return nil
}

// URL is the base URL to use as a client's BaseEndpoint ("" before Start).
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops serving and closes open connections.
func (s *Server) Close() {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.hs != nil {
		s.hs.Close()
		s.hs, s.ln = nil, nil
	}
}

// StaticCredentials returns the static key pair the server accepts.
func (s *Server) StaticCredentials() (accessKeyID, secretAccessKey string) {
	return s.opts.AccessKeyID, s.opts.SecretAccessKey
}

// CreateAccessKey adds a static key pair the server accepts, like IAM's
// CreateAccessKey: the way a platform team rotates a store's credentials (new key,
// update the credential Secret, then DeactivateAccessKey the old one).
func (s *Server) CreateAccessKey() (accessKeyID, secretAccessKey string) {
	accessKeyID = "AKIA" + randString(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
	s.mu.Lock()
	s.extra[accessKeyID] = true
	s.mu.Unlock()
	return accessKeyID, randString(40, alnum)
}

// DeactivateAccessKey makes the server refuse a static key (the configured one or
// one from CreateAccessKey) with UnrecognizedClientException, as AWS does for an
// inactive or deleted key.
func (s *Server) DeactivateAccessKey(accessKeyID string) {
	s.mu.Lock()
	s.inactive[accessKeyID] = true
	s.mu.Unlock()
}

// Region and AccountID used in ARNs.
func (s *Server) Region() string    { return s.opts.Region }
func (s *Server) AccountID() string { return s.opts.AccountID }

// SetWebIdentityValidator replaces the AssumeRoleWithWebIdentity token hook (nil: any
// non-empty token is accepted).
func (s *Server) SetWebIdentityValidator(f func(token, roleARN string) error) {
	if f == nil {
		s.webID.Store(nil)
		return
	}
	s.webID.Store(&f)
}

// LastCaller is the identity of the latest request to op (bare or service-qualified
// name, e.g. "GetSecretValue" or "ssm.GetParameter"); false when op was never called
// with credentials.
func (s *Server) LastCaller(op string) (Caller, bool) {
	v, ok := s.callers.Load(op)
	if !ok {
		return Caller{}, false
	}
	return v.(Caller), true
}

// ---- counters

// Calls is how many requests reached op, faulted ones included. op is a bare
// operation name ("GetSecretValue", counting every service that has it) or a
// service-qualified one: "secretsmanager.GetSecretValue", "ssm.GetParameter",
// "sts.AssumeRole".
func (s *Server) Calls(op string) int {
	s.countMu.RLock()
	c := s.counts[op]
	s.countMu.RUnlock()
	if c == nil {
		return 0
	}
	return int(c.Load())
}

// TotalCalls counts every AWS request (control endpoints excluded).
func (s *Server) TotalCalls() int { return s.Calls("*") }

// CallCounts returns a copy of every counter ("*" is the total).
func (s *Server) CallCounts() map[string]int {
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		if n := v.Load(); n > 0 {
			out[k] = int(n)
		}
	}
	return out
}

// ResetCalls zeroes every counter.
func (s *Server) ResetCalls() {
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	for _, v := range s.counts {
		v.Store(0)
	}
}

func (s *Server) count(keys ...string) {
	for _, k := range keys {
		s.countMu.RLock()
		c := s.counts[k]
		s.countMu.RUnlock()
		if c == nil {
			s.countMu.Lock()
			if c = s.counts[k]; c == nil {
				c = &atomic.Int64{}
				s.counts[k] = c
			}
			s.countMu.Unlock()
		}
		c.Add(1)
	}
}

// ---- faults

// FaultKind selects how an injected fault fails a request.
type FaultKind string

const (
	// FaultThrottle answers HTTP 400 ThrottlingException (STS: Throttling), as AWS does
	// when a rate limit is exceeded.
	FaultThrottle FaultKind = "throttle"
	// FaultServerError answers HTTP 500 InternalServiceError (Secrets Manager),
	// InternalServerError (SSM) or InternalFailure (STS).
	FaultServerError FaultKind = "server-error"
	// FaultUnavailable answers HTTP 503 ServiceUnavailable.
	FaultUnavailable FaultKind = "unavailable"
	// FaultClose closes the connection without a response (an outage).
	FaultClose FaultKind = "close"

	// FaultEndlessTokenRepeat serves the request, then replaces the answer's NextToken
	// with the same token every time: a listing that never ends and repeats itself.
	// A request carrying that token is served as the first page.
	FaultEndlessTokenRepeat FaultKind = "endless-token-repeat"
	// FaultEndlessTokenFresh is FaultEndlessTokenRepeat with a new token on every
	// answer: a listing that never ends and never repeats a token.
	FaultEndlessTokenFresh FaultKind = "endless-token-fresh"
	// FaultHugeResponse answers HTTP 200 with a well-formed JSON (STS: XML) body of
	// Fault.Size bytes (default HugeResponseSize), streamed without Content-Length and
	// never held in memory at once.
	FaultHugeResponse FaultKind = "huge-response"
	// FaultEmpty200 answers HTTP 200 with an empty body, as a broken proxy might.
	FaultEmpty200 FaultKind = "empty-200"
	// Fault404NoCode answers HTTP 404 with an HTML page and no AWS error code (a
	// wrong endpoint or a proxy's own page).
	Fault404NoCode FaultKind = "404-no-code"
	// FaultOmitSelector serves the request, then removes Selector from every
	// parameter of the answer (GetParameter, GetParameters), as LocalStack-style
	// emulators answer a versioned or labelled read.
	FaultOmitSelector FaultKind = "omit-selector"
)

// HugeResponseSize is FaultHugeResponse's body size when Fault.Size is 0.
const HugeResponseSize = 64 << 20

// endlessTokenPrefix marks the NextTokens the endless faults hand out, so that a
// request carrying one is recognised (and served as the first page) instead of
// failing with InvalidNextToken.
const endlessTokenPrefix = "awsemu-endless-"

// Fault makes matching requests fail.
type Fault struct {
	// Op is "" (every operation), a bare operation name or a service-qualified one
	// (see Calls).
	Op   string    `json:"op"`
	Kind FaultKind `json:"kind"`
	// Times is how many matching requests fail; 0 means until ClearFaults.
	Times int `json:"times"`
	// Size is FaultHugeResponse's body size in bytes (0: HugeResponseSize).
	Size int64 `json:"size,omitempty"`
}

type faultRule struct {
	Fault
	left int // remaining, when Times > 0
}

// InjectFault adds a fault rule; the first matching rule with requests left applies.
func (s *Server) InjectFault(f Fault) error {
	switch f.Kind {
	case FaultThrottle, FaultServerError, FaultUnavailable, FaultClose,
		FaultEndlessTokenRepeat, FaultEndlessTokenFresh, FaultHugeResponse, FaultEmpty200, Fault404NoCode, FaultOmitSelector:
	default:
		return fmt.Errorf("awsemu: unknown fault kind %q", f.Kind)
	}
	if f.Size < 0 {
		return fmt.Errorf("awsemu: fault size %d is negative", f.Size)
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = append(s.faults, &faultRule{Fault: f, left: f.Times})
	s.hasFaults.Store(true)
	return nil
}

// ClearFaults removes every fault rule (latency stays).
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = nil
	s.hasFaults.Store(len(s.latency) > 0)
}

// SetLatency delays every request to op ("" = every operation) by d before it is
// answered; d = 0 removes the delay. An operation-specific delay wins over "".
func (s *Server) SetLatency(op string, d time.Duration) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if d <= 0 {
		delete(s.latency, op)
	} else {
		s.latency[op] = d
	}
	s.hasFaults.Store(len(s.faults) > 0 || len(s.latency) > 0)
}

// faultFor returns the latency and the fault (if any) for a request to svc.op.
func (s *Server) faultFor(svc, op string) (time.Duration, Fault) {
	if !s.hasFaults.Load() {
		return 0, Fault{}
	}
	qualified := svc + "." + op
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	d, ok := s.latency[qualified]
	if !ok {
		if d, ok = s.latency[op]; !ok {
			d = s.latency[""]
		}
	}
	for i, r := range s.faults {
		if r.Op != "" && r.Op != op && r.Op != qualified {
			continue
		}
		if r.Times > 0 {
			r.left--
			if r.left <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return d, r.Fault
	}
	return d, Fault{}
}

// ---- HTTP

// Service names used in counters and fault rules.
const (
	svcSM  = "secretsmanager"
	svcSSM = "ssm"
	svcSTS = "sts"
)

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emu/") {
		s.serveControl(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "awsemu: AWS APIs are POST requests", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeJSONError(w, &apiError{status: 413, code: "RequestEntityTooLargeException", msg: "Request body too large"})
		return
	}

	var svc, op string
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(target, "secretsmanager."):
		svc, op = svcSM, strings.TrimPrefix(target, "secretsmanager.")
	case strings.HasPrefix(target, "AmazonSSM."):
		svc, op = svcSSM, strings.TrimPrefix(target, "AmazonSSM.")
	case target == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		s.serveSTS(w, r, body)
		return
	default:
		writeJSONError(w, &apiError{status: 400, code: "UnknownOperationException", msg: "Unknown X-Amz-Target " + target})
		return
	}
	s.count("*", op, svc+"."+op)
	proceed, post := s.applyFaults(w, r, svc, op, false)
	if !proceed {
		return
	}
	if post.Kind == FaultEndlessTokenRepeat || post.Kind == FaultEndlessTokenFresh {
		body = stripEndlessToken(body)
	}
	caller, aerr := s.authenticate(r, svc)
	if aerr != nil {
		writeJSONError(w, aerr)
		return
	}
	s.callers.Store(op, caller)
	s.callers.Store(svc+"."+op, caller)

	var out any
	switch svc {
	case svcSM:
		out, aerr = s.dispatchSM(op, body)
	case svcSSM:
		out, aerr = s.dispatchSSM(op, body, caller)
	}
	if aerr != nil {
		writeJSONError(w, aerr)
		return
	}
	switch post.Kind {
	case FaultEndlessTokenRepeat, FaultEndlessTokenFresh:
		out = s.withEndlessToken(out, post.Kind)
	case FaultOmitSelector:
		out = withoutSelector(out)
	}
	writeJSON(w, out)
}

// applyFaults sleeps the configured latency and answers an injected fault; proceed
// false means the request was answered (or its connection closed). A fault that
// changes a served answer (the endless NextToken kinds) is returned as post.
func (s *Server) applyFaults(w http.ResponseWriter, r *http.Request, svc, op string, xmlProto bool) (proceed bool, post Fault) {
	d, f := s.faultFor(svc, op)
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false, Fault{}
		}
	}
	var e *apiError
	switch f.Kind {
	case "":
		return true, Fault{}
	case FaultEndlessTokenRepeat, FaultEndlessTokenFresh, FaultOmitSelector:
		if xmlProto { // STS has no listings and no parameters
			return true, Fault{}
		}
		return true, f
	case FaultClose:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return false, Fault{}
			}
		}
		panic(http.ErrAbortHandler) // closes the connection where hijacking is impossible
	case FaultHugeResponse:
		writeHuge(w, f.Size, xmlProto)
		return false, Fault{}
	case FaultEmpty200:
		if xmlProto {
			w.Header().Set("Content-Type", "text/xml")
		} else {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		}
		w.WriteHeader(http.StatusOK)
		return false, Fault{}
	case Fault404NoCode:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>\n")
		return false, Fault{}
	case FaultThrottle:
		e = &apiError{status: 400, code: "ThrottlingException", msg: "Rate exceeded"}
		if xmlProto {
			e.code = "Throttling"
		}
	case FaultServerError:
		e = &apiError{status: 500, code: "InternalServiceError", msg: "An error occurred on the server side."}
		switch svc {
		case svcSSM:
			e.code = "InternalServerError"
		case svcSTS:
			e.code = "InternalFailure"
		}
	case FaultUnavailable:
		e = &apiError{status: 503, code: "ServiceUnavailable", msg: "Service Unavailable"}
	}
	if xmlProto {
		writeXMLError(w, e)
	} else {
		writeJSONError(w, e)
	}
	return false, Fault{}
}

// writeHuge streams a well-formed body of about size bytes (a string member padded
// with 'A'), a chunk at a time, until done or the client goes away.
func writeHuge(w http.ResponseWriter, size int64, xmlProto bool) {
	if size <= 0 {
		size = HugeResponseSize
	}
	head, tail := `{"SecretString":"`, `"}`
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if xmlProto {
		head, tail = "<AssumeRoleResponse><AssumeRoleResult><Padding>", "</Padding></AssumeRoleResult></AssumeRoleResponse>"
		w.Header().Set("Content-Type", "text/xml")
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, head); err != nil {
		return
	}
	chunk := make([]byte, 32<<10)
	for i := range chunk {
		chunk[i] = 'A'
	}
	left := size - int64(len(head)+len(tail))
	for left > 0 {
		n := min(left, int64(len(chunk)))
		if _, err := w.Write(chunk[:n]); err != nil {
			return // the client stopped reading: that is the point
		}
		left -= n
	}
	_, _ = io.WriteString(w, tail)
}

// stripEndlessToken removes a NextToken an endless fault handed out from a JSON
// request body, so the request is served as the first page.
func stripEndlessToken(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	var tok string
	if json.Unmarshal(m["NextToken"], &tok) != nil || !strings.HasPrefix(tok, endlessTokenPrefix) {
		return body
	}
	delete(m, "NextToken")
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return b
}

// withoutSelector returns out with Selector removed from its Parameter and from each
// of its Parameters.
func withoutSelector(out any) any {
	b, err := json.Marshal(out)
	if err != nil {
		return out
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return out
	}
	strip := func(raw json.RawMessage) json.RawMessage {
		var p map[string]json.RawMessage
		if json.Unmarshal(raw, &p) != nil {
			return raw
		}
		delete(p, "Selector")
		b, _ := json.Marshal(p)
		return b
	}
	if raw, ok := m["Parameter"]; ok {
		m["Parameter"] = strip(raw)
	}
	var list []json.RawMessage
	if json.Unmarshal(m["Parameters"], &list) == nil && list != nil {
		for i := range list {
			list[i] = strip(list[i])
		}
		m["Parameters"], _ = json.Marshal(list)
	}
	return m
}

// withEndlessToken returns out with its NextToken replaced as kind says.
func (s *Server) withEndlessToken(out any, kind FaultKind) any {
	b, err := json.Marshal(out)
	if err != nil {
		return out
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return out
	}
	tok := endlessTokenPrefix + "repeat"
	if kind == FaultEndlessTokenFresh {
		tok = fmt.Sprintf("%sfresh-%d", endlessTokenPrefix, s.endlessSeq.Add(1))
	}
	m["NextToken"], _ = json.Marshal(tok)
	return m
}

// authenticate checks the SigV4 headers (not the signature) and the access key id.
func (s *Server) authenticate(r *http.Request, svc string) (Caller, *apiError) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return Caller{}, &apiError{status: 400, code: "MissingAuthenticationTokenException", msg: "Missing Authentication Token"}
	}
	const prefix = "AWS4-HMAC-SHA256 Credential="
	if !strings.HasPrefix(authz, prefix) || !strings.Contains(authz, "SignedHeaders=") || !strings.Contains(authz, "Signature=") {
		return Caller{}, &apiError{status: 400, code: "IncompleteSignatureException", msg: "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters with algorithm AWS4-HMAC-SHA256."}
	}
	if r.Header.Get("X-Amz-Date") == "" {
		return Caller{}, &apiError{status: 400, code: "IncompleteSignatureException", msg: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."}
	}
	scope := strings.TrimPrefix(authz, prefix)
	if i := strings.IndexAny(scope, ", "); i >= 0 {
		scope = scope[:i]
	}
	// AKID/date/region/service/aws4_request
	parts := strings.Split(scope, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return Caller{}, &apiError{status: 400, code: "IncompleteSignatureException", msg: "Credential scope is malformed."}
	}
	if parts[3] != svc {
		return Caller{}, &apiError{status: 400, code: "InvalidSignatureException", msg: fmt.Sprintf("Credential should be scoped to correct service: '%s'.", svc)}
	}
	akid := parts[0]
	s.mu.RLock()
	static := (akid == s.opts.AccessKeyID || s.extra[akid]) && !s.inactive[akid]
	c := s.creds[akid]
	s.mu.RUnlock()
	if static {
		return Caller{AccessKeyID: akid, Source: "static"}, nil
	}
	if c == nil || r.Header.Get("X-Amz-Security-Token") != c.token {
		return Caller{}, &apiError{status: 400, code: "UnrecognizedClientException", msg: "The security token included in the request is invalid."}
	}
	if !s.opts.Now().Before(c.expires) {
		return Caller{}, &apiError{status: 400, code: "ExpiredTokenException", msg: "The security token included in the request is expired"}
	}
	return Caller{AccessKeyID: akid, RoleARN: c.roleARN, SessionName: c.session, Source: c.source}, nil
}

// apiError is an AWS error response.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errf(code, format string, args ...any) *apiError {
	return &apiError{status: 400, code: code, msg: fmt.Sprintf(format, args...)}
}

func writeJSONError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", requestID())
	w.WriteHeader(e.status)
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message,omitempty"`
	}{e.code, e.msg})
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeJSONError(w, &apiError{status: 500, code: "InternalFailure", msg: "awsemu: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-RequestId", requestID())
	_, _ = w.Write(b)
}

// decode parses a JSON 1.1 request body into v.
func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errf("SerializationException", "Could not parse the request body: %v", err)
	}
	return nil
}
