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
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	// canaries are values that must never appear in the operator's logs.
	canaries []string
}

const vaultPolicy = `
path "secret/*" { capabilities = ["read", "list"] }
path "database/creds/*" { capabilities = ["read"] }
path "sys/leases/renew" { capabilities = ["update"] }
path "sys/leases/revoke" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["update"] }
`

func (e *vaultEnv) write(t *testing.T, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := e.bao.Client.Logical().WriteWithContext(context.Background(), path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

func (e *vaultEnv) kvPut(t *testing.T, path string, data map[string]any) {
	t.Helper()
	if _, err := e.bao.Client.KVv2("secret").Put(context.Background(), path, data); err != nil {
		t.Fatalf("kv put %s: %v", path, err)
	}
}

func (e *vaultEnv) enableAuth(t *testing.T, path, typ string) {
	t.Helper()
	if err := e.bao.Client.Sys().EnableAuthWithOptionsWithContext(context.Background(), path, &vaultapi.EnableAuthOptions{Type: typ}); err != nil {
		t.Fatalf("enable %s auth at %s: %v", typ, path, err)
	}
}

// appRole enables AppRole at mount with role "app" and returns its role id and secret id.
func (e *vaultEnv) appRole(t *testing.T, mount string) (string, string) {
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

func startVaultEnv(t *testing.T) *vaultEnv {
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

func vmust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// signJWT makes an ES256 JWT for the jwt auth role.
func (e *vaultEnv) signJWT(t *testing.T) string {
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

func (e *vaultEnv) secretData(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	vmust(t, e.kube.Client.Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}))
}

// store creates SecretStore "vault" in ns with auth and waits until it is Ready.
func (e *vaultEnv) store(t *testing.T, ns string, auth v1alpha1.VaultAuth) {
	t.Helper()
	ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: e.bao.Addr, Auth: auth}}}}
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

func TestVaultE2E(t *testing.T) {
	e := startVaultEnv(t)
	top := t // the restarted operator must outlive the subtest that restarts it
	ctx := context.Background()
	dbItems := []v1alpha1.DataItem{
		{SecretKey: "password", RemoteRef: &v1alpha1.RemoteRef{Key: "app/db", Property: "password"}},
		{SecretKey: "password-v1", RemoteRef: &v1alpha1.RemoteRef{Key: "app/db", Property: "password", Version: "1"}},
	}

	authCases := []struct {
		name  string
		setup func(t *testing.T, ns string) v1alpha1.VaultAuth
	}{
		{"token", func(t *testing.T, ns string) v1alpha1.VaultAuth {
			e.secretData(t, ns, "vault-token", map[string]string{"token": e.bao.RootToken})
			return v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}}
		}},
		{"appRole", func(t *testing.T, ns string) v1alpha1.VaultAuth {
			rid, sid := e.appRole(t, "approle-"+ns)
			e.secretData(t, ns, "approle", map[string]string{"secret-id": sid})
			return v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{Path: "approle-" + ns, RoleID: rid,
				SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}
		}},
		{"kubernetes", func(t *testing.T, ns string) v1alpha1.VaultAuth {
			vmust(t, e.kube.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}}))
			return v1alpha1.VaultAuth{Kubernetes: &v1alpha1.VaultKubernetesAuth{Role: "app", ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app"}}}
		}},
		{"jwt", func(t *testing.T, ns string) v1alpha1.VaultAuth {
			e.secretData(t, ns, "jwt", map[string]string{"token": e.signJWT(t)})
			return v1alpha1.VaultAuth{JWT: &v1alpha1.VaultJWTAuth{Role: "app", SecretRef: &v1alpha1.SecretKeySelector{Name: "jwt", Key: "token"}}}
		}},
	}
	for _, ac := range authCases {
		t.Run("auth "+ac.name+" syncs the latest and an older KV v2 version", func(t *testing.T) {
			ns := e.kube.Namespace(t, nil)
			e.store(t, ns, ac.setup(t, ns))
			e.externalSecret(t, ns, "db", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = dbItems })
			es := e.waitReady(t, ns, "db", metav1.ConditionTrue, 30*time.Second)
			s := e.secret(t, ns, "db")
			if s == nil || string(s.Data["password"]) != "new-pw" || string(s.Data["password-v1"]) != "old-pw" {
				t.Fatalf("secret data = %v", s)
			}
			versions := map[string]bool{}
			for _, src := range es.Status.Sources {
				versions[src.Key+"@"+src.Version] = true
			}
			if !versions["app/db@2"] || !versions["app/db@1"] {
				t.Fatalf("status.sources = %+v, want app/db at versions 2 and 1", es.Status.Sources)
			}
		})
	}

	t.Run("50 ExternalSecrets over 3 refresh rounds log in exactly once", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		mount := "approle-scale"
		rid, sid := e.appRole(t, mount)
		e.secretData(t, ns, "approle", map[string]string{"role-id": rid, "secret-id": sid})
		e.kvPut(t, "scale/item", map[string]any{"round": "0"})
		e.store(t, ns, v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{Path: mount,
			RoleRef: &v1alpha1.SecretKeySelector{Name: "approle", Key: "role-id"}, SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}})
		const n = 50
		for i := range n {
			e.externalSecret(t, ns, fmt.Sprintf("es-%02d", i), func(es *v1alpha1.ExternalSecret) {
				es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
				es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "round", RemoteRef: &v1alpha1.RemoteRef{Key: "scale/item", Property: "round"}}}
			})
		}
		for round := range 4 { // the initial sync, then 3 refresh rounds with a new remote value each
			if round > 0 {
				e.kvPut(t, "scale/item", map[string]any{"round": strconv.Itoa(round)})
			}
			want := strconv.Itoa(round)
			Eventually(t, 60*time.Second, "all 50 Secrets at round "+want, func() bool {
				var list corev1.SecretList
				if err := e.kube.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
					return false
				}
				done := 0
				for _, s := range list.Items {
					if string(s.Data["round"]) == want {
						done++
					}
				}
				return done == n
			})
		}
		if got := e.bao.AuditCount(t, "auth/"+mount+"/login"); got != 1 {
			t.Fatalf("OpenBao audited %d logins at auth/%s/login for %d ExternalSecrets over 3 refresh rounds, want 1", got, mount, n)
		}
	})

	t.Run("transit decrypt, and a wrong key fails without values", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		if err := e.bao.Client.Sys().MountWithContext(ctx, "transit", &vaultapi.MountInput{Type: "transit"}); err != nil {
			t.Fatal(err)
		}
		e.write(t, "transit/keys/app", nil)
		e.write(t, "transit/keys/other", nil)
		const plaintext = "transit-plain-91c2"
		ct := e.write(t, "transit/encrypt/app", map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(plaintext))}).Data["ciphertext"].(string)
		e.secretData(t, ns, "vault-token", map[string]string{"token": e.bao.RootToken})
		e.store(t, ns, v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}})

		e.externalSecret(t, ns, "good", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "api-key", Decrypt: &v1alpha1.DecryptRef{Key: "app", Ciphertext: ct}}}
		})
		e.waitReady(t, ns, "good", metav1.ConditionTrue, 30*time.Second)
		if s := e.secret(t, ns, "good"); s == nil || string(s.Data["api-key"]) != plaintext {
			t.Fatalf("decrypted secret = %v", s)
		}

		e.externalSecret(t, ns, "wrong", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "api-key", Decrypt: &v1alpha1.DecryptRef{Mount: "transit", Key: "other", Ciphertext: ct}}}
		})
		es := e.waitReady(t, ns, "wrong", metav1.ConditionFalse, 30*time.Second)
		msg := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady).Message
		body := strings.SplitN(ct, ":", 3)[2]
		if strings.Contains(msg, body) || strings.Contains(msg, plaintext) || !strings.Contains(msg, "other") {
			t.Fatalf("Ready message leaks a value or does not name the key: %q", msg)
		}
		if e.secret(t, ns, "wrong") != nil {
			t.Fatal("a Secret was written for the failed decryption")
		}
		var evs corev1.EventList
		vmust(t, e.kube.Client.List(ctx, &evs, client.InNamespace(ns)))
		for _, ev := range evs.Items {
			if strings.Contains(ev.Message, body) || strings.Contains(ev.Message, plaintext) {
				t.Fatalf("event leaks a value: %q", ev.Message)
			}
		}
		e.canaries = append(e.canaries, body, plaintext)
	})

	t.Run("an outage leaves the Secret untouched, Ready=False, and recovers", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		e.kvPut(t, "outage/app", map[string]any{"v": "before"})
		e.secretData(t, ns, "vault-token", map[string]string{"token": e.bao.RootToken})
		e.store(t, ns, v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}})
		e.externalSecret(t, ns, "app", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "v", RemoteRef: &v1alpha1.RemoteRef{Key: "outage/app", Property: "v"}}}
		})
		e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
		before := e.secret(t, ns, "app")

		e.bao.Seal(t)
		es := e.waitReady(t, ns, "app", metav1.ConditionFalse, 30*time.Second)
		time.Sleep(2 * time.Second) // a few more failing refreshes
		if s := e.secret(t, ns, "app"); s.ResourceVersion != before.ResourceVersion || string(s.Data["v"]) != "before" {
			t.Fatalf("the Secret was written during the outage: %v", s.Data)
		}
		if c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady); c.Reason == v1alpha1.ReasonRemoteNotFound {
			t.Fatalf("an outage was reported as %s", c.Reason)
		}

		e.bao.Unseal(t)
		e.kvPut(t, "outage/app", map[string]any{"v": "after"})
		e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
		Eventually(t, 30*time.Second, "the Secret to follow the remote after recovery", func() bool {
			s := e.secret(t, ns, "app")
			return s != nil && string(s.Data["v"]) == "after"
		})
	})

	t.Run("dynamic database credentials: issued, renewed, kept across a restart, revoked on delete", func(t *testing.T) {
		pg := testenv.StartPostgres(t)
		if err := e.bao.Client.Sys().MountWithContext(ctx, "database", &vaultapi.MountInput{Type: "database"}); err != nil {
			t.Fatal(err)
		}
		e.write(t, "database/config/pg", map[string]any{
			"plugin_name": "postgresql-database-plugin", "connection_url": pg.VaultConnectionURL(),
			"username": pg.AdminUser, "password": pg.AdminPassword, "allowed_roles": "readonly",
		})
		e.write(t, "database/roles/readonly", map[string]any{
			"db_name":             "pg",
			"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
			"default_ttl":         "10s", "max_ttl": "1h",
		})
		ns := e.kube.Namespace(t, nil)
		rid, sid := e.appRole(t, "approle-db")
		e.secretData(t, ns, "approle", map[string]string{"secret-id": sid})
		e.store(t, ns, v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{Path: "approle-db", RoleID: rid,
			SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}})
		e.externalSecret(t, ns, "db", func(es *v1alpha1.ExternalSecret) {
			es.Spec.DataFrom = []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "database/creds/readonly", RenewPercent: 50}}}
			// As `kubectl apply` leaves it: the operator's cache drops this annotation,
			// and its finalizer write must not delete it on the server.
			es.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: `{"kind":"ExternalSecret"}`}
		})
		e.waitReady(t, ns, "db", metav1.ConditionTrue, 30*time.Second)
		if es := e.getES(t, ns, "db"); len(es.Finalizers) != 1 || es.Annotations[corev1.LastAppliedConfigAnnotation] == "" {
			t.Fatalf("finalizers %v, annotations %v: want the lease finalizer and kubectl's annotation kept", es.Finalizers, es.Annotations)
		}
		// Let the reconciles that the Secret and status writes trigger settle: each
		// must reuse the lease, not issue another one.
		time.Sleep(2 * time.Second)
		if n := e.bao.AuditCount(t, "database/creds/readonly"); n != 1 {
			t.Fatalf("OpenBao issued %d credentials for one ExternalSecret, want 1 (a second issue leaks the first lease)", n)
		}
		es := e.getES(t, ns, "db")
		if len(es.Status.Leases) != 1 {
			t.Fatalf("status.leases = %+v", es.Status.Leases)
		}
		lease := es.Status.Leases[0]
		s := e.secret(t, ns, "db")
		user, pw := string(s.Data["username"]), string(s.Data["password"])
		conn, err := pgx.Connect(ctx, pg.DSNFor(user, pw))
		if err != nil {
			t.Fatalf("the synced login does not work: %v", err)
		}
		conn.Close(ctx)

		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("leases at the start %+v, now %+v", lease, e.getES(t, ns, "db").Status)
				for _, l := range strings.Split(e.op.Logs(), "\n") {
					if strings.Contains(l, ns) || strings.Contains(strings.ToLower(l), "lease") {
						t.Log(l)
					}
				}
			}
		})
		Eventually(t, 30*time.Second, "the lease to be renewed (expiresAt moves, same lease)", func() bool {
			cur := e.getES(t, ns, "db").Status.Leases
			return len(cur) == 1 && cur[0].ID == lease.ID && cur[0].ExpiresAt.After(lease.ExpiresAt.Time)
		})
		if got := string(e.secret(t, ns, "db").Data["username"]); got != user {
			t.Fatalf("renewal changed the credentials: %q -> %q", user, got)
		}

		// Restart the operator: the valid lease and the Secret's credentials are kept.
		e.canaries = append(e.canaries, pw)
		e.op.Stop(t)
		e.op = startChildOperator(top, e.kube)
		e.ops = append(e.ops, e.op)
		es = e.getES(t, ns, "db")
		es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "after-restart"}
		vmust(t, e.kube.Client.Update(ctx, es))
		time.Sleep(3 * time.Second)
		es = e.waitReady(t, ns, "db", metav1.ConditionTrue, 30*time.Second)
		if len(es.Status.Leases) != 1 || es.Status.Leases[0].ID != lease.ID {
			t.Fatalf("after restart: leases %+v, want the same lease %s", es.Status.Leases, lease.ID)
		}
		if got := string(e.secret(t, ns, "db").Data["username"]); got != user {
			t.Fatalf("restart issued new credentials: %q -> %q", user, got)
		}
		if n := e.bao.AuditCount(t, "database/creds/readonly"); n != 1 {
			t.Fatalf("OpenBao issued %d credentials, want 1", n)
		}

		vmust(t, e.kube.Client.Delete(ctx, es))
		admin, err := pgx.Connect(ctx, pg.DSN())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		Eventually(t, 30*time.Second, "the database role to be dropped after delete", func() bool {
			var n int
			err := admin.QueryRow(ctx, "select count(*) from pg_roles where rolname = $1", user).Scan(&n)
			return err == nil && n == 0
		})
		Eventually(t, 30*time.Second, "the ExternalSecret to be gone (finalizer released)", func() bool {
			err := e.kube.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "db"}, &v1alpha1.ExternalSecret{})
			return apierrors.IsNotFound(err)
		})
	})

	// Last: a stopped dev server comes back empty, so everything above is gone after it.
	t.Run("a stopped Vault leaves the Secret untouched, Ready=False, and recovers when it returns", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		e.kvPut(t, "stopped/app", map[string]any{"v": "before"})
		e.secretData(t, ns, "vault-token", map[string]string{"token": e.bao.RootToken})
		e.store(t, ns, v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}})
		e.externalSecret(t, ns, "app", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "v", RemoteRef: &v1alpha1.RemoteRef{Key: "stopped/app", Property: "v"}}}
		})
		e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
		before := e.secret(t, ns, "app")

		e.bao.Stop(t)
		// A refused connection may be a failover: the client retries it for the
		// 30 s grace of api.md before the ExternalSecret turns Ready=False.
		e.waitReady(t, ns, "app", metav1.ConditionFalse, 60*time.Second)
		time.Sleep(2 * time.Second)
		if s := e.secret(t, ns, "app"); s.ResourceVersion != before.ResourceVersion {
			t.Fatalf("the Secret was written while Vault was down: %v", s.Data)
		}

		// Back on the same address with the same root token, but empty (dev server).
		e.bao.Restart(t)
		e.kvPut(t, "stopped/app", map[string]any{"v": "after"})
		e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
		Eventually(t, 30*time.Second, "the Secret to follow the remote after Vault returned", func() bool {
			s := e.secret(t, ns, "app")
			return s != nil && string(s.Data["v"]) == "after"
		})
	})

	t.Run("no secret value in the operator's logs", func(t *testing.T) {
		var logs string
		for _, op := range e.ops {
			op.Stop(t)
			logs += op.Logs()
		}
		if !strings.Contains(logs, "Starting workers") {
			t.Fatalf("the operator's logs were not captured:\n%s", logs)
		}
		for _, c := range e.canaries {
			if strings.Contains(logs, c) {
				t.Errorf("the operator's logs contain a secret value (%d bytes)", len(c))
			}
		}
	})
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

// TestVaultOperatorProcess is TestVaultE2E's operator process, not a test of its own:
// it runs the operator with the real Vault provider until its stdin closes, then
// prints the operator's logs.
func TestVaultOperatorProcess(t *testing.T) {
	raw := os.Getenv(childKubeEnv)
	if raw == "" {
		t.Skip("helper process of TestVaultE2E")
	}
	var ck childKube
	vmust(t, json.Unmarshal([]byte(raw), &ck))
	cfg := &rest.Config{Host: ck.Host, TLSClientConfig: rest.TLSClientConfig{CAData: ck.CAData, CertData: ck.CertData, KeyData: ck.KeyData}}
	c, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	vmust(t, err)
	op := StartOperator(t, &testenv.Kube{Config: cfg, Client: c, Scheme: testenv.Scheme()}, provider.NewRegistry(vault.New()))
	fmt.Println(childStarted)
	_, _ = io.Copy(io.Discard, os.Stdin)
	op.Stop()
	fmt.Print(Logs.String())
}

const childStarted = "VAULT-E2E-OPERATOR-STARTED"

type childOperator struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *syncBuffer
	done  chan struct{}
	once  sync.Once
}

func startChildOperator(t *testing.T, kube *testenv.Kube) *childOperator {
	t.Helper()
	raw, err := json.Marshal(childKube{Host: kube.Config.Host, CAData: kube.Config.CAData, CertData: kube.Config.CertData, KeyData: kube.Config.KeyData})
	vmust(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestVaultOperatorProcess$", "-test.count=1", "-test.timeout=30m")
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
func (o *childOperator) Stop(t *testing.T) {
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

// Logs is everything the child printed: its test output and, once stopped, the
// operator's logs.
func (o *childOperator) Logs() string { return o.out.String() }
