// Package vault is the HashiCorp Vault / OpenBao backend: KV v1 and v2 static
// secrets, dynamic secrets with leases, Transit decryption, and the token, AppRole,
// Kubernetes and JWT auth methods. One Client holds one Vault token for its store
// identity: it logs in lazily once, renews the token in the background, logs in
// again only when Vault rejects the token, and revokes it on Close.
package vault

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/vault/api"
	"k8s.io/utils/clock"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// Name is the provider's registry key.
const Name = "vault"

const (
	defaultKVMount      = "secret"
	defaultTimeout      = 30 * time.Second
	defaultTransitMount = "transit"
)

// Option configures the provider.
type Option func(*vaultProvider)

// WithLoginHook calls f after every successful login (method is "approle",
// "kubernetes", "jwt"); tests and metrics count logins with it.
func WithLoginHook(f func(method string)) Option { return func(p *vaultProvider) { p.onLogin = f } }

// WithTimeout bounds every HTTP request to Vault, reading its answer included
// (default 30s): reads, lists, writes, logins, token renewal, lookup and revocation.
func WithTimeout(d time.Duration) Option { return func(p *vaultProvider) { p.timeout = d } }

// WithClock replaces the clock that schedules token renewal.
func WithClock(c clock.Clock) Option { return func(p *vaultProvider) { p.clock = c } }

type vaultProvider struct {
	onLogin func(method string)
	timeout time.Duration
	clock   clock.Clock
}

// New returns the Vault/OpenBao provider.
func New(opts ...Option) provider.Provider {
	p := &vaultProvider{timeout: defaultTimeout, clock: clock.RealClock{}}
	for _, o := range opts {
		o(p)
	}
	if p.timeout <= 0 {
		p.timeout = defaultTimeout // no call goes without a deadline
	}
	return p
}

func (p *vaultProvider) Name() string { return Name }

// ValidateStore checks what CEL cannot: the server URL, the CA bundle's PEM, and the
// auth method's completeness. No network calls.
func (p *vaultProvider) ValidateStore(store v1alpha1.GenericStore) error {
	spec := store.GetSpec().Provider.Vault
	if spec == nil {
		return fmt.Errorf("spec.provider.vault: not set: %w", errInvalid)
	}
	u, err := url.Parse(spec.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("spec.provider.vault.server: %q is not an http(s) URL with a host: %w", spec.Server, errInvalid)
	}
	switch spec.Version {
	case "", v1alpha1.VaultKVv1, v1alpha1.VaultKVv2:
	default:
		return fmt.Errorf("spec.provider.vault.version: %q is not v1 or v2: %w", spec.Version, errInvalid)
	}
	if strings.HasPrefix(spec.Path, "/") || strings.HasSuffix(spec.Path, "/") {
		return fmt.Errorf("spec.provider.vault.path: must not start or end with a slash: %w", errInvalid)
	}
	if spec.Path != "" {
		// Every KV request path is built under this mount; a mount that Vault would
		// read differently ("team-a/../sys") would take them all elsewhere.
		if err := provider.CheckKey(spec.Path); err != nil {
			return fmt.Errorf("spec.provider.vault.path: %w: %w", err, errInvalid)
		}
	}
	if spec.CABundle != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(spec.CABundle))
		if err != nil {
			return fmt.Errorf("spec.provider.vault.caBundle: not base64: %w", errInvalid)
		}
		if err := checkPEM(raw); err != nil {
			return fmt.Errorf("spec.provider.vault.caBundle: %w: %w", err, errInvalid)
		}
	}
	if cp := spec.CAProvider; cp != nil && cp.Type != v1alpha1.CAProviderSecret && cp.Type != v1alpha1.CAProviderConfigMap {
		return fmt.Errorf("spec.provider.vault.caProvider.type: %q is not Secret or ConfigMap: %w", cp.Type, errInvalid)
	}
	a := spec.Auth
	n := 0
	for _, set := range []bool{a.TokenSecretRef != nil, a.AppRole != nil, a.Kubernetes != nil, a.JWT != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("spec.provider.vault.auth: exactly one of tokenSecretRef, appRole, kubernetes or jwt must be set: %w", errInvalid)
	}
	// Auth mount paths become request paths (auth/<path>/login) sent with the
	// tenant's credentials: the same canonical rule as keys.
	for field, mount := range map[string]string{"appRole.path": authPath(a.AppRole != nil, func() string { return a.AppRole.Path }),
		"kubernetes.mountPath": authPath(a.Kubernetes != nil, func() string { return a.Kubernetes.MountPath }),
		"jwt.path":             authPath(a.JWT != nil, func() string { return a.JWT.Path })} {
		if mount == "" {
			continue
		}
		if err := provider.CheckKey(mount); err != nil {
			return fmt.Errorf("spec.provider.vault.auth.%s: %w: %w", field, err, errInvalid)
		}
	}
	if r := a.AppRole; r != nil && (r.RoleID == "") == (r.RoleRef == nil) {
		return fmt.Errorf("spec.provider.vault.auth.appRole: exactly one of roleId or roleRef must be set: %w", errInvalid)
	}
	if k := a.Kubernetes; k != nil && k.Role == "" {
		return fmt.Errorf("spec.provider.vault.auth.kubernetes.role: required: %w", errInvalid)
	}
	if j := a.JWT; j != nil {
		if j.Role == "" {
			return fmt.Errorf("spec.provider.vault.auth.jwt.role: required: %w", errInvalid)
		}
		if (j.SecretRef == nil) == (j.KubernetesServiceAccountToken == nil) {
			return fmt.Errorf("spec.provider.vault.auth.jwt: exactly one of secretRef or kubernetesServiceAccountToken must be set: %w", errInvalid)
		}
	}
	return nil
}

func checkPEM(raw []byte) error {
	found := false
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return errors.New("a PEM CERTIFICATE block does not parse")
		}
		found = true
	}
	if !found {
		return errors.New("no PEM CERTIFICATE block")
	}
	return nil
}

// NewClient builds a client for store. Credentials held in Secrets are read now (a
// missing one fails fast with ErrCredentials); the login itself happens on first use.
func (p *vaultProvider) NewClient(ctx context.Context, store v1alpha1.GenericStore, kube provider.Kube, namespace string) (provider.Client, error) {
	if err := p.ValidateStore(store); err != nil {
		return nil, err
	}
	spec := store.GetSpec().Provider.Vault
	caPEM, err := caBundle(ctx, store, kube)
	if err != nil {
		return nil, err
	}
	va, err := newAPI(spec, caPEM, p.timeout, p.clock)
	if err != nil {
		return nil, err
	}
	auth, err := newAuthenticator(ctx, store, kube, namespace)
	if err != nil {
		return nil, err
	}
	return newClient(va, auth, spec, p.clock, p.onLogin), nil
}

// caBundle returns the PEM bundle to trust (nil: the system pool), inline or read
// from the Secret or ConfigMap caProvider names.
func caBundle(ctx context.Context, store v1alpha1.GenericStore, kube provider.Kube) ([]byte, error) {
	spec := store.GetSpec().Provider.Vault
	if spec.CABundle != "" {
		return base64.StdEncoding.DecodeString(strings.TrimSpace(spec.CABundle))
	}
	cp := spec.CAProvider
	if cp == nil {
		return nil, nil
	}
	var b []byte
	var err error
	if cp.Type == v1alpha1.CAProviderConfigMap {
		b, err = provider.ReadConfigMapKey(ctx, kube, store, cp.Namespace, cp.Name, cp.Key)
	} else {
		b, err = provider.ReadSecretKey(ctx, kube, store, v1alpha1.SecretKeySelector{Name: cp.Name, Key: cp.Key, Namespace: cp.Namespace})
	}
	if err != nil {
		return nil, fmt.Errorf("spec.provider.vault.caProvider: %w", err)
	}
	if err := checkPEM(b); err != nil {
		return nil, fmt.Errorf("spec.provider.vault.caProvider: %s key %q: %w: %w", strings.ToLower(cp.Type), cp.Key, err, errInvalid)
	}
	return b, nil
}

// Client is a Vault client for one store identity. It is safe for concurrent use.
type Client struct {
	api   vaultAPI
	auth  authenticator
	mount string
	kvV1  bool
	clock clock.Clock

	onLogin func(method string)
	logins  atomic.Int64

	// probeMu serialises the KV mount probe (see confirmKV); probed and probeErr are
	// its conclusive answer, kept for the client's life.
	probeMu  sync.Mutex
	probed   bool
	probeErr error

	mu      sync.Mutex // guards the fields below; held during a login so logins never overlap
	cur     tokenInfo
	expires time.Time // zero: the token does not expire
	gen     uint64    // bumped per login, so a stale renewer stops
	closed  bool

	bg     context.Context // cancelled by Close: stops the renewer
	cancel context.CancelFunc
}

func newClient(va vaultAPI, auth authenticator, spec *v1alpha1.VaultProvider, clk clock.Clock, onLogin func(string)) *Client {
	bg, cancel := context.WithCancel(context.Background())
	return &Client{
		api: va, auth: auth, mount: kvMountOf(spec), kvV1: spec.Version == v1alpha1.VaultKVv1,
		clock: clk, onLogin: onLogin, bg: bg, cancel: cancel,
	}
}

// kvMountOf is the store's KV mount.
func kvMountOf(spec *v1alpha1.VaultProvider) string {
	if mount := strings.Trim(spec.Path, "/"); mount != "" {
		return mount
	}
	return defaultKVMount
}

// Logins is how many times this client logged in (auth method logins only; a
// tokenSecretRef token is not a login). In steady state it does not grow.
func (c *Client) Logins() int64 { return c.logins.Load() }

// Check looks up the client's own token: cheap, authenticated, allowed by Vault's
// default policy.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.call(ctx, func(tok string) (*api.Secret, error) {
		return c.api.Read(ctx, tok, "auth/token/lookup-self", nil)
	})
	if err != nil {
		return fmt.Errorf("vault token lookup: %w", err)
	}
	return nil
}

// call runs fn with the current token. A 403 either means the token is no longer
// valid (revoked, expired) or that its policy forbids the call; only the first is
// cured by logging in again, so the token is looked up, and only a lookup that
// Vault answers with 403 leads to one more login and one retry.
func (c *Client) call(ctx context.Context, fn func(token string) (*api.Secret, error)) (*api.Secret, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	sec, err := fn(tok)
	if err == nil || statusOf(err) != http.StatusForbidden {
		return sec, classify(err)
	}
	_, lerr := c.api.Read(ctx, tok, "auth/token/lookup-self", nil)
	if lerr == nil {
		return nil, classify(err) // the token is fine: the policy denies this call
	}
	if statusOf(lerr) != http.StatusForbidden {
		// Vault could not say (a failover, an outage): the token is most likely
		// fine (tokens live in Raft), and logging in again would only add a token.
		return nil, classify(lerr)
	}
	tok2, lerr := c.relogin(ctx, tok)
	if lerr != nil {
		return nil, lerr
	}
	if tok2 == tok {
		// A token from a Secret that Vault no longer accepts: nothing to log in with.
		return nil, wrap(provider.ErrAuth, "403", err)
	}
	sec, err = fn(tok2)
	return sec, classify(err)
}

// vaultAPI is the slice of vault/api this package uses. Every call names its token,
// so one HTTP client serves every token this Client ever holds without races.
// A Vault error status (4xx/5xx) is an *api.ResponseError; a success without a body
// (204) is nil, nil, and callers decide whether an answer without data will do.
type vaultAPI interface {
	// Read GETs path.
	Read(ctx context.Context, token, path string, query url.Values) (*api.Secret, error)
	// List LISTs path.
	List(ctx context.Context, token, path string) (*api.Secret, error)
	// Write PUTs body to path.
	Write(ctx context.Context, token, path string, body map[string]any) (*api.Secret, error)
}

// apiClient sends every request through vault/api's raw calls and decodes the body
// itself: the parsed calls (Logical().List, Write) turn a 404 into nil, nil, which
// would make "no such mount" look like "nothing there", and ParseSecret files a body
// that is not Vault's JSON under Data as if it were a secret.
type apiClient struct {
	c *api.Client
	// timeout bounds each call, body read included. vault/api's own Timeout is left
	// at 0: WriteRaw cancels its timeout context on return, before the body is read.
	timeout time.Duration
}

func newAPI(spec *v1alpha1.VaultProvider, caPEM []byte, timeout time.Duration, clk clock.Clock) (vaultAPI, error) {
	hc := cleanhttp.DefaultPooledClient()
	hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	// Redirects (a standby's 307 to the active node) are followed by
	// followRedirect, in the transport.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg := &api.Config{
		Address:          spec.Server,
		HttpClient:       hc,
		DisableRedirects: true,
		// Failover retries are ours (retrying): bounded by the call's deadline and
		// never for a request that may have issued a credential.
		MaxRetries: 0,
	}
	if len(caPEM) > 0 {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACertBytes: caPEM}); err != nil {
			return nil, fmt.Errorf("spec.provider.vault: CA bundle: %w: %w", err, errInvalid)
		}
	}
	// After ConfigureTLS, which needs the bare *http.Transport: a hostile or broken
	// server cannot make us buffer more than MaxResponseBytes (vault/api reads whole
	// bodies, error bodies included).
	// Every request (logins, renewals, revocations, probes, a followed standby
	// redirect) is counted once as the backend sees it: the counter is inside the
	// redirect follower.
	counted := provider.CountRequests(hc.Transport, Name, requests{})
	hc.Transport = provider.LimitResponses(followRedirect{next: counted}, provider.MaxResponseBytes)
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("spec.provider.vault.server: %w: %w", err, errInvalid)
	}
	// vault/api picks these up from the operator's environment; the store decides.
	c.ClearToken()
	c.SetNamespace(spec.Namespace)
	if spec.Namespace == "" {
		c.ClearNamespace()
	}
	return retrying{next: apiClient{c: c, timeout: timeout}, timeout: timeout, clock: clk, kvMount: kvMountOf(spec), outage: &outage{}}, nil
}

func (a apiClient) with(token string) *api.Logical {
	return a.c.WithRequestCallbacks(func(r *api.Request) { r.ClientToken = token }).Logical()
}

func (a apiClient) Read(ctx context.Context, token, path string, query url.Values) (*api.Secret, error) {
	return a.do(ctx, func(ctx context.Context) (*api.Response, error) {
		return a.with(token).ReadRawWithDataWithContext(ctx, path, query)
	})
}

// List is Vault's GET ?list=true form of LIST, sent raw so a 404 keeps its errors.
func (a apiClient) List(ctx context.Context, token, path string) (*api.Secret, error) {
	return a.do(ctx, func(ctx context.Context) (*api.Response, error) {
		return a.with(token).ReadRawWithDataWithContext(ctx, path, url.Values{"list": {"true"}})
	})
}

func (a apiClient) Write(ctx context.Context, token, path string, body map[string]any) (*api.Secret, error) {
	if body == nil {
		body = map[string]any{}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request body: %w", errInvalid)
	}
	return a.do(ctx, func(ctx context.Context) (*api.Response, error) {
		return a.with(token).WriteRawWithContext(ctx, path, raw)
	})
}

// do sends one request under the client's deadline and decodes its success body
// before the deadline's context is released.
func (a apiClient) do(ctx context.Context, send func(context.Context) (*api.Response, error)) (*api.Secret, error) {
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	resp, err := send(ctx)
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.Body == nil {
		return nil, nil
	}
	return decodeSecret(resp.Body)
}

// decodeSecret parses a Vault success body strictly: nothing (204, or an empty 200)
// is nil, nil; anything that is not one JSON object is a BadResponse, never data.
func decodeSecret(r io.Reader) (*api.Secret, error) {
	body, err := io.ReadAll(r) // bounded by provider.LimitResponses
	if err != nil {
		return nil, classify(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var s api.Secret
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&s); err != nil {
		return nil, wrap(provider.ErrUnavailable, codeBadResponse, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, wrap(provider.ErrUnavailable, codeBadResponse, errors.New("data after the JSON value"))
	}
	return &s, nil
}

// statusOf is the HTTP status of a Vault error response, 0 for other errors.
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// vaultErrors are Vault's own error strings of a response. They may quote request
// values and are used only to classify, never rendered.
func vaultErrors(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return strings.ToLower(strings.Join(re.Errors, " "))
	}
	return ""
}

// classify maps a vault/api error to a provider sentinel. The raw error stays the
// cause (for errors.As) and never reaches provider.SafeMessage.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		if error(pe) == err { //nolint:errorlint // identity: err IS our *provider.Error, not one wrapped in an HTTP error
			return err
		}
		// Ours, but inside an HTTP-layer error (a body over the size limit inside a
		// *url.Error that quotes the URL): keep its kind and code, render only those.
		return wrap(pe.Kind, pe.Code, err)
	}
	if code := statusOf(err); code == http.StatusNotFound {
		kind, c := classify404(err)
		return wrap(kind, c, err)
	} else if code != 0 {
		var kind error
		switch {
		case code == http.StatusForbidden:
			kind = provider.ErrAccessDenied
		case code == http.StatusUnauthorized:
			kind = provider.ErrAuth
		case code == http.StatusTooManyRequests:
			kind = provider.ErrThrottled
		case code >= 500, code == http.StatusPreconditionFailed, code >= 300 && code < 400:
			// 3xx: a redirect that was not followed (a second hop, or https to http).
			kind = provider.ErrUnavailable
		default:
			kind = provider.ErrInvalid
		}
		return wrap(kind, strconv.Itoa(code), err)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return wrap(provider.ErrUnavailable, "canceled", err)
	case errors.Is(err, context.DeadlineExceeded):
		return wrap(provider.ErrUnavailable, "timeout", err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return wrap(provider.ErrUnavailable, "timeout", err)
		}
		return wrap(provider.ErrUnavailable, "connection", err)
	}
	// Anything else from the HTTP layer or a body that does not parse: the server
	// is not answering like Vault.
	return wrap(provider.ErrUnavailable, "response", err)
}

// classify404 tells Vault's "nothing at this path" from the other 404s. OpenBao
// 2.4 answers a missing secret with an empty error list (a deleted KV v2 version,
// and a KV v1 path on a v2 mount, with data or warnings and no errors); a path no
// mount serves with "no handler for route ...", a namespace that does not exist
// with "namespace not found"; a proxy in front of Vault with a body that is not
// Vault's JSON. Only the first is ErrNotFound: the others must not prune anything.
func classify404(err error) (error, string) { //nolint:staticcheck // ST1008: the first result is a kind sentinel, not a failure
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return provider.ErrUnavailable, "404"
	}
	switch msg := strings.ToLower(strings.Join(re.Errors, " ")); {
	case re.RawError:
		return provider.ErrUnavailable, codeBadResponse
	case len(re.Errors) == 0:
		return provider.ErrNotFound, "404"
	case strings.Contains(msg, "no handler for route"), strings.Contains(msg, "unsupported path"),
		strings.Contains(msg, "route entry not found"):
		return provider.ErrInvalid, codeNoRoute
	case strings.Contains(msg, "namespace not found"):
		return provider.ErrInvalid, codeNoNamespace
	}
	return provider.ErrUnavailable, "404"
}

// wrap builds the *provider.Error for a Vault failure: SafeMessage renders its kind
// and code only, never the raw cause.
func wrap(kind error, code string, cause error) error { return provider.Wrap(kind, code, cause) }

// Errors this package makes itself carry their sentinel as a *provider.Error, so
// provider.SafeMessage keeps the context written in front of it (key names, field
// paths), which it would otherwise drop.
var (
	errInvalid     = provider.Wrap(provider.ErrInvalid, "", nil)
	errNotFound    = provider.Wrap(provider.ErrNotFound, "", nil)
	errAuth        = provider.Wrap(provider.ErrAuth, "", nil)
	errUnavailable = provider.Wrap(provider.ErrUnavailable, "", nil)

	// Vault answered, but not with what the call needs: an empty or unparseable
	// success is an outage-like ProviderError, never "not found".
	errEmptyResponse = provider.Wrap(provider.ErrUnavailable, codeEmptyResponse, nil)
	errBadResponse   = provider.Wrap(provider.ErrUnavailable, codeBadResponse, nil)
	// The store names a KV mount of the other version: its reads would 404 as if
	// every key were missing.
	errKVMismatch = provider.Wrap(provider.ErrInvalid, codeKVVersionMismatch, nil)
)

// Codes of the failures above, as provider.SafeMessage renders them.
const (
	codeEmptyResponse     = "EmptyResponse"
	codeBadResponse       = "BadResponse"
	codeNoRoute           = "NoRoute"
	codeNoNamespace       = "NoNamespace"
	codeKVVersionMismatch = "KVVersionMismatch"
)

// refuse is the error for a key, path or mount that is not canonical. It names
// what was refused and why (CheckKey never quotes the text), not the text itself.
func refuse(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, err, errInvalid)
}

// authPath is the mount path an auth method names ("" when the method is not set).
func authPath(set bool, path func() string) string {
	if !set {
		return ""
	}
	return path()
}
