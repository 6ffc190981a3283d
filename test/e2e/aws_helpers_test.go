package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/operator"
	"github.com/secretsync/secretsync/internal/provider"
	awsp "github.com/secretsync/secretsync/internal/provider/aws"
	"github.com/secretsync/secretsync/internal/provider/aws/parameterstore"
	"github.com/secretsync/secretsync/internal/provider/aws/secretsmanager"
	"github.com/secretsync/secretsync/internal/testenv"
	"github.com/secretsync/secretsync/test/awsemu"
)

// awsAppRole is the role the web identity (IRSA) stores assume.
const awsAppRole = "arn:aws:iam::123456789012:role/app"

// awsEnv is one envtest, one in-process AWS emulator and one operator with the two
// AWS providers. SecretStores point spec.provider.aws.endpoint at the emulator.
type awsEnv struct {
	kube *testenv.Kube
	emu  *awsemu.Server
	op   *Operator
	sm   *sm.Client  // the test's own client, to write secrets as an admin would
	ssm  *ssm.Client // idem for parameters

	// denied maps a namespace to the text STS answers when a ServiceAccount token
	// of that namespace is presented (web identity refused).
	denied  sync.Map
	refused atomic.Int64 // tokens refused because of denied
	// reviews counts web identity tokens the API server's TokenReview authenticated.
	reviews sync.Map // namespace -> *int
	revMu   sync.Mutex
}

func (e *awsEnv) ctx() context.Context { return context.Background() }

// sharedAWS is the environment of the TestAWS* tests.
var sharedAWS = &Shared[awsEnv]{What: "envtest (kube-apiserver + etcd) and the AWS emulator for TestAWS*", Start: func(tb testing.TB) *awsEnv {
	env := &awsEnv{kube: testenv.StartKube(tb)}
	env.emu = awsemu.NewTestServer(tb, awsemu.Options{WebIdentityValidator: env.validateWebIdentity})
	akid, secret := env.emu.StaticCredentials()
	admin := awssdk.Config{Region: "eu-west-1", BaseEndpoint: awssdk.String(env.emu.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}
	env.sm, env.ssm = sm.NewFromConfig(admin), ssm.NewFromConfig(admin)
	fast := awsp.Options{MaxAttempts: 2, MaxBackoff: 20 * time.Millisecond}
	// Other tests of this package start operators in this process too.
	skipNames := func(o *operator.Options) { o.SkipNameValidation = true }
	env.op = StartOperator(tb, env.kube, provider.NewRegistry(secretsmanager.NewWithOptions(fast), parameterstore.NewWithOptions(fast)), skipNames)
	return env
}}

// awsTest returns the shared environment and a new namespace for t (see namespace).
func awsTest(t *testing.T) (*awsEnv, string) {
	t.Helper()
	env := sharedAWS.Get(t)
	ns := env.namespace(t)
	return env, ns
}

// validateWebIdentity is the emulator's AssumeRoleWithWebIdentity hook: the token
// must carry the STS audience and a ServiceAccount subject (awsemu.AudienceValidator),
// be a real token of this API server for that audience (TokenReview), and ask for the
// app role.
func (e *awsEnv) validateWebIdentity(token, roleARN string) error {
	if err := awsemu.AudienceValidator(awsp.DefaultAudience)(token, roleARN); err != nil {
		return err
	}
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{awsp.DefaultAudience}}}
	if err := e.kube.Client.Create(e.ctx(), tr); err != nil {
		return fmt.Errorf("token review: %w", err)
	}
	if !tr.Status.Authenticated {
		return fmt.Errorf("token not authenticated by the API server: %s", tr.Status.Error)
	}
	parts := strings.Split(tr.Status.User.Username, ":") // system:serviceaccount:<ns>:<name>
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" {
		return fmt.Errorf("token user %q is not a ServiceAccount", tr.Status.User.Username)
	}
	ns := parts[2]
	e.revMu.Lock()
	v, _ := e.reviews.LoadOrStore(ns, new(int))
	*v.(*int)++
	e.revMu.Unlock()
	if msg, ok := e.denied.Load(ns); ok {
		e.refused.Add(1)
		return errors.New(msg.(string))
	}
	if roleARN != awsAppRole {
		return fmt.Errorf("role %s may not be assumed with this token", roleARN)
	}
	return nil
}

func (e *awsEnv) reviewed(ns string) int {
	e.revMu.Lock()
	defer e.revMu.Unlock()
	if v, ok := e.reviews.Load(ns); ok {
		return *v.(*int)
	}
	return 0
}

// creds creates the Secret "aws-creds" holding the emulator's static key pair.
func (e *awsEnv) creds(t *testing.T, ns string) {
	t.Helper()
	akid, secret := e.emu.StaticCredentials()
	must(t, e.kube.Client.Create(e.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "aws-creds"},
		StringData: map[string]string{"access-key-id": akid + "\n", "secret-access-key": secret}}))
}

func awsStaticAuth(p *v1alpha1.AWSProvider) {
	p.Auth = &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
		AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "access-key-id"},
		SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "aws-creds", Key: "secret-access-key"},
	}}
}

func awsJWTAuth(sa string, audiences ...string) func(*v1alpha1.AWSProvider) {
	return func(p *v1alpha1.AWSProvider) {
		p.Role = awsAppRole
		p.Auth = &v1alpha1.AWSAuth{JWT: &v1alpha1.AWSJWTAuth{ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: sa, Audiences: audiences}}}
	}
}

// serviceAccount creates ServiceAccount name in ns.
func (e *awsEnv) serviceAccount(t *testing.T, ns, name string) {
	t.Helper()
	must(t, e.kube.Client.Create(e.ctx(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}))
}

// newStore creates SecretStore name in ns for service, aimed at the emulator.
func (e *awsEnv) newStore(t *testing.T, ns, name string, service v1alpha1.AWSService, auth func(*v1alpha1.AWSProvider)) *v1alpha1.SecretStore {
	t.Helper()
	p := &v1alpha1.AWSProvider{Service: service, Region: "eu-west-1", Endpoint: e.emu.URL()}
	auth(p)
	ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: p}}}
	must(t, e.kube.Client.Create(e.ctx(), ss))
	return ss
}

// storeReason waits until the store's Ready condition has reason.
func (e *awsEnv) storeReason(t *testing.T, ns, name, reason string) *v1alpha1.SecretStore {
	t.Helper()
	ss := &v1alpha1.SecretStore{}
	Eventually(t, 30*time.Second, fmt.Sprintf("store %s/%s reason %s", ns, name, reason), func() bool {
		if err := e.kube.Client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: name}, ss); err != nil {
			return false
		}
		c := meta.FindStatusCondition(ss.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Reason == reason && ss.Status.ObservedGeneration == ss.Generation
	})
	return ss
}

// store creates a store and waits until it is Ready.
func (e *awsEnv) store(t *testing.T, ns, name string, service v1alpha1.AWSService, auth func(*v1alpha1.AWSProvider)) {
	t.Helper()
	e.newStore(t, ns, name, service, auth)
	ss := e.storeReason(t, ns, name, v1alpha1.ReasonValid)
	if !meta.IsStatusConditionTrue(ss.Status.Conditions, v1alpha1.ConditionReady) {
		t.Fatalf("store %s/%s: %+v", ns, name, ss.Status)
	}
}

func (e *awsEnv) es(t *testing.T, ns, name, store string, mutate func(*v1alpha1.ExternalSecret)) *v1alpha1.ExternalSecret {
	t.Helper()
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ExternalSecretSpec{
		SecretStoreRef: v1alpha1.StoreRef{Name: store}}}
	mutate(es)
	must(t, e.kube.Client.Create(e.ctx(), es))
	return es
}

func awsRef(key, secretKey string, mutate ...func(*v1alpha1.RemoteRef)) v1alpha1.DataItem {
	r := &v1alpha1.RemoteRef{Key: key}
	for _, m := range mutate {
		m(r)
	}
	return v1alpha1.DataItem{SecretKey: secretKey, RemoteRef: r}
}

func awsProperty(p string) func(*v1alpha1.RemoteRef) {
	return func(r *v1alpha1.RemoteRef) { r.Property = p }
}
func awsVersion(v string) func(*v1alpha1.RemoteRef) {
	return func(r *v1alpha1.RemoteRef) { r.Version = v }
}

func awsEvery(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func (e *awsEnv) getES(t *testing.T, ns, name string) *v1alpha1.ExternalSecret {
	t.Helper()
	es := &v1alpha1.ExternalSecret{}
	must(t, e.kube.Client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: name}, es))
	return es
}

// waitReason waits until the ExternalSecret's Ready condition has reason (for the
// current generation).
func (e *awsEnv) waitReason(t *testing.T, ns, name, reason string) *v1alpha1.ExternalSecret {
	t.Helper()
	return e.waitReasonFor(t, 30*time.Second, ns, name, reason)
}

func (e *awsEnv) waitReasonFor(t *testing.T, timeout time.Duration, ns, name, reason string) *v1alpha1.ExternalSecret {
	t.Helper()
	return WaitESReason(t, e.kube.Client, timeout, ns, name, reason)
}

func (e *awsEnv) secret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	return GetSecret(t, e.kube.Client, ns, name)
}

// cleanup deletes the namespace's ExternalSecrets when the test ends (envtest
// has no namespace controller), so their refreshes do not run on into later
// tests that count emulator calls, and clears the faults the test injected.
func (e *awsEnv) cleanup(t *testing.T, ns string) {
	t.Cleanup(func() {
		e.emu.ClearFaults()
		e.denied.Delete(ns)
		c := e.kube.Client
		if err := c.DeleteAllOf(e.ctx(), &v1alpha1.ExternalSecret{}, client.InNamespace(ns)); err != nil {
			t.Errorf("delete ExternalSecrets in %s: %v", ns, err)
			return
		}
		Eventually(t, 60*time.Second, "ExternalSecrets of "+ns+" deleted", func() bool {
			var l v1alpha1.ExternalSecretList
			return c.List(e.ctx(), &l, client.InNamespace(ns)) == nil && len(l.Items) == 0
		})
		// The stores too: their periodic checks would otherwise go on calling the
		// emulator (and count in the process-wide request metric TestMetrics compares).
		if err := c.DeleteAllOf(e.ctx(), &v1alpha1.SecretStore{}, client.InNamespace(ns)); err != nil {
			t.Errorf("delete SecretStores in %s: %v", ns, err)
		}
	})
}

// namespace creates a namespace for one test, cleaned up when it ends.
func (e *awsEnv) namespace(t *testing.T) string {
	t.Helper()
	ns := e.kube.Namespace(t, nil)
	e.cleanup(t, ns)
	return ns
}

// createSecret creates a Secrets Manager secret (string or binary) and returns its
// first VersionId.
func (e *awsEnv) createSecret(t *testing.T, name string, str *string, bin []byte) string {
	t.Helper()
	out, err := e.sm.CreateSecret(e.ctx(), &sm.CreateSecretInput{Name: awssdk.String(name), SecretString: str, SecretBinary: bin})
	must(t, err)
	return awssdk.ToString(out.VersionId)
}

// putSecret adds a version that becomes AWSCURRENT (the previous one AWSPREVIOUS).
func (e *awsEnv) putSecret(t *testing.T, name, value string) string {
	t.Helper()
	out, err := e.sm.PutSecretValue(e.ctx(), &sm.PutSecretValueInput{SecretId: awssdk.String(name), SecretString: awssdk.String(value)})
	must(t, err)
	return awssdk.ToString(out.VersionId)
}

func (e *awsEnv) putParam(t *testing.T, name, value string, typ ssmtypes.ParameterType) int64 {
	t.Helper()
	out, err := e.ssm.PutParameter(e.ctx(), &ssm.PutParameterInput{Name: awssdk.String(name), Value: awssdk.String(value), Type: typ, Overwrite: awssdk.Bool(true)})
	must(t, err)
	return out.Version
}

func awsHasSource(es *v1alpha1.ExternalSecret, key, version string) bool {
	for _, s := range es.Status.Sources {
		if s.Key == key && s.Version == version {
			return true
		}
	}
	return false
}

// counts snapshots the emulator's counters for ops.
func (e *awsEnv) counts(ops ...string) map[string]int {
	m := make(map[string]int, len(ops))
	for _, op := range ops {
		m[op] = e.emu.Calls(op)
	}
	return m
}

func awsKeysOf(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
