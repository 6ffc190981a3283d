package aws_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/metrics"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/awstest"
	"github.com/secretsync/secretsync/test/awsemu"
)

const role = "arn:aws:iam::123456789012:role/reader"

var ctx = context.Background()

func TestValidateStore(t *testing.T) {
	svc := v1alpha1.AWSServiceSecretsManager
	tests := []struct {
		name  string
		store v1alpha1.GenericStore
		field string // "" = valid
	}{
		{"minimal", awstest.Store(svc, ""), ""},
		{"static keys", awstest.Store(svc, "http://127.0.0.1:1", awstest.StaticAuth), ""},
		{"jwt with role", awstest.Store(svc, "", func(p *v1alpha1.AWSProvider) {
			p.Role = role
			p.Auth = &v1alpha1.AWSAuth{JWT: &v1alpha1.AWSJWTAuth{ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app"}}}
		}), ""},
		{"wrong service", awstest.Store(v1alpha1.AWSServiceParameterStore, ""), "spec.provider.aws.service"},
		{"no region", awstest.Store(svc, "", func(p *v1alpha1.AWSProvider) { p.Region = "" }), "spec.provider.aws.region"},
		{"bad endpoint", awstest.Store(svc, "ftp://x"), "spec.provider.aws.endpoint"},
		{"endpoint without host", awstest.Store(svc, "http://"), "spec.provider.aws.endpoint"},
		{"external id without role", awstest.Store(svc, "", func(p *v1alpha1.AWSProvider) { p.ExternalID = "x" }), "spec.provider.aws.externalID"},
		{"jwt without role", awstest.Store(svc, "", func(p *v1alpha1.AWSProvider) {
			p.Auth = &v1alpha1.AWSAuth{JWT: &v1alpha1.AWSJWTAuth{ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app"}}}
		}), "spec.provider.aws.auth.jwt"},
		{"both auths", awstest.Store(svc, "", awstest.StaticAuth, func(p *v1alpha1.AWSProvider) {
			p.Role = role
			p.Auth.JWT = &v1alpha1.AWSJWTAuth{ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app"}}
		}), "spec.provider.aws.auth"},
		{"namespace in a SecretStore", awstest.Store(svc, "", awstest.StaticAuth, func(p *v1alpha1.AWSProvider) {
			p.Auth.SecretRef.AccessKeyIDSecretRef.Namespace = "other"
		}), "spec.provider.aws.auth.secretRef.accessKeyIDSecretRef.namespace"},
		{"no namespace in a ClusterSecretStore", clusterStore(awstest.Store(svc, "", awstest.StaticAuth)), "spec.provider.aws.auth.secretRef.accessKeyIDSecretRef.namespace"},
		{"no aws", &v1alpha1.SecretStore{}, "spec.provider.aws"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := awsp.ValidateStore(tc.store, svc)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, provider.ErrInvalid) || !strings.HasPrefix(err.Error(), tc.field+":") {
				t.Fatalf("err = %v, want ErrInvalid at %s", err, tc.field)
			}
		})
	}
}

func clusterStore(s *v1alpha1.SecretStore) *v1alpha1.ClusterSecretStore {
	c := &v1alpha1.ClusterSecretStore{Spec: s.Spec}
	c.Name = s.Name
	return c
}

// listWith builds a Secrets Manager client from the config NewConfig makes and lists.
func listWith(t *testing.T, store v1alpha1.GenericStore, kube provider.Kube, consumer string) error {
	t.Helper()
	cfg, err := awsp.NewConfig(ctx, store, kube, consumer, awstest.FastOptions())
	if err != nil {
		return err
	}
	_, err = sm.NewFromConfig(cfg).ListSecrets(ctx, &sm.ListSecretsInput{})
	return awsp.MapError(err)
}

func TestCredentialModes(t *testing.T) {
	srv := awsemu.NewTestServer(t, awsemu.Options{ExternalIDs: map[string]string{"arn:aws:iam::123456789012:role/guarded": "ext-1"}})
	akid, secret := srv.StaticCredentials()
	svc := v1alpha1.AWSServiceSecretsManager

	t.Run("static keys", func(t *testing.T) {
		if err := listWith(t, awstest.Store(svc, srv.URL(), awstest.StaticAuth), awstest.StaticKube(akid, secret), "team-a"); err != nil {
			t.Fatal(err)
		}
		if who, _ := srv.LastCaller("ListSecrets"); who.Source != "static" {
			t.Fatalf("caller %+v", who)
		}
	})
	t.Run("static keys with an unknown key id", func(t *testing.T) {
		err := listWith(t, awstest.Store(svc, srv.URL(), awstest.StaticAuth), awstest.StaticKube("AKIAUNKNOWN", secret), "team-a")
		if !errors.Is(err, provider.ErrAuth) || !strings.Contains(provider.SafeMessage(err), "UnrecognizedClientException") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing credential secret", func(t *testing.T) {
		err := listWith(t, awstest.Store(svc, srv.URL(), awstest.StaticAuth), &awstest.Kube{}, "team-a")
		if !errors.Is(err, provider.ErrCredentials) || !strings.HasPrefix(err.Error(), "spec.provider.aws.auth.secretRef.accessKeyIDSecretRef:") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("empty credential key", func(t *testing.T) {
		err := listWith(t, awstest.Store(svc, srv.URL(), awstest.StaticAuth), awstest.StaticKube(akid, " \n"), "team-a")
		if !errors.Is(err, provider.ErrCredentials) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("assume role on static keys, STS through the same endpoint", func(t *testing.T) {
		srv.ResetCalls()
		store := awstest.Store(svc, srv.URL(), awstest.StaticAuth, func(p *v1alpha1.AWSProvider) { p.Role = role })
		if err := listWith(t, store, awstest.StaticKube(akid, secret), "team-a"); err != nil {
			t.Fatal(err)
		}
		who, _ := srv.LastCaller("ListSecrets")
		if who.RoleARN != role || who.Source != "AssumeRole" || who.SessionName != "secretsync@team-a.aws" {
			t.Fatalf("caller %+v", who)
		}
		if srv.Calls("sts.AssumeRole") != 1 {
			t.Fatalf("AssumeRole calls = %d", srv.Calls("sts.AssumeRole"))
		}
	})
	t.Run("external id", func(t *testing.T) {
		guarded := func(ext string) *v1alpha1.SecretStore {
			return awstest.Store(svc, srv.URL(), awstest.StaticAuth, func(p *v1alpha1.AWSProvider) {
				p.Role, p.ExternalID = "arn:aws:iam::123456789012:role/guarded", ext
			})
		}
		if err := listWith(t, guarded("ext-1"), awstest.StaticKube(akid, secret), "team-a"); err != nil {
			t.Fatal(err)
		}
		err := listWith(t, guarded("wrong-1"), awstest.StaticKube(akid, secret), "team-a")
		if !errors.Is(err, provider.ErrAccessDenied) || !strings.Contains(provider.SafeMessage(err), "(sts:AccessDenied)") {
			t.Fatalf("err = %v / %s", err, provider.SafeMessage(err))
		}
	})
	t.Run("default chain from the environment", func(t *testing.T) {
		isolateEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", akid)
		t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
		if err := listWith(t, awstest.Store(svc, srv.URL()), &awstest.Kube{}, "team-a"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("default chain without credentials", func(t *testing.T) {
		isolateEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		err := listWith(t, awstest.Store(svc, srv.URL()), &awstest.Kube{}, "team-a")
		if !errors.Is(err, provider.ErrAuth) || provider.SafeMessage(err) != "authentication failed (NoCredentials)" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("default chain then role", func(t *testing.T) {
		isolateEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", akid)
		t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
		store := awstest.Store(svc, srv.URL(), func(p *v1alpha1.AWSProvider) { p.Role = role })
		if err := listWith(t, store, &awstest.Kube{}, "team-a"); err != nil {
			t.Fatal(err)
		}
		if who, _ := srv.LastCaller("ListSecrets"); who.RoleARN != role {
			t.Fatalf("caller %+v", who)
		}
	})
}

// isolateEnv keeps the default chain away from the machine's AWS files and metadata.
func isolateEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_ROLE_ARN", "")
	os.Unsetenv("AWS_PROFILE")
}

func TestWebIdentity(t *testing.T) {
	srv := awsemu.NewTestServer(t, awsemu.Options{})
	var mu sync.Mutex
	var auds [][]any
	srv.SetWebIdentityValidator(func(token, roleARN string) error {
		claims, err := awsemu.DecodeJWTClaims(token)
		if err != nil {
			return err
		}
		mu.Lock()
		auds = append(auds, claims["aud"].([]any))
		mu.Unlock()
		if roleARN != role {
			return fmt.Errorf("role %s not trusted", roleARN)
		}
		return nil
	})
	kube := &awstest.Kube{Token: func(ns, name string, aud []string) (string, error) {
		return awsemu.UnsignedJWT(map[string]any{"sub": "system:serviceaccount:" + ns + ":" + name, "aud": aud, "exp": time.Now().Add(time.Hour).Unix()}), nil
	}}
	jwt := func(sa v1alpha1.ServiceAccountSelector) func(*v1alpha1.AWSProvider) {
		return func(p *v1alpha1.AWSProvider) {
			p.Role = role
			p.Auth = &v1alpha1.AWSAuth{JWT: &v1alpha1.AWSJWTAuth{ServiceAccountRef: sa}}
		}
	}
	svc := v1alpha1.AWSServiceSecretsManager

	t.Run("default audience, store namespace", func(t *testing.T) {
		if err := listWith(t, awstest.Store(svc, srv.URL(), jwt(v1alpha1.ServiceAccountSelector{Name: "app"})), kube, "ignored"); err != nil {
			t.Fatal(err)
		}
		reqs := kube.TokenRequests()
		last := reqs[len(reqs)-1]
		if last.Namespace != "team-a" || last.Name != "app" || fmt.Sprint(last.Audiences) != "["+awsp.DefaultAudience+"]" || last.TTL != time.Hour {
			t.Fatalf("token request %+v", last)
		}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(auds[len(auds)-1]) != "["+awsp.DefaultAudience+"]" {
			t.Fatalf("STS saw audience %v", auds[len(auds)-1])
		}
		if who, _ := srv.LastCaller("ListSecrets"); who.Source != "AssumeRoleWithWebIdentity" || who.RoleARN != role {
			t.Fatalf("caller %+v", who)
		}
	})
	t.Run("cluster store uses the consumer namespace and custom audiences", func(t *testing.T) {
		store := clusterStore(awstest.Store(svc, srv.URL(), jwt(v1alpha1.ServiceAccountSelector{Name: "app", Audiences: []string{"aud-x"}})))
		if err := listWith(t, store, kube, "tenant-b"); err != nil {
			t.Fatal(err)
		}
		reqs := kube.TokenRequests()
		if last := reqs[len(reqs)-1]; last.Namespace != "tenant-b" || fmt.Sprint(last.Audiences) != "[aud-x]" {
			t.Fatalf("token request %+v", last)
		}
		if who, _ := srv.LastCaller("ListSecrets"); who.SessionName != "secretsync@tenant-b.aws" {
			t.Fatalf("session %q", who.SessionName)
		}
	})
	t.Run("token rejected by STS", func(t *testing.T) {
		store := awstest.Store(svc, srv.URL(), jwt(v1alpha1.ServiceAccountSelector{Name: "app"}), func(p *v1alpha1.AWSProvider) {
			p.Role = "arn:aws:iam::123456789012:role/untrusted"
		})
		err := listWith(t, store, kube, "team-a")
		if !errors.Is(err, provider.ErrAuth) || !strings.Contains(provider.SafeMessage(err), "sts:InvalidIdentityToken") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ServiceAccount missing", func(t *testing.T) {
		err := listWith(t, awstest.Store(svc, srv.URL(), jwt(v1alpha1.ServiceAccountSelector{Name: "app"})), &awstest.Kube{}, "team-a")
		if !errors.Is(err, provider.ErrCredentials) || !strings.Contains(provider.SafeMessage(err), "serviceaccount team-a/app") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("token request fails", func(t *testing.T) {
		failing := &awstest.Kube{Token: func(string, string, []string) (string, error) { return "", errors.New("forbidden") }}
		err := listWith(t, awstest.Store(svc, srv.URL(), jwt(v1alpha1.ServiceAccountSelector{Name: "app"})), failing, "team-a")
		if !errors.Is(err, provider.ErrAuth) || !strings.Contains(err.Error(), "request ServiceAccount token") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRejectedCredentialsAreRefreshed(t *testing.T) {
	srv := awsemu.NewTestServer(t, awsemu.Options{})
	akid, secret := srv.StaticCredentials()
	store := awstest.Store(v1alpha1.AWSServiceSecretsManager, srv.URL(), awstest.StaticAuth, func(p *v1alpha1.AWSProvider) { p.Role = role })
	cfg, err := awsp.NewConfig(ctx, store, awstest.StaticKube(akid, secret), "team-a", awstest.FastOptions())
	if err != nil {
		t.Fatal(err)
	}
	client := sm.NewFromConfig(cfg)
	list := func() error {
		_, err := client.ListSecrets(ctx, &sm.ListSecretsInput{})
		return awsp.MapError(err)
	}
	if err := list(); err != nil {
		t.Fatal(err)
	}
	srv.ExpireCredentials()
	if err := list(); !errors.Is(err, provider.ErrAuth) {
		t.Fatalf("with expired session: %v", err)
	}
	if err := list(); err != nil { // the cache was dropped: the role is assumed again
		t.Fatalf("after refresh: %v", err)
	}
	if n := srv.Calls("sts.AssumeRole"); n != 2 {
		t.Fatalf("AssumeRole calls = %d, want 2", n)
	}
}

func TestFaultsMapToSentinels(t *testing.T) {
	srv := awsemu.NewTestServer(t, awsemu.Options{})
	akid, secret := srv.StaticCredentials()
	cfg, err := awsp.NewConfig(ctx, awstest.Store(v1alpha1.AWSServiceSecretsManager, srv.URL(), awstest.StaticAuth), awstest.StaticKube(akid, secret), "team-a", awstest.FastOptions())
	if err != nil {
		t.Fatal(err)
	}
	client := sm.NewFromConfig(cfg)
	get := func() error {
		_, err := client.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String("nope")})
		return awsp.MapError(err)
	}
	// counted is secretsync_provider_requests_total for GetSecretValue, by result.
	counted := func() map[string]float64 {
		m := map[string]float64{}
		for _, r := range []string{provider.ResultOK, provider.ResultNotFound, provider.ResultDenied, provider.ResultThrottled,
			provider.ResultUnavailable, provider.ResultTimeout, provider.ResultError} {
			m[r] = testutil.ToFloat64(metrics.ProviderRequests.WithLabelValues("aws-secretsmanager", "GetSecretValue", r))
		}
		return m
	}
	tests := []struct {
		name     string
		fault    *awsemu.Fault
		want     error
		wantCode string
		// wantCounted is the requests counter's increase by result: one per attempt.
		wantCounted map[string]float64
	}{
		{"not found", nil, provider.ErrNotFound, "ResourceNotFoundException", map[string]float64{"not_found": 1}},
		{"throttled, retried 3 times", &awsemu.Fault{Kind: awsemu.FaultThrottle}, provider.ErrThrottled, "ThrottlingException", map[string]float64{"throttled": 3}},
		{"5xx, retried", &awsemu.Fault{Kind: awsemu.FaultServerError}, provider.ErrUnavailable, "InternalServiceError", map[string]float64{"unavailable": 3}},
		{"503", &awsemu.Fault{Kind: awsemu.FaultUnavailable}, provider.ErrUnavailable, "ServiceUnavailable", map[string]float64{"unavailable": 3}},
		{"outage", &awsemu.Fault{Kind: awsemu.FaultClose}, provider.ErrUnavailable, "ConnectionError", map[string]float64{"unavailable": 3}},
		{"throttled once then answered", &awsemu.Fault{Kind: awsemu.FaultThrottle, Times: 1}, provider.ErrNotFound, "ResourceNotFoundException", map[string]float64{"throttled": 1, "not_found": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.ClearFaults()
			srv.ResetCalls()
			if tc.fault != nil {
				if err := srv.InjectFault(*tc.fault); err != nil {
					t.Fatal(err)
				}
			}
			before := counted()
			err := get()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			msg := provider.SafeMessage(fmt.Errorf("spec.data[0]: %w", err))
			if msg != "spec.data[0]: "+tc.want.Error()+" ("+tc.wantCode+")" {
				t.Fatalf("SafeMessage = %q", msg)
			}
			calls, total := srv.Calls("GetSecretValue"), 0.0
			for r, n := range counted() {
				if d := n - before[r]; d != tc.wantCounted[r] {
					t.Errorf("counted %v %s requests, want %v", d, r, tc.wantCounted[r])
				}
				total += n - before[r]
			}
			if total != float64(calls) {
				t.Fatalf("counted %v requests, the emulator saw %d", total, calls)
			}
		})
	}
	srv.ClearFaults()
}
