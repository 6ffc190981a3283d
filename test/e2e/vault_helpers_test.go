package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
)

// vaultEnv is one envtest, one OpenBao dev server (audited) and one operator whose
// registry holds the real Vault provider.
type vaultEnv struct {
	kube   *testenv.Kube
	bao    *testenv.OpenBao
	op     *childOperator
	ops    []*childOperator // every operator process started, for the log canary check
	jwtKey *ecdsa.PrivateKey

	transit sync.Once // mounts the transit engine, for the tests that use it
}

// sharedVault is the environment of the TestVault* tests. Each test uses its own
// namespace and its own backend paths (AppRole mounts, KV paths, transit keys,
// database roles named after the namespace), so that audit counts are its own.
var sharedVault = &Shared[vaultEnv]{What: "envtest, OpenBao and the operator process for TestVault*", Start: startVaultEnv}

// vaultTest returns the shared environment and a new namespace for t whose
// ExternalSecrets are deleted when t ends, so their refreshes (some every second)
// do not run on behind later tests.
func vaultTest(t *testing.T) (*vaultEnv, string) {
	t.Helper()
	e := sharedVault.Get(t)
	ns := e.kube.Namespace(t, nil)
	t.Cleanup(func() {
		if err := e.kube.Client.DeleteAllOf(context.Background(), &v1alpha1.ExternalSecret{}, client.InNamespace(ns)); err != nil {
			t.Errorf("delete ExternalSecrets in %s: %v", ns, err)
		}
	})
	return e, ns
}

// tokenStore creates Secret "vault-token" with the root token of the server at
// addr, and SecretStore "vault" using it, and waits until the store is Ready.
func (e *vaultEnv) tokenStore(t *testing.T, ns, addr, token string) {
	t.Helper()
	e.secretData(t, ns, "vault-token", map[string]string{"token": token})
	e.storeAt(t, ns, addr, v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}})
}

// restartOperator replaces the operator process with a new one, which outlives t.
func (e *vaultEnv) restartOperator(t *testing.T) {
	t.Helper()
	e.op.Stop(t)
	suite.With(t, func(tb testing.TB) { e.op = startChildOperator(tb, e.kube) })
	e.ops = append(e.ops, e.op)
}

// assertNotLogged fails t if the logs of the operator processes so far contain
// one of values. The processes stream their logs, so this reads them while the
// operator runs.
func (e *vaultEnv) assertNotLogged(t *testing.T, values ...string) {
	t.Helper()
	var logs string
	for _, op := range e.ops {
		logs += op.Logs()
	}
	if !strings.Contains(logs, "Starting workers") {
		t.Fatalf("the operator's logs were not captured:\n%s", logs)
	}
	for _, v := range values {
		if strings.Contains(logs, v) {
			t.Errorf("the operator's logs contain a secret value (%d bytes)", len(v))
		}
	}
}

const vaultPolicy = `
path "secret/*" { capabilities = ["read", "list"] }
path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["update"] }
`

func (e *vaultEnv) write(t testing.TB, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := e.bao.Client.Logical().WriteWithContext(context.Background(), path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

func (e *vaultEnv) kvPut(t testing.TB, path string, data map[string]any) {
	t.Helper()
	if _, err := e.bao.Client.KVv2("secret").Put(context.Background(), path, data); err != nil {
		t.Fatalf("kv put %s: %v", path, err)
	}
}

func (e *vaultEnv) enableAuth(t testing.TB, path, typ string) {
	t.Helper()
	if err := e.bao.Client.Sys().EnableAuthWithOptionsWithContext(context.Background(), path, &vaultapi.EnableAuthOptions{Type: typ}); err != nil {
		t.Fatalf("enable %s auth at %s: %v", typ, path, err)
	}
}

// appRole enables AppRole at mount with role "app" and returns its role id and secret id.
func (e *vaultEnv) appRole(t testing.TB, mount string) (string, string) {
	t.Helper()
	e.enableAuth(t, mount, "approle")
	e.write(t, "auth/"+mount+"/role/app", map[string]any{"token_policies": "read", "token_ttl": "1h"})
	rid, err := e.bao.Client.Logical().ReadWithContext(context.Background(), "auth/"+mount+"/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid := e.write(t, "auth/"+mount+"/role/app/secret-id", nil)
	return rid.Data["role_id"].(string), sid.Data["secret_id"].(string)
}

func startVaultEnv(t testing.TB) *vaultEnv {
	t.Helper()
	e := &vaultEnv{kube: testenv.StartKube(t), bao: testenv.StartOpenBao(t)}
	e.bao.EnableAudit(t)
	ctx := context.Background()
	if err := e.bao.Client.Sys().PutPolicyWithContext(ctx, "read", vaultPolicy); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"old-pw", "new-pw"} {
		e.kvPut(t, "app/db", map[string]any{"username": "app", "password": pw})
	}

	// Kubernetes auth against the envtest API server: a reviewer ServiceAccount bound
	// to system:auth-delegator, whose token OpenBao uses for TokenReview.
	c := e.kube.Client
	ensureNamespace(t, e.kube, "vault-auth")
	vmust(t, c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reviewer", Namespace: "vault-auth"}}))
	vmust(t, c.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "vault-reviewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reviewer", Namespace: "vault-auth"}},
	}))
	reviewer := e.kube.APIServerToken(t, "vault-auth", "reviewer")
	host := e.kube.Config.Host
	if !strings.HasPrefix(host, "https://") {
		host = "https://" + host
	}
	e.enableAuth(t, "kubernetes", "kubernetes")
	e.write(t, "auth/kubernetes/config", map[string]any{
		"kubernetes_host": host, "kubernetes_ca_cert": string(e.kube.Config.CAData),
		"token_reviewer_jwt": reviewer, "disable_local_ca_jwt": true,
	})
	e.write(t, "auth/kubernetes/role/app", map[string]any{
		"bound_service_account_names": "app", "bound_service_account_namespaces": "*",
		"audience": "vault", "token_policies": "read", "token_ttl": "1h",
	})

	// JWT auth with a locally generated key (the test signs the JWT).
	var err error
	e.jwtKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&e.jwtKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	e.enableAuth(t, "jwt", "jwt")
	e.write(t, "auth/jwt/config", map[string]any{"jwt_validation_pubkeys": []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}})
	e.write(t, "auth/jwt/role/app", map[string]any{
		"role_type": "jwt", "bound_audiences": "vault", "user_claim": "sub", "token_policies": "read", "token_ttl": "1h",
	})

	e.op = startChildOperator(t, e.kube)
	e.ops = append(e.ops, e.op)
	return e
}

func vmust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// signJWT makes an ES256 JWT for the jwt auth role.
func (e *vaultEnv) signJWT(t testing.TB) string {
	t.Helper()
	enc := base64.RawURLEncoding
	hdr, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT"})
	body, _ := json.Marshal(map[string]any{"sub": "ci", "aud": "vault", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	signing := enc.EncodeToString(hdr) + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, e.jwtKey, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig)
}

func (e *vaultEnv) secretData(t testing.TB, ns, name string, data map[string]string) {
	t.Helper()
	vmust(t, e.kube.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}))
}

// store creates SecretStore "vault" in ns with auth and waits until it is Ready.
func (e *vaultEnv) store(t *testing.T, ns string, auth v1alpha1.VaultAuth) {
	t.Helper()
	e.storeAt(t, ns, e.bao.Addr, auth)
}

// storeAt is store for the server at addr.
func (e *vaultEnv) storeAt(t *testing.T, ns, addr string, auth v1alpha1.VaultAuth) {
	t.Helper()
	ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: addr, Auth: auth}}}}
	vmust(t, e.kube.Client.Create(context.Background(), ss))
	Eventually(t, 30*time.Second, "SecretStore "+ns+"/vault Ready", func() bool {
		_ = e.kube.Client.Get(context.Background(), client.ObjectKeyFromObject(ss), ss)
		return meta.IsStatusConditionTrue(ss.Status.Conditions, v1alpha1.ConditionReady)
	})
}

func (e *vaultEnv) externalSecret(t *testing.T, ns, name string, mutate func(*v1alpha1.ExternalSecret)) {
	t.Helper()
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.ExternalSecretSpec{SecretStoreRef: v1alpha1.StoreRef{Name: "vault"}}}
	mutate(es)
	vmust(t, e.kube.Client.Create(context.Background(), es))
}

func (e *vaultEnv) getES(t *testing.T, ns, name string) *v1alpha1.ExternalSecret {
	t.Helper()
	es := &v1alpha1.ExternalSecret{}
	vmust(t, e.kube.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, es))
	return es
}

// waitReady waits until the ExternalSecret's current generation has Ready=status.
func (e *vaultEnv) waitReady(t *testing.T, ns, name string, status metav1.ConditionStatus, timeout time.Duration) *v1alpha1.ExternalSecret {
	t.Helper()
	var es *v1alpha1.ExternalSecret
	Eventually(t, timeout, fmt.Sprintf("%s/%s Ready=%s", ns, name, status), func() bool {
		es = &v1alpha1.ExternalSecret{}
		if err := e.kube.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, es); err != nil {
			return false
		}
		c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == status && es.Status.ObservedGeneration == es.Generation
	})
	return es
}

func (e *vaultEnv) secret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	return GetSecret(t, e.kube.Client, ns, name)
}

// The operator runs in a child process (this test binary, running
// TestVaultOperatorProcess): controller-runtime refuses a second controller with the
// same name in one process, so an in-process operator could neither be restarted nor
// share the package's test process with other suites' operators.
const childKubeEnv = "SECRETSYNC_VAULT_E2E_KUBE"

// childKube is how the child reaches the envtest API server (admin credentials).
type childKube struct {
	Host                      string
	CAData, CertData, KeyData []byte
}

// TestVaultOperatorProcess is the TestVault* tests' operator process, not a test of
// its own: it runs the operator with the real Vault provider, printing its logs,
// until its stdin closes.
func TestVaultOperatorProcess(t *testing.T) {
	raw := os.Getenv(childKubeEnv)
	if raw == "" {
		t.Skip("helper process of the TestVault* tests")
	}
	var ck childKube
	vmust(t, json.Unmarshal([]byte(raw), &ck))
	cfg := &rest.Config{Host: ck.Host, TLSClientConfig: rest.TLSClientConfig{CAData: ck.CAData, CertData: ck.CertData, KeyData: ck.KeyData}}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	vmust(t, err)
	// The logs go to stdout as they are written, so the parent can check them
	// while this process runs.
	setLogger.Do(func() {
		ctrl.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(Logs, os.Stdout)), zap.UseDevMode(true)))
	})
	op := StartOperator(t, &testenv.Kube{Config: cfg, Client: c, Scheme: testenv.Scheme()}, provider.NewRegistry(vault.New()))
	fmt.Println(childStarted)
	_, _ = io.Copy(io.Discard, os.Stdin)
	op.Stop()
}

const childStarted = "VAULT-E2E-OPERATOR-STARTED"

type childOperator struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
	done  chan struct{}
	once  sync.Once
}

func startChildOperator(t testing.TB, kube *testenv.Kube) *childOperator {
	t.Helper()
	raw, err := json.Marshal(childKube{Host: kube.Config.Host, CAData: kube.Config.CAData, CertData: kube.Config.CertData, KeyData: kube.Config.KeyData})
	vmust(t, err)
	// A long-lived child stopped by its Stop (SIGTERM, logs flushed), not by a context.
	cmd := exec.Command(os.Args[0], "-test.run=^TestVaultOperatorProcess$", "-test.count=1", "-test.timeout=30m") //nolint:noctx // see above
	cmd.Env = append(os.Environ(), childKubeEnv+"="+string(raw))
	o := &childOperator{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = o.out, o.out
	if o.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start operator process: %v", err)
	}
	go func() { _ = cmd.Wait(); close(o.done) }()
	t.Cleanup(func() { o.Stop(t) })
	deadline := time.After(60 * time.Second)
	for !strings.Contains(o.out.String(), childStarted) {
		select {
		case <-o.done:
			t.Fatalf("operator process exited:\n%s", o.out.String())
		case <-deadline:
			t.Fatalf("operator process did not start in 60s:\n%s", o.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return o
}

// Stop closes the child's stdin (a graceful stop) and waits, killing it after 30s.
func (o *childOperator) Stop(t testing.TB) {
	o.once.Do(func() {
		_ = o.stdin.Close()
		select {
		case <-o.done:
		case <-time.After(30 * time.Second):
			_ = o.cmd.Process.Kill()
			<-o.done
			t.Errorf("operator process did not stop in 30s")
		}
	})
}

// Logs is everything the child printed so far: the operator's logs and its test output.
func (o *childOperator) Logs() string { return o.out.String() }

// sharedPostgres is the PostgreSQL server of the TestVaultDynamic* tests, managed
// by OpenBao's database engine at database/ (connection "pg"); each test makes a
// role of its own. Get it after sharedVault.
var sharedPostgres = &Shared[testenv.Postgres]{What: "PostgreSQL for TestVaultDynamic*", Start: func(tb testing.TB) *testenv.Postgres {
	e := sharedVault.env
	pg := testenv.StartPostgres(tb)
	vmust(tb, e.bao.Client.Sys().MountWithContext(context.Background(), "database", &vaultapi.MountInput{Type: "database"}))
	e.write(tb, "database/config/pg", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": pg.VaultConnectionURL(),
		"username": pg.AdminUser, "password": pg.AdminPassword, "allowed_roles": "*",
	})
	return pg
}}

// dynamicLease is what dynamicDB set up.
type dynamicLease struct {
	pg             *testenv.Postgres
	creds          string // the path credentials are issued at, database/creds/<role>
	lease          v1alpha1.LeaseStatus
	user, password string // the credentials in the Secret
}

// dynamicDB creates a database role of ns's own (credentials valid 10s), an AppRole
// store and ExternalSecret "db" leasing credentials (renewed at 50% of the TTL,
// with kubectl's last-applied annotation), waits until it is Ready and returns the
// lease and the credentials. When t fails, its log shows the lease then and now and
// the operator's log lines about ns or leases.
func (e *vaultEnv) dynamicDB(t *testing.T, ns string) dynamicLease {
	t.Helper()
	d := dynamicLease{pg: sharedPostgres.Get(t), creds: "database/creds/ro-" + ns}
	e.write(t, "database/roles/ro-"+ns, map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		"default_ttl":         "10s", "max_ttl": "1h",
	})
	rid, sid := e.appRole(t, "approle-"+ns)
	e.secretData(t, ns, "approle", map[string]string{"secret-id": sid})
	e.store(t, ns, v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{Path: "approle-" + ns, RoleID: rid,
		SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}})
	e.externalSecret(t, ns, "db", func(es *v1alpha1.ExternalSecret) {
		es.Spec.DataFrom = []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: d.creds, RenewPercent: 50}}}
		// As `kubectl apply` leaves it: the operator's cache drops this annotation,
		// and its finalizer write must not delete it on the server.
		es.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: `{"kind":"ExternalSecret"}`}
	})
	es := e.waitReady(t, ns, "db", metav1.ConditionTrue, 30*time.Second)
	if len(es.Status.Leases) != 1 {
		t.Fatalf("status.leases = %+v", es.Status.Leases)
	}
	d.lease = es.Status.Leases[0]
	s := e.secret(t, ns, "db")
	d.user, d.password = string(s.Data["username"]), string(s.Data["password"])
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		now := &v1alpha1.ExternalSecret{}
		err := e.kube.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "db"}, now)
		t.Logf("lease at the start %+v, now %+v (%v)", d.lease, now.Status, err)
		for _, op := range e.ops {
			for _, l := range strings.Split(op.Logs(), "\n") {
				if strings.Contains(l, ns) || strings.Contains(strings.ToLower(l), "lease") {
					t.Log(l)
				}
			}
		}
	})
	return d
}
