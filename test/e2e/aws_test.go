package e2e

import (
	"bytes"
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
		return fmt.Errorf("token review: %v", err)
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

// cleanup deletes the namespace's ExternalSecrets when the subtest ends (envtest
// has no namespace controller), so their refreshes do not run on into later
// subtests that count emulator calls.
func (e *awsEnv) cleanup(t *testing.T, ns string) {
	t.Cleanup(func() {
		c := e.kube.Client
		if err := c.DeleteAllOf(e.ctx(), &v1alpha1.ExternalSecret{}, client.InNamespace(ns)); err != nil {
			t.Errorf("delete ExternalSecrets in %s: %v", ns, err)
			return
		}
		Eventually(t, 60*time.Second, "ExternalSecrets of "+ns+" deleted", func() bool {
			var l v1alpha1.ExternalSecretList
			return c.List(e.ctx(), &l, client.InNamespace(ns)) == nil && len(l.Items) == 0
		})
	})
}

// namespace creates a namespace for one subtest, cleaned up when it ends.
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

func TestAWS(t *testing.T) {
	kube := testenv.StartKube(t)
	env := &awsEnv{kube: kube}
	env.emu = awsemu.NewTestServer(t, awsemu.Options{WebIdentityValidator: env.validateWebIdentity})
	akid, secret := env.emu.StaticCredentials()
	admin := awssdk.Config{Region: "eu-west-1", BaseEndpoint: awssdk.String(env.emu.URL()),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")}
	env.sm, env.ssm = sm.NewFromConfig(admin), ssm.NewFromConfig(admin)
	fast := awsp.Options{MaxAttempts: 2, MaxBackoff: 20 * time.Millisecond}
	// Other tests of this package start operators in this process too.
	skipNames := func(o *operator.Options) { o.SkipNameValidation = true }
	env.op = StartOperator(t, kube, provider.NewRegistry(secretsmanager.NewWithOptions(fast), parameterstore.NewWithOptions(fast)), skipNames)
	c := kube.Client
	ctx := context.Background()

	t.Run("auth: static keys and web identity (IRSA) stores become Ready and sync", func(t *testing.T) {
		ns := env.namespace(t)
		env.creds(t, ns)
		env.store(t, ns, "static", v1alpha1.AWSServiceSecretsManager, awsStaticAuth)
		if c, ok := env.emu.LastCaller("secretsmanager.ListSecrets"); !ok || c.Source != "static" || c.AccessKeyID != akid {
			t.Fatalf("store check caller = %+v (%v), want the static key", c, ok)
		}
		env.store(t, ns, "static-ssm", v1alpha1.AWSServiceParameterStore, awsStaticAuth)

		env.serviceAccount(t, ns, "app")
		env.store(t, ns, "irsa", v1alpha1.AWSServiceSecretsManager, awsJWTAuth("app"))
		if env.reviewed(ns) == 0 {
			t.Fatal("the web identity token was never checked with TokenReview")
		}
		claims := env.emu.LastWebIdentityClaims()
		if claims["sub"] != "system:serviceaccount:"+ns+":app" {
			t.Fatalf("web identity subject = %v", claims["sub"])
		}
		env.createSecret(t, ns+"/irsa", awssdk.String(`{"user":"irsa-user"}`), nil)
		env.es(t, ns, "irsa", "irsa", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/irsa", "user", awsProperty("user"))}
		})
		env.waitReason(t, ns, "irsa", v1alpha1.ReasonSynced)
		if s := env.secret(t, ns, "irsa"); s == nil || string(s.Data["user"]) != "irsa-user" {
			t.Fatalf("irsa Secret = %v", s)
		}
		if c, ok := env.emu.LastCaller("secretsmanager.BatchGetSecretValue"); !ok || c.Source != "AssumeRoleWithWebIdentity" || c.RoleARN != awsAppRole {
			t.Fatalf("read caller = %+v (%v), want the web identity role", c, ok)
		}
		env.createSecret(t, ns+"/static", awssdk.String("plain"), nil)
		env.es(t, ns, "static", "static", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/static", "v")} })
		env.waitReason(t, ns, "static", v1alpha1.ReasonSynced)
		if s := env.secret(t, ns, "static"); string(s.Data["v"]) != "plain" {
			t.Fatalf("static Secret = %v", s.Data)
		}

		// Refusals: wrong keys, a token for another audience, a missing ServiceAccount.
		must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-creds"},
			StringData: map[string]string{"id": "AKIANOTKNOWN00000000", "secret": "x"}}))
		env.newStore(t, ns, "bad-keys", v1alpha1.AWSServiceSecretsManager, func(p *v1alpha1.AWSProvider) {
			p.Auth = &v1alpha1.AWSAuth{SecretRef: &v1alpha1.AWSSecretRef{
				AccessKeyIDSecretRef:     v1alpha1.SecretKeySelector{Name: "bad-creds", Key: "id"},
				SecretAccessKeySecretRef: v1alpha1.SecretKeySelector{Name: "bad-creds", Key: "secret"},
			}}
		})
		env.newStore(t, ns, "wrong-audience", v1alpha1.AWSServiceSecretsManager, awsJWTAuth("app", "not-sts"))
		env.newStore(t, ns, "no-sa", v1alpha1.AWSServiceSecretsManager, awsJWTAuth("ghost"))
		env.storeReason(t, ns, "bad-keys", v1alpha1.ReasonAuthFailed)
		env.storeReason(t, ns, "wrong-audience", v1alpha1.ReasonAuthFailed)
		env.storeReason(t, ns, "no-sa", v1alpha1.ReasonCredentialsNotFound)
	})

	t.Run("Secrets Manager: JSON property, version stage, VersionId, binary, sources", func(t *testing.T) {
		ns := env.namespace(t)
		env.creds(t, ns)
		env.store(t, ns, "sm", v1alpha1.AWSServiceSecretsManager, awsStaticAuth)
		db := ns + "/db"
		v1 := env.createSecret(t, db, awssdk.String(`{"username":"app","password":"pw-1"}`), nil)
		v2 := env.putSecret(t, db, `{"username":"app","password":"pw-2","nested":{"a.b":{"c":"deep"}},"port":5432}`)
		bin := []byte{0x00, 0x01, 0xfe, 0xff, '\n', 0x80}
		vb := env.createSecret(t, ns+"/cert", nil, bin)
		env.es(t, ns, "db", "sm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{
				awsRef(db, "password", awsProperty("password")),
				awsRef(db, "previous", awsProperty("password"), awsVersion("AWSPREVIOUS")),
				awsRef(db, "by-id", awsProperty("password"), awsVersion(v1)),
				awsRef(db, "by-uuid-prefix", awsProperty("password"), awsVersion("uuid/"+v2)),
				awsRef(db, "deep", awsProperty(`nested.a\.b.c`)),
				awsRef(db, "port", awsProperty("port")),
				awsRef(ns+"/cert", "cert"),
			}
		})
		es := env.waitReason(t, ns, "db", v1alpha1.ReasonSynced)
		s := env.secret(t, ns, "db")
		want := map[string]string{"password": "pw-2", "previous": "pw-1", "by-id": "pw-1", "by-uuid-prefix": "pw-2", "deep": "deep", "port": "5432", "cert": string(bin)}
		for k, v := range want {
			if got := s.Data[k]; !bytes.Equal(got, []byte(v)) {
				t.Errorf("key %s = %q, want %q", k, got, v)
			}
		}
		if len(s.Data) != len(want) {
			t.Errorf("Secret has %d keys, want %d: %v", len(s.Data), len(want), s.Data)
		}
		for _, src := range []v1alpha1.SourceStatus{{Key: db, Version: v2}, {Key: db, Version: v1}, {Key: ns + "/cert", Version: vb}} {
			if !awsHasSource(es, src.Key, src.Version) {
				t.Errorf("status.sources %+v lacks %+v", es.Status.Sources, src)
			}
		}
		if len(es.Status.Sources) != 3 {
			t.Errorf("status.sources = %+v, want one entry per (key, version read)", es.Status.Sources)
		}

		// dataFrom.extract of the JSON object, key by key (numbers/objects as JSON text).
		env.es(t, ns, "extract", "sm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.DataFrom = []v1alpha1.DataFromSource{{Extract: &v1alpha1.ExtractRef{Key: db}}}
		})
		env.waitReason(t, ns, "extract", v1alpha1.ReasonSynced)
		if s := env.secret(t, ns, "extract"); string(s.Data["password"]) != "pw-2" || string(s.Data["port"]) != "5432" || string(s.Data["nested"]) != `{"a.b":{"c":"deep"}}` {
			t.Errorf("extract Secret = %q", s.Data)
		}

		// Missing property and missing secret are named errors, not silent gaps.
		env.es(t, ns, "noprop", "sm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{awsRef(db, "x", awsProperty("nope"))}
		})
		env.es(t, ns, "nokey", "sm", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/absent", "x")} })
		es = env.waitReason(t, ns, "noprop", v1alpha1.ReasonKeyNotFound)
		if msg := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, db) || !strings.Contains(msg, "nope") {
			t.Errorf("message %q does not name key and property", msg)
		}
		es = env.waitReason(t, ns, "nokey", v1alpha1.ReasonKeyNotFound)
		if msg := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, ns+"/absent") {
			t.Errorf("message %q does not name the key", msg)
		}
		if env.secret(t, ns, "noprop") != nil || env.secret(t, ns, "nokey") != nil {
			t.Error("a Secret was written with a key missing")
		}
	})

	t.Run("rotation: a new AWSCURRENT reaches the Secret on the next refresh", func(t *testing.T) {
		ns := env.namespace(t)
		env.creds(t, ns)
		env.store(t, ns, "sm", v1alpha1.AWSServiceSecretsManager, awsStaticAuth)
		key := ns + "/rot"
		v1 := env.createSecret(t, key, awssdk.String(`{"password":"one"}`), nil)
		env.es(t, ns, "rot", "sm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = awsEvery(2 * time.Second)
			es.Spec.Data = []v1alpha1.DataItem{awsRef(key, "password", awsProperty("password"))}
		})
		es := env.waitReason(t, ns, "rot", v1alpha1.ReasonSynced)
		if !awsHasSource(es, key, v1) {
			t.Fatalf("sources = %+v, want version %s", es.Status.Sources, v1)
		}
		synced := es.Status.SyncedAt
		v2 := env.putSecret(t, key, `{"password":"two"}`)
		start := time.Now()
		Eventually(t, 20*time.Second, "rotated value in the Secret", func() bool { return string(env.secret(t, ns, "rot").Data["password"]) == "two" })
		took := time.Since(start)
		t.Logf("rotation reached the Secret after %v (refreshInterval 2s)", took.Round(100*time.Millisecond))
		Eventually(t, 10*time.Second, "status.sources at the new version", func() bool { return awsHasSource(env.getES(t, ns, "rot"), key, v2) })
		es = env.getES(t, ns, "rot")
		if len(es.Status.Sources) != 1 || es.Status.SyncedAt == nil || !es.Status.SyncedAt.After(synced.Time) {
			t.Fatalf("status after rotation = %+v (syncedAt before %v)", es.Status, synced)
		}
		// "Next refresh": a slot every 2s, so the change must not wait for much more.
		if took > 5*time.Second {
			t.Errorf("rotation took %v with refreshInterval 2s", took)
		}
	})

	t.Run("Parameter Store: SecureString, find with rewrite, version label and number", func(t *testing.T) {
		ns := env.namespace(t)
		env.creds(t, ns)
		env.store(t, ns, "ssm", v1alpha1.AWSServiceParameterStore, awsStaticAuth)
		env.putParam(t, "/team/app/db-password", "s3cr3t-pw", ssmtypes.ParameterTypeSecureString)
		env.putParam(t, "/team/app/api/key", "api-key-value", ssmtypes.ParameterTypeSecureString)
		env.putParam(t, "/team/app/api/url", "http://127.0.0.1:1/api", ssmtypes.ParameterTypeString)
		env.putParam(t, "/team/app/hosts", "a,b,c", ssmtypes.ParameterTypeStringList)
		env.putParam(t, "/team/application/not-under", "x", ssmtypes.ParameterTypeString)
		env.putParam(t, "/team/other/x", "x", ssmtypes.ParameterTypeString)
		env.putParam(t, "/flags/color", "blue", ssmtypes.ParameterTypeString)
		env.putParam(t, "/flags/color", "green", ssmtypes.ParameterTypeString)
		env.putParam(t, "/flags/color", "red", ssmtypes.ParameterTypeString)
		_, err := env.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: awssdk.String("/flags/color"), ParameterVersion: awssdk.Int64(1), Labels: []string{"stable"}})
		must(t, err)
		raw, err := env.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: awssdk.String("/team/app/db-password")})
		must(t, err)
		if awssdk.ToString(raw.Parameter.Value) == "s3cr3t-pw" {
			t.Fatal("the emulator returns SecureStrings decrypted without WithDecryption: the test proves nothing")
		}

		env.es(t, ns, "secure", "ssm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{
				awsRef("/team/app/db-password", "password"),
				awsRef("/flags/color", "stable", awsVersion("stable")),
				awsRef("/flags/color", "v2", awsVersion("2")),
				awsRef("/flags/color", "latest"),
			}
		})
		es := env.waitReason(t, ns, "secure", v1alpha1.ReasonSynced)
		s := env.secret(t, ns, "secure")
		for k, v := range map[string]string{"password": "s3cr3t-pw", "stable": "blue", "v2": "green", "latest": "red"} {
			if string(s.Data[k]) != v {
				t.Errorf("key %s = %q, want %q", k, s.Data[k], v)
			}
		}
		for _, src := range []v1alpha1.SourceStatus{{Key: "/team/app/db-password", Version: "1"}, {Key: "/flags/color", Version: "1"}, {Key: "/flags/color", Version: "2"}, {Key: "/flags/color", Version: "3"}} {
			if !awsHasSource(es, src.Key, src.Version) {
				t.Errorf("status.sources %+v lacks %+v", es.Status.Sources, src)
			}
		}

		env.es(t, ns, "find", "ssm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.DataFrom = []v1alpha1.DataFromSource{{
				Find: &v1alpha1.FindRef{Path: "/team/app/"},
				Rewrite: []v1alpha1.Rewrite{
					{Regexp: v1alpha1.RewriteRegexp{Source: "^/team/app/", Target: ""}},
					{Regexp: v1alpha1.RewriteRegexp{Source: "/", Target: "-"}},
				},
			}}
		})
		es = env.waitReason(t, ns, "find", v1alpha1.ReasonSynced)
		s = env.secret(t, ns, "find")
		wantFind := map[string]string{"db-password": "s3cr3t-pw", "api-key": "api-key-value", "api-url": "http://127.0.0.1:1/api", "hosts": "a,b,c"}
		if len(s.Data) != len(wantFind) {
			t.Errorf("find Secret keys = %v, want %v", awsKeysOf(s.Data), wantFind)
		}
		for k, v := range wantFind {
			if string(s.Data[k]) != v {
				t.Errorf("find key %s = %q, want %q", k, s.Data[k], v)
			}
		}
		if len(es.Status.Sources) != 4 || !awsHasSource(es, "/team/app/api/key", "1") {
			t.Errorf("find sources = %+v, want one per parameter found, by full name", es.Status.Sources)
		}

		// Without the nested rewrite, "api/key" is not a valid Secret key.
		env.es(t, ns, "find-invalid", "ssm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.DataFrom = []v1alpha1.DataFromSource{{
				Find:    &v1alpha1.FindRef{Path: "/team/app"},
				Rewrite: []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "^/team/app/", Target: ""}}},
			}}
		})
		env.waitReason(t, ns, "find-invalid", v1alpha1.ReasonInvalidKey)

		// A label moved to another version is read on the next refresh.
		_, err = env.ssm.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: awssdk.String("/flags/color"), ParameterVersion: awssdk.Int64(3), Labels: []string{"stable"}})
		must(t, err)
		es = env.getES(t, ns, "secure")
		es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "label-moved"}
		must(t, c.Update(ctx, es))
		Eventually(t, 20*time.Second, "moved label read", func() bool { return string(env.secret(t, ns, "secure").Data["stable"]) == "red" })
	})

	t.Run("batching: 100 ExternalSecrets on one store cost a few batch calls per refresh round", func(t *testing.T) {
		const n = 100
		const interval = 10 * time.Second
		type service struct {
			name        string
			kind        v1alpha1.AWSService
			batchOp     string
			singleOp    string
			maxPerRound int
			put         func(t *testing.T, ns string, i int, value string)
			key         func(ns string, i int) string
		}
		services := []service{
			{name: "ParameterStore", kind: v1alpha1.AWSServiceParameterStore, batchOp: "ssm.GetParameters", singleOp: "ssm.GetParameter", maxPerRound: 10,
				key: func(ns string, i int) string { return fmt.Sprintf("/batch/%s/p-%03d", ns, i) },
				put: func(t *testing.T, ns string, i int, value string) {
					env.putParam(t, fmt.Sprintf("/batch/%s/p-%03d", ns, i), value, ssmtypes.ParameterTypeSecureString)
				}},
			{name: "SecretsManager", kind: v1alpha1.AWSServiceSecretsManager, batchOp: "secretsmanager.BatchGetSecretValue", singleOp: "secretsmanager.GetSecretValue", maxPerRound: 5,
				key: func(ns string, i int) string { return fmt.Sprintf("%s/s-%03d", ns, i) },
				put: func(t *testing.T, ns string, i int, value string) {
					name := fmt.Sprintf("%s/s-%03d", ns, i)
					if strings.HasPrefix(value, "v1-") {
						env.createSecret(t, name, awssdk.String(value), nil)
						return
					}
					env.putSecret(t, name, value)
				}},
		}
		for _, svc := range services {
			t.Run(svc.name, func(t *testing.T) {
				t.Parallel()
				ns := env.namespace(t)
				env.creds(t, ns)
				env.store(t, ns, "store", svc.kind, awsStaticAuth)
				for i := 0; i < n; i++ {
					svc.put(t, ns, i, fmt.Sprintf("v1-%d", i))
				}
				for i := 0; i < n; i++ {
					env.es(t, ns, fmt.Sprintf("es-%03d", i), "store", func(es *v1alpha1.ExternalSecret) {
						es.Spec.RefreshInterval = awsEvery(interval)
						es.Spec.Data = []v1alpha1.DataItem{awsRef(svc.key(ns, i), "v")}
					})
				}
				for i := 0; i < n; i++ {
					env.waitReasonFor(t, 60*time.Second, ns, fmt.Sprintf("es-%03d", i), v1alpha1.ReasonSynced)
				}
				ops := []string{svc.batchOp, svc.singleOp}
				// After 1.5 intervals every ExternalSecret has refreshed once at its own
				// slot: the store is in its steady state, refreshes spread over the interval.
				time.Sleep(interval * 3 / 2)
				for i := 0; i < n; i++ {
					svc.put(t, ns, i, fmt.Sprintf("v2-%d", i))
				}
				// (The two services run in parallel, so counts are differences, not ResetCalls.)
				// Two intervals are counted: a window of one can catch one batch at each edge.
				base := env.counts(ops...)
				time.Sleep(2 * interval)
				calls := env.counts(ops...)
				for k := range calls {
					calls[k] -= base[k]
				}
				t.Logf("%s: two refresh intervals: %v", svc.name, calls)
				Eventually(t, interval, "every ExternalSecret holds the changed value", func() bool {
					for i := 0; i < n; i++ {
						if string(env.secret(t, ns, fmt.Sprintf("es-%03d", i)).Data["v"]) != fmt.Sprintf("v2-%d", i) {
							return false
						}
					}
					return true
				})
				if calls[svc.batchOp] > 2*svc.maxPerRound+1 || calls[svc.singleOp] != 0 {
					t.Errorf("two refresh intervals of %d ExternalSecrets made %d %s and %d %s calls, want <= %d (+1 at an edge) and 0",
						n, calls[svc.batchOp], svc.batchOp, calls[svc.singleOp], svc.singleOp, 2*svc.maxPerRound)
				}
			})
		}
	})

	t.Run("throttling and outage: Secret untouched, Ready=False with a reason, recovery", func(t *testing.T) {
		ns := env.namespace(t)
		env.creds(t, ns)
		env.store(t, ns, "sm", v1alpha1.AWSServiceSecretsManager, awsStaticAuth)
		key := ns + "/flaky"
		env.createSecret(t, key, awssdk.String("v0"), nil)
		env.es(t, ns, "flaky", "sm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = awsEvery(2 * time.Second)
			es.Spec.Data = []v1alpha1.DataItem{awsRef(key, "k")}
		})
		env.waitReason(t, ns, "flaky", v1alpha1.ReasonSynced)
		phases := []struct {
			kind   awsemu.FaultKind
			reason string
		}{
			{awsemu.FaultThrottle, v1alpha1.ReasonThrottled},
			{awsemu.FaultUnavailable, v1alpha1.ReasonProviderError},
			{awsemu.FaultServerError, v1alpha1.ReasonProviderError},
			{awsemu.FaultClose, v1alpha1.ReasonProviderError},
		}
		for i, ph := range phases {
			before := env.secret(t, ns, "flaky")
			old := string(before.Data["k"])
			// Every read operation fails; the store check (ListSecrets) is left alone so
			// the ExternalSecret reports the read failure, not StoreNotReady.
			for _, op := range []string{"BatchGetSecretValue", "GetSecretValue"} {
				must(t, env.emu.InjectFault(awsemu.Fault{Op: op, Kind: ph.kind}))
			}
			next := fmt.Sprintf("v%d", i+1)
			env.putSecret(t, key, next)
			es := env.waitReason(t, ns, "flaky", ph.reason)
			t.Logf("%s: %s", ph.kind, meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady).Message)
			failing := env.emu.Calls("BatchGetSecretValue")
			time.Sleep(2 * time.Second) // retries
			if env.emu.Calls("BatchGetSecretValue") == failing {
				t.Errorf("%s: no retry within 2s", ph.kind)
			}
			if after := env.secret(t, ns, "flaky"); after.ResourceVersion != before.ResourceVersion || string(after.Data["k"]) != old {
				t.Fatalf("%s: Secret changed during the fault: %q (rv %s -> %s)", ph.kind, after.Data["k"], before.ResourceVersion, after.ResourceVersion)
			}
			if es := env.getES(t, ns, "flaky"); !meta.IsStatusConditionFalse(es.Status.Conditions, v1alpha1.ConditionReady) {
				t.Fatalf("%s: Ready is not False: %+v", ph.kind, es.Status.Conditions)
			}
			env.emu.ClearFaults()
			env.waitReason(t, ns, "flaky", v1alpha1.ReasonSynced)
			Eventually(t, 20*time.Second, string(ph.kind)+": new value after recovery", func() bool { return string(env.secret(t, ns, "flaky").Data["k"]) == next })
		}
	})

	t.Run("a canary value never reaches logs, events or status, access denied included", func(t *testing.T) {
		const canary = "CANARY-aws-5e1d0b-DO-NOT-LEAK"
		ns := env.namespace(t)
		env.serviceAccount(t, ns, "app")
		env.store(t, ns, "irsa", v1alpha1.AWSServiceSecretsManager, awsJWTAuth("app"))
		key := ns + "/canary"
		env.createSecret(t, key, awssdk.String(`{"pw":"`+canary+`"}`), nil)
		env.createSecret(t, ns+"/raw", awssdk.String(canary), nil)
		env.es(t, ns, "canary", "irsa", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = awsEvery(2 * time.Second)
			es.Spec.Data = []v1alpha1.DataItem{awsRef(key, "pw", awsProperty("pw"))}
		})
		env.es(t, ns, "canary-prop", "irsa", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{awsRef(key, "pw", awsProperty("pw.deeper"))}
		})
		env.es(t, ns, "canary-notjson", "irsa", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/raw", "pw", awsProperty("x"))}
		})
		env.es(t, ns, "canary-b64", "irsa", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "pw", RemoteRef: &v1alpha1.RemoteRef{Key: ns + "/raw", DecodingStrategy: v1alpha1.DecodeBase64}}}
		})
		env.es(t, ns, "canary-tpl", "irsa", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{awsRef(key, "pw", awsProperty("pw"))}
			es.Spec.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": `{{ .pw | b64dec }}`, "y": `{{ fromJson .pw }}`}}
		})
		env.waitReason(t, ns, "canary", v1alpha1.ReasonSynced)
		if string(env.secret(t, ns, "canary").Data["pw"]) != canary {
			t.Fatal("the canary was not synced: the test proves nothing")
		}
		env.waitReason(t, ns, "canary-prop", v1alpha1.ReasonInvalidProperty)
		env.waitReason(t, ns, "canary-notjson", v1alpha1.ReasonInvalidProperty)
		env.waitReason(t, ns, "canary-b64", v1alpha1.ReasonInvalidValue)
		env.waitReason(t, ns, "canary-tpl", v1alpha1.ReasonInvalidTemplate)

		// Access denied: the role session is revoked and STS refuses the next token with
		// a message that quotes the value (as a misbehaving backend might).
		env.denied.Store(ns, "web identity refused while reading "+canary)
		env.emu.ExpireCredentials()
		// First the expired session (ExpiredTokenException), then STS refusing the token.
		Eventually(t, 30*time.Second, "web identity refused by STS", func() bool {
			es := env.getES(t, ns, "canary")
			c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
			return env.refused.Load() > 0 && c != nil && c.Reason == v1alpha1.ReasonAuthFailed && strings.Contains(c.Message, "InvalidIdentityToken")
		})
		es := env.getES(t, ns, "canary")
		t.Logf("denied: %s", meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady).Message)
		if string(env.secret(t, ns, "canary").Data["pw"]) != canary {
			t.Fatal("access denied changed the Secret")
		}
		// Then a server-side failure of the read itself (ProviderError), and recovery.
		must(t, env.emu.InjectFault(awsemu.Fault{Op: "BatchGetSecretValue", Kind: awsemu.FaultServerError}))
		env.denied.Delete(ns)
		env.waitReason(t, ns, "canary", v1alpha1.ReasonProviderError)
		env.emu.ClearFaults()
		env.waitReason(t, ns, "canary", v1alpha1.ReasonSynced)

		AssertNoCanary(t, c, ns, canary)
		if !strings.Contains(Logs.String(), ns) {
			t.Error("the operator logged nothing about this namespace: the log check proves nothing")
		}
	})
}

func awsKeysOf(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
