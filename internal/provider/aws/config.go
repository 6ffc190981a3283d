// Package aws is the code both AWS providers (Secrets Manager and Parameter Store)
// share, written once: store validation, the aws.Config a client is built from
// (region, endpoint override, credentials: default chain, static keys, web identity,
// assumed role), a bounded retryer, an HTTP client shared by every AWS client, the
// bounds every call gets (a deadline, a response size limit, a page cap), error
// mapping to the provider sentinels, and the per-request metrics.
package aws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// DefaultAudience is the token audience requested for auth.jwt when the store names
// none: the audience AWS's web identity federation (IRSA) expects by default. It is an
// identifier inside the token, never a host the operator contacts.
const DefaultAudience = "sts.amazonaws.com"

// tokenTTL is the lifetime of ServiceAccount tokens requested for web identity.
const tokenTTL = time.Hour

// DefaultTimeout bounds one AWS API call (retries and the credential fetch it waits
// for included) when Options.Timeout is not set.
const DefaultTimeout = 30 * time.Second

// Options tune what every AWS client shares. The zero value is the production setting.
type Options struct {
	// HTTPClient sends every request (default: one client shared by all AWS clients
	// of the process, so thousands of stores do not each hold a connection pool).
	// Whatever it is, responses larger than provider.MaxResponseBytes fail.
	HTTPClient awssdk.HTTPClient
	// Timeout bounds every API call, STS calls made for credentials included
	// (default DefaultTimeout): a backend that accepts and never answers must not
	// hold a reconcile.
	Timeout time.Duration
	// MaxAttempts per API call, retries of throttling, 5xx and connection errors
	// included (default 3).
	MaxAttempts int
	// MaxBackoff caps the delay between attempts (default 2s).
	MaxBackoff time.Duration
}

// Option adjusts Options; the AWS providers' New takes them, as vault.New does.
type Option func(*Options)

// WithTimeout bounds every AWS API call, STS included (default 30s).
func WithTimeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

var sharedHTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 32
})

func (o Options) withDefaults() Options {
	if o.HTTPClient == nil {
		o.HTTPClient = sharedHTTPClient
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 3
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// ValidateStore checks an AWS store spec for service without network calls. Errors
// name the field and wrap provider.ErrInvalid.
func ValidateStore(store v1alpha1.GenericStore, service v1alpha1.AWSService) error {
	p := store.GetSpec().Provider.AWS
	if p == nil {
		return fmt.Errorf("spec.provider.aws: not set: %w", provider.ErrInvalid)
	}
	if p.Service != service {
		return fmt.Errorf("spec.provider.aws.service: %q, want %q: %w", p.Service, service, provider.ErrInvalid)
	}
	if p.Region == "" {
		return fmt.Errorf("spec.provider.aws.region: required: %w", provider.ErrInvalid)
	}
	if p.Endpoint != "" {
		u, err := url.Parse(p.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("spec.provider.aws.endpoint: %q is not an http(s) URL with a host: %w", p.Endpoint, provider.ErrInvalid)
		}
	}
	if p.ExternalID != "" && p.Role == "" {
		return fmt.Errorf("spec.provider.aws.externalID: requires role: %w", provider.ErrInvalid)
	}
	a := p.Auth
	if a == nil {
		return nil
	}
	if a.SecretRef != nil && a.JWT != nil {
		return fmt.Errorf("spec.provider.aws.auth: set at most one of secretRef or jwt: %w", provider.ErrInvalid)
	}
	cluster := store.GetKind() == "ClusterSecretStore"
	if r := a.SecretRef; r != nil {
		refs := map[string]*v1alpha1.SecretKeySelector{
			"accessKeyIDSecretRef":     &r.AccessKeyIDSecretRef,
			"secretAccessKeySecretRef": &r.SecretAccessKeySecretRef,
			"sessionTokenSecretRef":    r.SessionTokenSecretRef,
		}
		for _, field := range []string{"accessKeyIDSecretRef", "secretAccessKeySecretRef", "sessionTokenSecretRef"} {
			sel := refs[field]
			if sel == nil {
				continue
			}
			path := "spec.provider.aws.auth.secretRef." + field
			switch {
			case sel.Name == "" || sel.Key == "":
				return fmt.Errorf("%s: name and key are required: %w", path, provider.ErrInvalid)
			case cluster && sel.Namespace == "":
				return fmt.Errorf("%s.namespace: required in a ClusterSecretStore: %w", path, provider.ErrInvalid)
			case !cluster && sel.Namespace != "":
				return fmt.Errorf("%s.namespace: a SecretStore reads Secrets in its own namespace only: %w", path, provider.ErrInvalid)
			}
		}
	}
	if j := a.JWT; j != nil {
		if p.Role == "" {
			return fmt.Errorf("spec.provider.aws.auth.jwt: requires role (the role assumed with the web identity): %w", provider.ErrInvalid)
		}
		if j.ServiceAccountRef.Name == "" {
			return fmt.Errorf("spec.provider.aws.auth.jwt.serviceAccountRef.name: required: %w", provider.ErrInvalid)
		}
		if !cluster && j.ServiceAccountRef.Namespace != "" {
			return fmt.Errorf("spec.provider.aws.auth.jwt.serviceAccountRef.namespace: a SecretStore uses ServiceAccounts in its own namespace only: %w", provider.ErrInvalid)
		}
	}
	return nil
}

// NewConfig builds the aws.Config for store: region, endpoint override (used by the
// service client and by STS alike), credentials and the bounded retryer. consumer is
// the ExternalSecret's namespace (ClusterSecretStore ServiceAccount references without
// a namespace resolve there). It makes no AWS call: credentials are fetched on first
// use and cached until shortly before they expire.
func NewConfig(ctx context.Context, store v1alpha1.GenericStore, kube provider.Kube, consumer string, opts Options) (awssdk.Config, error) {
	opts = opts.withDefaults()
	p := store.GetSpec().Provider.AWS
	if p == nil {
		return awssdk.Config{}, fmt.Errorf("spec.provider.aws: not set: %w", provider.ErrInvalid)
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithRegion(p.Region),
		config.WithHTTPClient(opts.HTTPClient),
		config.WithRetryer(func() awssdk.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = opts.MaxAttempts
				o.MaxBackoff = opts.MaxBackoff
			})
		}),
	}
	var static awssdk.CredentialsProvider
	if p.Auth != nil && p.Auth.SecretRef != nil {
		var err error
		if static, err = staticCredentials(ctx, store, kube, p.Auth.SecretRef); err != nil {
			return awssdk.Config{}, err
		}
		loadOpts = append(loadOpts, config.WithCredentialsProvider(static))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		// Only local configuration (environment, shared files) is read here.
		return awssdk.Config{}, fmt.Errorf("spec.provider.aws: load AWS configuration: %v: %w", err, provider.ErrInvalid) //nolint:errorlint // the loader's error is quoted as text; only ErrInvalid is for errors.Is
	}
	if p.Endpoint != "" {
		cfg.BaseEndpoint = awssdk.String(p.Endpoint)
	}
	// Both bounds are set before the STS clients below copy cfg: the credentials cache
	// runs STS calls detached from the caller's context, so they need their own
	// deadline. The limit wraps the client LoadDefaultConfig finished (it may have
	// added a CA bundle to its transport).
	// Every request of the clients built from cfg (each page, each retry, each STS
	// call for credentials) is counted in secretsync_provider_requests_total.
	cfg.HTTPClient = limitResponses(cfg.HTTPClient, metricsName(p.Service))
	cfg.APIOptions = append(cfg.APIOptions, deadline(opts.Timeout), refuseEmptySuccess)

	session := sessionName(store, consumer)
	switch {
	case p.Auth != nil && p.Auth.JWT != nil:
		sa := p.Auth.JWT.ServiceAccountRef
		aud := sa.Audiences
		if len(aud) == 0 {
			aud = []string{DefaultAudience}
		}
		retriever := &tokenRetriever{kube: kube, namespace: provider.ServiceAccountNamespace(store, sa, consumer), name: sa.Name, audiences: aud}
		// AssumeRoleWithWebIdentity is unsigned: the STS client needs no credentials.
		stsCfg := cfg.Copy()
		stsCfg.Credentials = nil
		web := stscreds.NewWebIdentityRoleProvider(sts.NewFromConfig(stsCfg), p.Role, retriever, func(o *stscreds.WebIdentityRoleOptions) {
			o.RoleSessionName = session
		})
		cfg.Credentials = cache(web)
	case p.Role != "":
		// Assume the role with the base credentials (static keys or the default chain).
		base := sts.NewFromConfig(cfg.Copy())
		ext := p.ExternalID
		assume := stscreds.NewAssumeRoleProvider(base, p.Role, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = session
			if ext != "" {
				o.ExternalID = awssdk.String(ext)
			}
		})
		cfg.Credentials = cache(assume)
	}
	if c, ok := cfg.Credentials.(*awssdk.CredentialsCache); ok {
		cfg.APIOptions = append(cfg.APIOptions, invalidateOnRejectedCredentials(c))
	}
	if cfg.Credentials != nil {
		cfg.Credentials = markedCredentials{cfg.Credentials}
	}
	return cfg, nil
}

// markedCredentials marks every failure to get credentials (no credentials in the
// default chain, a refused AssumeRole, a failed token request), so MapError can tell
// it from a failure of the call itself.
type markedCredentials struct{ awssdk.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (awssdk.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err: err}
	}
	return c, nil
}

type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "get AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// rejectedCredentials are the codes with which AWS refuses credentials that were
// valid when cached (expired or revoked sessions).
var rejectedCredentials = map[string]bool{
	"ExpiredTokenException": true, "ExpiredToken": true, "RequestExpired": true,
	"UnrecognizedClientException": true, "InvalidClientTokenId": true,
}

// invalidateOnRejectedCredentials drops cached credentials AWS refused, so the next
// call fetches new ones (re-assumes the role, requests a new token) instead of
// failing until the cached expiry.
func invalidateOnRejectedCredentials(c *awssdk.CredentialsCache) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("secretsyncInvalidateCredentials",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				var ae smithy.APIError
				if err != nil && errors.As(err, &ae) && rejectedCredentials[ae.ErrorCode()] && !viaSTS(err) {
					c.Invalidate()
				}
				return out, md, err
			}), middleware.After)
	}
}

// cache refreshes credentials a little before they expire, so a request never races
// the expiry.
func cache(p awssdk.CredentialsProvider) *awssdk.CredentialsCache {
	return awssdk.NewCredentialsCache(p, func(o *awssdk.CredentialsCacheOptions) {
		o.ExpiryWindow = 5 * time.Minute
		o.ExpiryWindowJitterFrac = 0.5
	})
}

func staticCredentials(ctx context.Context, store v1alpha1.GenericStore, kube provider.Kube, r *v1alpha1.AWSSecretRef) (awssdk.CredentialsProvider, error) {
	read := func(field string, sel v1alpha1.SecretKeySelector) (string, error) {
		b, err := provider.ReadSecretKey(ctx, kube, store, sel)
		if err != nil {
			return "", fmt.Errorf("spec.provider.aws.auth.secretRef.%s: %w", field, err)
		}
		// Secrets made from files often end with a newline; keys never contain spaces.
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("spec.provider.aws.auth.secretRef.%s: secret key %q is empty: %w", field, sel.Key, provider.ErrCredentials)
		}
		return v, nil
	}
	akid, err := read("accessKeyIDSecretRef", r.AccessKeyIDSecretRef)
	if err != nil {
		return nil, err
	}
	secret, err := read("secretAccessKeySecretRef", r.SecretAccessKeySecretRef)
	if err != nil {
		return nil, err
	}
	var token string
	if r.SessionTokenSecretRef != nil {
		if token, err = read("sessionTokenSecretRef", *r.SessionTokenSecretRef); err != nil {
			return nil, err
		}
	}
	return credentials.NewStaticCredentialsProvider(akid, secret, token), nil
}

var sessionUnsafe = regexp.MustCompile(`[^\w+=,.@-]`)

// sessionName names role sessions after the operator and the store (and the consumer
// namespace when it decides the identity), so CloudTrail shows who read what.
func sessionName(store v1alpha1.GenericStore, consumer string) string {
	s := "secretsync"
	if ns := store.GetNamespace(); ns != "" {
		s += "@" + ns
	} else if consumer != "" && provider.UsesConsumerNamespace(store) {
		s += "@" + consumer
	}
	s += "." + store.GetName()
	s = sessionUnsafe.ReplaceAllString(s, "-")
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// tokenRetriever requests a fresh ServiceAccount token each time STS credentials are
// (re)fetched; the SDK interface carries no context, so it bounds the call itself.
type tokenRetriever struct {
	kube      provider.Kube
	namespace string
	name      string
	audiences []string
}

func (r *tokenRetriever) GetIdentityToken() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := r.kube.ServiceAccountToken(ctx, r.namespace, r.name, r.audiences, tokenTTL)
	if err != nil {
		return nil, &tokenError{err: err}
	}
	return []byte(tok), nil
}

// tokenError marks a failure to obtain the ServiceAccount token (a Kubernetes-side
// failure), so MapError can report it as such rather than as an AWS error.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "request ServiceAccount token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }
