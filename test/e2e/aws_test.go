package e2e

// End-to-end behaviour of the two AWS providers against the in-process AWS
// emulator: one shared envtest, emulator and operator (sharedAWS), one namespace
// per test. Emulator counters are global: each test deletes its ExternalSecrets
// when it ends (awsEnv.cleanup), so no refresh of one test runs behind another.

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/test/awsemu"
)

// A store with static keys becomes Ready, checks and reads with those keys, and syncs.
func TestAWSStaticKeysStoreSyncs(t *testing.T) {
	env, ns := awsTest(t)
	akid, _ := env.emu.StaticCredentials()
	env.creds(t, ns)
	env.store(t, ns, "static", v1alpha1.AWSServiceSecretsManager, awsStaticAuth)
	if c, ok := env.emu.LastCaller("secretsmanager.ListSecrets"); !ok || c.Source != "static" || c.AccessKeyID != akid {
		t.Fatalf("store check caller = %+v (%v), want the static key", c, ok)
	}
	env.store(t, ns, "static-ssm", v1alpha1.AWSServiceParameterStore, awsStaticAuth)
	env.createSecret(t, ns+"/static", awssdk.String("plain"), nil)
	env.es(t, ns, "static", "static", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/static", "v")} })
	env.waitReason(t, ns, "static", v1alpha1.ReasonSynced)
	if s := env.secret(t, ns, "static"); string(s.Data["v"]) != "plain" {
		t.Fatalf("static Secret = %v", s.Data)
	}
}

// A web identity (IRSA) store presents a real ServiceAccount token, becomes Ready
// and reads as the assumed role.
func TestAWSWebIdentityStoreSyncs(t *testing.T) {
	env, ns := awsTest(t)
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
}

// Refused credentials are named reasons on the store: wrong keys, a token for
// another audience, a missing ServiceAccount.
func TestAWSAuthRefusalsAreStoreReasons(t *testing.T) {
	env, ns := awsTest(t)
	env.serviceAccount(t, ns, "app")
	must(t, env.kube.Client.Create(env.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad-creds"},
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
}

// smDB creates, in ns, a static-key Secrets Manager store "sm" and secret <ns>/db
// with two versions (JSON); it returns the secret's name and both version ids.
func smDB(t *testing.T, env *awsEnv, ns string) (db, v1, v2 string) {
	t.Helper()
	env.creds(t, ns)
	env.store(t, ns, "sm", v1alpha1.AWSServiceSecretsManager, awsStaticAuth)
	db = ns + "/db"
	v1 = env.createSecret(t, db, awssdk.String(`{"username":"app","password":"pw-1"}`), nil)
	v2 = env.putSecret(t, db, `{"username":"app","password":"pw-2","nested":{"a.b":{"c":"deep"}},"port":5432}`)
	return db, v1, v2
}

// Secrets Manager: JSON property, version stage, VersionId, binary, and one
// status.sources entry per (key, version) read.
func TestAWSSecretsManagerVersionsPropertiesAndBinary(t *testing.T) {
	env, ns := awsTest(t)
	db, v1, v2 := smDB(t, env, ns)
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
}

// Secrets Manager dataFrom.extract of a JSON object, key by key (numbers and
// objects as JSON text).
func TestAWSSecretsManagerExtract(t *testing.T) {
	env, ns := awsTest(t)
	db, _, _ := smDB(t, env, ns)
	env.es(t, ns, "extract", "sm", func(es *v1alpha1.ExternalSecret) {
		es.Spec.DataFrom = []v1alpha1.DataFromSource{{Extract: &v1alpha1.ExtractRef{Key: db}}}
	})
	env.waitReason(t, ns, "extract", v1alpha1.ReasonSynced)
	if s := env.secret(t, ns, "extract"); string(s.Data["password"]) != "pw-2" || string(s.Data["port"]) != "5432" || string(s.Data["nested"]) != `{"a.b":{"c":"deep"}}` {
		t.Errorf("extract Secret = %q", s.Data)
	}
}

// Secrets Manager: a missing property and a missing secret are named errors, not
// silent gaps.
func TestAWSSecretsManagerMissingIsKeyNotFound(t *testing.T) {
	env, ns := awsTest(t)
	db, _, _ := smDB(t, env, ns)
	env.es(t, ns, "noprop", "sm", func(es *v1alpha1.ExternalSecret) {
		es.Spec.Data = []v1alpha1.DataItem{awsRef(db, "x", awsProperty("nope"))}
	})
	env.es(t, ns, "nokey", "sm", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{awsRef(ns+"/absent", "x")} })
	es := env.waitReason(t, ns, "noprop", v1alpha1.ReasonKeyNotFound)
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
}

// Rotation: a new AWSCURRENT reaches the Secret on the next refresh.
func TestAWSRotationReachesSecretOnNextRefresh(t *testing.T) {
	env, ns := awsTest(t)
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
}

// ssmParams creates, in ns, a static-key Parameter Store store "ssm" and
// parameters under /<ns>/ (returned): team/app/... of every type, neighbours that
// a find of team/app/ must not match, and flags/color at versions 1 (blue, label
// "stable"), 2 (green) and 3 (red).
func ssmParams(t *testing.T, env *awsEnv, ns string) string {
	t.Helper()
	env.creds(t, ns)
	env.store(t, ns, "ssm", v1alpha1.AWSServiceParameterStore, awsStaticAuth)
	p := "/" + ns
	env.putParam(t, p+"/team/app/db-password", "s3cr3t-pw", ssmtypes.ParameterTypeSecureString)
	env.putParam(t, p+"/team/app/api/key", "api-key-value", ssmtypes.ParameterTypeSecureString)
	env.putParam(t, p+"/team/app/api/url", "http://127.0.0.1:1/api", ssmtypes.ParameterTypeString)
	env.putParam(t, p+"/team/app/hosts", "a,b,c", ssmtypes.ParameterTypeStringList)
	env.putParam(t, p+"/team/application/not-under", "x", ssmtypes.ParameterTypeString)
	env.putParam(t, p+"/team/other/x", "x", ssmtypes.ParameterTypeString)
	for _, color := range []string{"blue", "green", "red"} {
		env.putParam(t, p+"/flags/color", color, ssmtypes.ParameterTypeString)
	}
	_, err := env.ssm.LabelParameterVersion(env.ctx(), &ssm.LabelParameterVersionInput{Name: awssdk.String(p + "/flags/color"), ParameterVersion: awssdk.Int64(1), Labels: []string{"stable"}})
	must(t, err)
	return p
}

// ssmSecure creates ExternalSecret "secure" reading the SecureString and
// flags/color by label, by version number and latest, and waits until it is Synced.
func ssmSecure(t *testing.T, env *awsEnv, ns, p string) *v1alpha1.ExternalSecret {
	t.Helper()
	env.es(t, ns, "secure", "ssm", func(es *v1alpha1.ExternalSecret) {
		es.Spec.Data = []v1alpha1.DataItem{
			awsRef(p+"/team/app/db-password", "password"),
			awsRef(p+"/flags/color", "stable", awsVersion("stable")),
			awsRef(p+"/flags/color", "v2", awsVersion("2")),
			awsRef(p+"/flags/color", "latest"),
		}
	})
	return env.waitReason(t, ns, "secure", v1alpha1.ReasonSynced)
}

// Parameter Store: a SecureString is read decrypted; a version label and a
// version number select versions; status.sources names each version read.
func TestAWSParameterStoreSecureStringAndVersions(t *testing.T) {
	env, ns := awsTest(t)
	p := ssmParams(t, env, ns)
	raw, err := env.ssm.GetParameter(env.ctx(), &ssm.GetParameterInput{Name: awssdk.String(p + "/team/app/db-password")})
	must(t, err)
	if awssdk.ToString(raw.Parameter.Value) == "s3cr3t-pw" {
		t.Fatal("the emulator returns SecureStrings decrypted without WithDecryption: the test proves nothing")
	}
	es := ssmSecure(t, env, ns, p)
	s := env.secret(t, ns, "secure")
	for k, v := range map[string]string{"password": "s3cr3t-pw", "stable": "blue", "v2": "green", "latest": "red"} {
		if string(s.Data[k]) != v {
			t.Errorf("key %s = %q, want %q", k, s.Data[k], v)
		}
	}
	for _, src := range []v1alpha1.SourceStatus{{Key: p + "/team/app/db-password", Version: "1"}, {Key: p + "/flags/color", Version: "1"}, {Key: p + "/flags/color", Version: "2"}, {Key: p + "/flags/color", Version: "3"}} {
		if !awsHasSource(es, src.Key, src.Version) {
			t.Errorf("status.sources %+v lacks %+v", es.Status.Sources, src)
		}
	}
}

// Parameter Store: find by path with rewrites makes one Secret key per parameter
// under the path; without the nested rewrite a key is invalid.
func TestAWSParameterStoreFindWithRewrite(t *testing.T) {
	env, ns := awsTest(t)
	p := ssmParams(t, env, ns)
	env.es(t, ns, "find", "ssm", func(es *v1alpha1.ExternalSecret) {
		es.Spec.DataFrom = []v1alpha1.DataFromSource{{
			Find: &v1alpha1.FindRef{Path: p + "/team/app/"},
			Rewrite: []v1alpha1.Rewrite{
				{Regexp: v1alpha1.RewriteRegexp{Source: "^" + p + "/team/app/", Target: ""}},
				{Regexp: v1alpha1.RewriteRegexp{Source: "/", Target: "-"}},
			},
		}}
	})
	es := env.waitReason(t, ns, "find", v1alpha1.ReasonSynced)
	s := env.secret(t, ns, "find")
	wantFind := map[string]string{"db-password": "s3cr3t-pw", "api-key": "api-key-value", "api-url": "http://127.0.0.1:1/api", "hosts": "a,b,c"}
	if len(s.Data) != len(wantFind) {
		t.Errorf("find Secret keys = %v, want %v", awsKeysOf(s.Data), wantFind)
	}
	for k, v := range wantFind {
		if string(s.Data[k]) != v {
			t.Errorf("find key %s = %q, want %q", k, s.Data[k], v)
		}
	}
	if len(es.Status.Sources) != 4 || !awsHasSource(es, p+"/team/app/api/key", "1") {
		t.Errorf("find sources = %+v, want one per parameter found, by full name", es.Status.Sources)
	}

	// Without the nested rewrite, "api/key" is not a valid Secret key.
	env.es(t, ns, "find-invalid", "ssm", func(es *v1alpha1.ExternalSecret) {
		es.Spec.DataFrom = []v1alpha1.DataFromSource{{
			Find:    &v1alpha1.FindRef{Path: p + "/team/app"},
			Rewrite: []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "^" + p + "/team/app/", Target: ""}}},
		}}
	})
	env.waitReason(t, ns, "find-invalid", v1alpha1.ReasonInvalidKey)
}

// Parameter Store: a label moved to another version is read on the next refresh.
func TestAWSParameterStoreMovedLabelIsRead(t *testing.T) {
	env, ns := awsTest(t)
	p := ssmParams(t, env, ns)
	ssmSecure(t, env, ns, p)
	_, err := env.ssm.LabelParameterVersion(env.ctx(), &ssm.LabelParameterVersionInput{Name: awssdk.String(p + "/flags/color"), ParameterVersion: awssdk.Int64(3), Labels: []string{"stable"}})
	must(t, err)
	es := env.getES(t, ns, "secure")
	es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "label-moved"}
	must(t, env.kube.Client.Update(env.ctx(), es))
	Eventually(t, 20*time.Second, "moved label read", func() bool { return string(env.secret(t, ns, "secure").Data["stable"]) == "red" })
}

// Batching: 100 ExternalSecrets on one store cost a few batch calls per refresh
// round, and no single reads.
func TestAWSBatchingFewCallsPerRefreshRound(t *testing.T) {
	env := sharedAWS.Get(t)
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
			for i := range n {
				svc.put(t, ns, i, fmt.Sprintf("v1-%d", i))
			}
			for i := range n {
				env.es(t, ns, fmt.Sprintf("es-%03d", i), "store", func(es *v1alpha1.ExternalSecret) {
					es.Spec.RefreshInterval = awsEvery(interval)
					es.Spec.Data = []v1alpha1.DataItem{awsRef(svc.key(ns, i), "v")}
				})
			}
			for i := range n {
				env.waitReasonFor(t, 60*time.Second, ns, fmt.Sprintf("es-%03d", i), v1alpha1.ReasonSynced)
			}
			ops := []string{svc.batchOp, svc.singleOp}
			LetTimePass(t, interval*3/2, "every ExternalSecret refreshes once at its own slot: the store reaches its steady state, refreshes spread over the interval")
			for i := range n {
				svc.put(t, ns, i, fmt.Sprintf("v2-%d", i))
			}
			// (The two services run in parallel, so counts are differences, not ResetCalls.)
			// Two intervals are counted: a window of one can catch one batch at each edge.
			base := env.counts(ops...)
			LetTimePass(t, 2*interval, "the window in which backend calls are counted: two refresh intervals")
			calls := env.counts(ops...)
			for k := range calls {
				calls[k] -= base[k]
			}
			t.Logf("%s: two refresh intervals: %v", svc.name, calls)
			Eventually(t, interval, "every ExternalSecret holds the changed value", func() bool {
				for i := range n {
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
}

// Throttling and outages of the read leave the Secret untouched, report
// Ready=False with a reason, are retried, and recover.
func TestAWSReadFaultLeavesSecretAndRecovers(t *testing.T) {
	cases := []struct {
		kind   awsemu.FaultKind
		reason string
	}{
		{awsemu.FaultThrottle, v1alpha1.ReasonThrottled},
		{awsemu.FaultUnavailable, v1alpha1.ReasonProviderError},
		{awsemu.FaultServerError, v1alpha1.ReasonProviderError},
		{awsemu.FaultClose, v1alpha1.ReasonProviderError},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			env, ns := awsTest(t)
			env.creds(t, ns)
			env.store(t, ns, "sm", v1alpha1.AWSServiceSecretsManager, awsStaticAuth)
			key := ns + "/flaky"
			env.createSecret(t, key, awssdk.String("v0"), nil)
			env.es(t, ns, "flaky", "sm", func(es *v1alpha1.ExternalSecret) {
				es.Spec.RefreshInterval = awsEvery(2 * time.Second)
				es.Spec.Data = []v1alpha1.DataItem{awsRef(key, "k")}
			})
			env.waitReason(t, ns, "flaky", v1alpha1.ReasonSynced)
			before := env.secret(t, ns, "flaky")
			// Every read operation fails; the store check (ListSecrets) is left alone so
			// the ExternalSecret reports the read failure, not StoreNotReady.
			for _, op := range []string{"BatchGetSecretValue", "GetSecretValue"} {
				must(t, env.emu.InjectFault(awsemu.Fault{Op: op, Kind: tc.kind}))
			}
			env.putSecret(t, key, "v1")
			es := env.waitReason(t, ns, "flaky", tc.reason)
			t.Logf("%s: %s", tc.kind, meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady).Message)
			failing := env.emu.Calls("BatchGetSecretValue")
			if !WaitUntil(2*time.Second, func() bool { return env.emu.Calls("BatchGetSecretValue") > failing }) {
				t.Errorf("%s: no retry within 2s", tc.kind)
			}
			if after := env.secret(t, ns, "flaky"); after.ResourceVersion != before.ResourceVersion || string(after.Data["k"]) != "v0" {
				t.Fatalf("%s: Secret changed during the fault: %q (rv %s -> %s)", tc.kind, after.Data["k"], before.ResourceVersion, after.ResourceVersion)
			}
			if es := env.getES(t, ns, "flaky"); !meta.IsStatusConditionFalse(es.Status.Conditions, v1alpha1.ConditionReady) {
				t.Fatalf("%s: Ready is not False: %+v", tc.kind, es.Status.Conditions)
			}
			env.emu.ClearFaults()
			env.waitReason(t, ns, "flaky", v1alpha1.ReasonSynced)
			Eventually(t, 20*time.Second, string(tc.kind)+": new value after recovery", func() bool { return string(env.secret(t, ns, "flaky").Data["k"]) == "v1" })
		})
	}
}

// A canary value never reaches logs, events or status, access denied included.
func TestAWSCanaryNeverLeaks(t *testing.T) {
	const canary = "CANARY-aws-5e1d0b-DO-NOT-LEAK"
	env, ns := awsTest(t)
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

	AssertNoCanary(t, env.kube.Client, ns, canary)
	if !strings.Contains(Logs.String(), ns) {
		t.Error("the operator logged nothing about this namespace: the log check proves nothing")
	}
}
