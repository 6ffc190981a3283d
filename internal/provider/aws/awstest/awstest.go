// Package awstest has what the AWS provider tests share: a fake provider.Kube, store
// builders and fast retry settings. It is imported by tests only.
package awstest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
)

// TokenRequest is one ServiceAccountToken call seen by Kube.
type TokenRequest struct {
	Namespace, Name string
	Audiences       []string
	TTL             time.Duration
}

// Kube is a fake provider.Kube: Secrets keyed "namespace/name/key", tokens from Token.
type Kube struct {
	mu       sync.Mutex
	Secrets  map[string][]byte
	Token    func(namespace, name string, audiences []string) (string, error)
	Requests []TokenRequest
	reads    atomic.Int64
}

func (k *Kube) SecretKey(_ context.Context, namespace, name, key string) ([]byte, error) {
	k.reads.Add(1)
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.Secrets[namespace+"/"+name+"/"+key]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s key %q: %w", namespace, name, key, provider.ErrCredentials)
	}
	return v, nil
}

func (k *Kube) ServiceAccountToken(_ context.Context, namespace, name string, audiences []string, ttl time.Duration) (string, error) {
	k.mu.Lock()
	k.Requests = append(k.Requests, TokenRequest{namespace, name, audiences, ttl})
	f := k.Token
	k.mu.Unlock()
	if f == nil {
		return "", fmt.Errorf("serviceaccount %s/%s: %w", namespace, name, provider.ErrCredentials)
	}
	return f(namespace, name, audiences)
}

// TokenRequests returns the token requests seen so far.
func (k *Kube) TokenRequests() []TokenRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]TokenRequest{}, k.Requests...)
}

// Store is a namespaced SecretStore "aws" in namespace "team-a" for service, aimed at
// endpoint, adjusted by mutate.
func Store(service v1alpha1.AWSService, endpoint string, mutate ...func(*v1alpha1.AWSProvider)) *v1alpha1.SecretStore {
	s := &v1alpha1.SecretStore{
		ObjectMeta: metav1.ObjectMeta{Name: "aws", Namespace: "team-a"},
		Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{
			Service: service, Region: "eu-west-1", Endpoint: endpoint,
		}}},
	}
	for _, m := range mutate {
		m(s.Spec.Provider.AWS)
	}
	return s
}

// StaticAuth points the store at the "aws-creds" Secret keys StaticKube fills.
func StaticAuth(p *v1alpha1.AWSProvider) {
	p.Auth = &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
		AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "access-key-id"},
		SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "secret-access-key"},
	}}
}

// StaticKube holds the key pair in team-a/aws-creds (with a trailing newline, as
// Secrets made from files have).
func StaticKube(akid, secret string) *Kube {
	return &Kube{Secrets: map[string][]byte{
		"team-a/aws-creds/access-key-id":     []byte(akid + "\n"),
		"team-a/aws-creds/secret-access-key": []byte(secret),
	}}
}

// FastOptions retries quickly, so fault tests do not sleep.
func FastOptions() awsp.Options {
	return awsp.Options{MaxAttempts: 3, MaxBackoff: 5 * time.Millisecond}
}

// Canned is an http.RoundTripper that answers every request with one status and
// body (a fuzz target's input). Use it through HTTPClient.
type Canned struct {
	mu       sync.Mutex
	status   int
	body     []byte
	requests int
}

// Set makes every following request answer status and body.
func (c *Canned) Set(status int, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.body, c.requests = status, body, 0
}

// Requests counts the requests since Set.
func (c *Canned) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

func (c *Canned) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body) // drained like a server would; a read error changes nothing
		r.Body.Close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	return &http.Response{
		StatusCode: c.status, Status: http.StatusText(c.status), Header: h,
		Body: io.NopCloser(bytes.NewReader(c.body)), ContentLength: int64(len(c.body)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Request: r,
	}, nil
}

// HTTPClient is an SDK HTTP client that sends every request to rt, without a
// network. The SDK refuses any client but its own BuildableClient when a CA bundle is
// configured (it adds the bundle to the client's transport), so AWS_CA_BUNDLE is
// cleared for t.
func HTTPClient(t testing.TB, rt http.RoundTripper) awssdk.HTTPClient {
	t.Setenv("AWS_CA_BUNDLE", "")
	return doer(rt.RoundTrip)
}

type doer func(*http.Request) (*http.Response, error)

func (d doer) Do(r *http.Request) (*http.Response, error) { return d(r) }
