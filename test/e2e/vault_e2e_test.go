package e2e

// End-to-end behaviour of the Vault provider against a real OpenBao dev server
// (audited), with the operator in a child process: one shared envtest, OpenBao and
// operator (sharedVault), one namespace and its own backend paths per test.

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/testenv"
)

// Every auth method syncs the latest and an older KV v2 version of app/db.
func TestVaultAuthSyncsKVVersions(t *testing.T) {
	dbItems := []v1alpha1.DataItem{
		{SecretKey: "password", RemoteRef: &v1alpha1.RemoteRef{Key: "app/db", Property: "password"}},
		{SecretKey: "password-v1", RemoteRef: &v1alpha1.RemoteRef{Key: "app/db", Property: "password", Version: "1"}},
	}
	cases := []struct {
		name string
		auth func(t *testing.T, e *vaultEnv, ns string) v1alpha1.VaultAuth
	}{
		{"token", func(t *testing.T, e *vaultEnv, ns string) v1alpha1.VaultAuth {
			e.secretData(t, ns, "vault-token", map[string]string{"token": e.bao.RootToken})
			return v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}}
		}},
		{"appRole", func(t *testing.T, e *vaultEnv, ns string) v1alpha1.VaultAuth {
			rid, sid := e.appRole(t, "approle-"+ns)
			e.secretData(t, ns, "approle", map[string]string{"secret-id": sid})
			return v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{Path: "approle-" + ns, RoleID: rid,
				SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}
		}},
		{"kubernetes", func(t *testing.T, e *vaultEnv, ns string) v1alpha1.VaultAuth {
			vmust(t, e.kube.Client.Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}}))
			return v1alpha1.VaultAuth{Kubernetes: &v1alpha1.VaultKubernetesAuth{Role: "app", ServiceAccountRef: v1alpha1.ServiceAccountSelector{Name: "app"}}}
		}},
		{"jwt", func(t *testing.T, e *vaultEnv, ns string) v1alpha1.VaultAuth {
			e.secretData(t, ns, "jwt", map[string]string{"token": e.signJWT(t)})
			return v1alpha1.VaultAuth{JWT: &v1alpha1.VaultJWTAuth{Role: "app", SecretRef: &v1alpha1.SecretKeySelector{Name: "jwt", Key: "token"}}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, ns := vaultTest(t)
			e.store(t, ns, tc.auth(t, e, ns))
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
}

// 50 ExternalSecrets on one AppRole store over 3 refresh rounds log in exactly once.
func TestVaultOneLoginForManyExternalSecrets(t *testing.T) {
	e, ns := vaultTest(t)
	mount, item := "approle-"+ns, ns+"/scale/item"
	rid, sid := e.appRole(t, mount)
	e.secretData(t, ns, "approle", map[string]string{"role-id": rid, "secret-id": sid})
	e.kvPut(t, item, map[string]any{"round": "0"})
	e.store(t, ns, v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{Path: mount,
		RoleRef: &v1alpha1.SecretKeySelector{Name: "approle", Key: "role-id"}, SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}})
	const n = 50
	for i := range n {
		e.externalSecret(t, ns, fmt.Sprintf("es-%02d", i), func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "round", RemoteRef: &v1alpha1.RemoteRef{Key: item, Property: "round"}}}
		})
	}
	for round := range 4 { // the initial sync, then 3 refresh rounds with a new remote value each
		if round > 0 {
			e.kvPut(t, item, map[string]any{"round": strconv.Itoa(round)})
		}
		want := strconv.Itoa(round)
		Eventually(t, 60*time.Second, "all 50 Secrets at round "+want, func() bool {
			var list corev1.SecretList
			if err := e.kube.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
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
}

// transitCiphertext mounts the transit engine (once), creates keys app-<ns> and
// other-<ns>, and returns plaintext encrypted with app-<ns>.
func (e *vaultEnv) transitCiphertext(t *testing.T, ns, plaintext string) string {
	t.Helper()
	e.transit.Do(func() {
		vmust(t, e.bao.Client.Sys().MountWithContext(context.Background(), "transit", &vaultapi.MountInput{Type: "transit"}))
	})
	e.write(t, "transit/keys/app-"+ns, nil)
	e.write(t, "transit/keys/other-"+ns, nil)
	return e.write(t, "transit/encrypt/app-"+ns, map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(plaintext))}).Data["ciphertext"].(string)
}

// Transit decrypt writes the plaintext into the Secret (default mount).
func TestVaultTransitDecrypt(t *testing.T) {
	e, ns := vaultTest(t)
	const plaintext = "transit-plain-91c2"
	ct := e.transitCiphertext(t, ns, plaintext)
	e.tokenStore(t, ns, e.bao.Addr, e.bao.RootToken)
	e.externalSecret(t, ns, "good", func(es *v1alpha1.ExternalSecret) {
		es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "api-key", Decrypt: &v1alpha1.DecryptRef{Key: "app-" + ns, Ciphertext: ct}}}
	})
	e.waitReady(t, ns, "good", metav1.ConditionTrue, 30*time.Second)
	if s := e.secret(t, ns, "good"); s == nil || string(s.Data["api-key"]) != plaintext {
		t.Fatalf("decrypted secret = %v", s)
	}
	e.assertNotLogged(t, strings.SplitN(ct, ":", 3)[2], plaintext)
}

// Transit decrypt with the wrong key fails, names the key, and shows no value in
// the condition, events or logs.
func TestVaultTransitWrongKeyFailsWithoutValues(t *testing.T) {
	e, ns := vaultTest(t)
	const plaintext = "transit-plain-91c2"
	ct := e.transitCiphertext(t, ns, plaintext)
	e.tokenStore(t, ns, e.bao.Addr, e.bao.RootToken)
	e.externalSecret(t, ns, "wrong", func(es *v1alpha1.ExternalSecret) {
		es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "api-key", Decrypt: &v1alpha1.DecryptRef{Mount: "transit", Key: "other-" + ns, Ciphertext: ct}}}
	})
	es := e.waitReady(t, ns, "wrong", metav1.ConditionFalse, 30*time.Second)
	msg := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady).Message
	body := strings.SplitN(ct, ":", 3)[2]
	if strings.Contains(msg, body) || strings.Contains(msg, plaintext) || !strings.Contains(msg, "other-"+ns) {
		t.Fatalf("Ready message leaks a value or does not name the key: %q", msg)
	}
	if e.secret(t, ns, "wrong") != nil {
		t.Fatal("a Secret was written for the failed decryption")
	}
	var evs corev1.EventList
	vmust(t, e.kube.Client.List(context.Background(), &evs, client.InNamespace(ns)))
	for _, ev := range evs.Items {
		if strings.Contains(ev.Message, body) || strings.Contains(ev.Message, plaintext) {
			t.Fatalf("event leaks a value: %q", ev.Message)
		}
	}
	e.assertNotLogged(t, body, plaintext)
}

// A sealed Vault (an outage) leaves the Secret untouched, Ready=False, and the
// Secret follows the remote again after unsealing.
func TestVaultSealedLeavesSecretAndRecovers(t *testing.T) {
	e, ns := vaultTest(t)
	path := ns + "/outage/app"
	e.kvPut(t, path, map[string]any{"v": "before"})
	e.tokenStore(t, ns, e.bao.Addr, e.bao.RootToken)
	e.externalSecret(t, ns, "app", func(es *v1alpha1.ExternalSecret) {
		es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
		es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "v", RemoteRef: &v1alpha1.RemoteRef{Key: path, Property: "v"}}}
	})
	e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
	before := e.secret(t, ns, "app")

	e.bao.Seal(t)
	t.Cleanup(func() { // the server is shared: never leave it sealed
		if st, err := e.bao.Client.Sys().SealStatus(); err == nil && st.Sealed {
			e.bao.Unseal(t)
		}
	})
	es := e.waitReady(t, ns, "app", metav1.ConditionFalse, 30*time.Second)
	// A sealed server audits nothing and the status does not change: not observable.
	LetTimePass(t, 2*time.Second, "a few more failing refreshes (every second) must not write the Secret")
	if s := e.secret(t, ns, "app"); s.ResourceVersion != before.ResourceVersion || string(s.Data["v"]) != "before" {
		t.Fatalf("the Secret was written during the outage: %v", s.Data)
	}
	if c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady); c.Reason == v1alpha1.ReasonRemoteNotFound {
		t.Fatalf("an outage was reported as %s", c.Reason)
	}

	e.bao.Unseal(t)
	e.kvPut(t, path, map[string]any{"v": "after"})
	e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
	Eventually(t, 30*time.Second, "the Secret to follow the remote after recovery", func() bool {
		s := e.secret(t, ns, "app")
		return s != nil && string(s.Data["v"]) == "after"
	})
}

// A stopped Vault leaves the Secret untouched, Ready=False, and the Secret follows
// the remote again when it returns. The server is this test's own: a stopped dev
// server comes back empty.
func TestVaultStoppedLeavesSecretAndRecovers(t *testing.T) {
	e, ns := vaultTest(t)
	bao := testenv.StartOpenBao(t)
	kvPut := func(v string) {
		if _, err := bao.Client.KVv2("secret").Put(context.Background(), "stopped/app", map[string]any{"v": v}); err != nil {
			t.Fatalf("kv put: %v", err)
		}
	}
	kvPut("before")
	e.tokenStore(t, ns, bao.Addr, bao.RootToken)
	e.externalSecret(t, ns, "app", func(es *v1alpha1.ExternalSecret) {
		es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
		es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "v", RemoteRef: &v1alpha1.RemoteRef{Key: "stopped/app", Property: "v"}}}
	})
	e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
	before := e.secret(t, ns, "app")

	bao.Stop(t)
	// A refused connection may be a failover: the client retries it for the 30 s
	// grace of api.md before the ExternalSecret turns Ready=False.
	e.waitReady(t, ns, "app", metav1.ConditionFalse, 60*time.Second)
	LetTimePass(t, 2*time.Second, "a few more failing refreshes (every second) must not write the Secret")
	if s := e.secret(t, ns, "app"); s.ResourceVersion != before.ResourceVersion {
		t.Fatalf("the Secret was written while Vault was down: %v", s.Data)
	}

	// Back on the same address with the same root token, but empty (dev server).
	bao.Restart(t)
	kvPut("after")
	e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
	Eventually(t, 30*time.Second, "the Secret to follow the remote after Vault returned", func() bool {
		s := e.secret(t, ns, "app")
		return s != nil && string(s.Data["v"]) == "after"
	})
}

// A dynamic lease is issued once for one ExternalSecret, the finalizer write keeps
// kubectl's annotation, and the synced login works.
func TestVaultDynamicLeaseIssuedOnce(t *testing.T) {
	e, ns := vaultTest(t)
	d := e.dynamicDB(t, ns)
	if es := e.getES(t, ns, "db"); len(es.Finalizers) != 1 || es.Annotations[corev1.LastAppliedConfigAnnotation] == "" {
		t.Fatalf("finalizers %v, annotations %v: want the lease finalizer and kubectl's annotation kept", es.Finalizers, es.Annotations)
	}
	LetTimePass(t, 2*time.Second, "the reconciles that the Secret and status writes trigger must each reuse the lease, not issue another")
	if n := e.bao.AuditCount(t, d.creds); n != 1 {
		t.Fatalf("OpenBao issued %d credentials for one ExternalSecret, want 1 (a second issue leaks the first lease)", n)
	}
	if es := e.getES(t, ns, "db"); len(es.Status.Leases) != 1 {
		t.Fatalf("status.leases = %+v", es.Status.Leases)
	}
	conn, err := pgx.Connect(context.Background(), d.pg.DSNFor(d.user, d.password))
	if err != nil {
		t.Fatalf("the synced login does not work: %v", err)
	}
	conn.Close(context.Background())
	e.assertNotLogged(t, d.password)
}

// A dynamic lease is renewed before it expires: same lease, later expiry, same
// credentials.
func TestVaultDynamicLeaseRenewal(t *testing.T) {
	e, ns := vaultTest(t)
	d := e.dynamicDB(t, ns)
	Eventually(t, 30*time.Second, "the lease to be renewed (expiresAt moves, same lease)", func() bool {
		cur := e.getES(t, ns, "db").Status.Leases
		return len(cur) == 1 && cur[0].ID == d.lease.ID && cur[0].ExpiresAt.After(d.lease.ExpiresAt.Time)
	})
	if got := string(e.secret(t, ns, "db").Data["username"]); got != d.user {
		t.Fatalf("renewal changed the credentials: %q -> %q", d.user, got)
	}
	e.assertNotLogged(t, d.password)
}

// An operator restart keeps the valid lease and the Secret's credentials, even
// when a refresh is forced.
func TestVaultDynamicLeaseKeptAcrossRestart(t *testing.T) {
	e, ns := vaultTest(t)
	d := e.dynamicDB(t, ns)
	e.restartOperator(t)
	es := e.getES(t, ns, "db")
	es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "after-restart"}
	vmust(t, e.kube.Client.Update(context.Background(), es))
	// A forced refresh that keeps the lease changes neither status nor Secret.
	LetTimePass(t, 3*time.Second, "the restarted operator handles the forced refresh: it must not issue new credentials")
	es = e.waitReady(t, ns, "db", metav1.ConditionTrue, 30*time.Second)
	if len(es.Status.Leases) != 1 || es.Status.Leases[0].ID != d.lease.ID {
		t.Fatalf("after restart: leases %+v, want the same lease %s", es.Status.Leases, d.lease.ID)
	}
	if got := string(e.secret(t, ns, "db").Data["username"]); got != d.user {
		t.Fatalf("restart issued new credentials: %q -> %q", d.user, got)
	}
	if n := e.bao.AuditCount(t, d.creds); n != 1 {
		t.Fatalf("OpenBao issued %d credentials, want 1", n)
	}
	e.assertNotLogged(t, d.password)
}

// Deleting the ExternalSecret revokes its lease (the database role is dropped)
// and then releases the finalizer.
func TestVaultDynamicLeaseRevokedOnDelete(t *testing.T) {
	e, ns := vaultTest(t)
	d := e.dynamicDB(t, ns)
	ctx := context.Background()
	vmust(t, e.kube.Client.Delete(ctx, e.getES(t, ns, "db")))
	admin, err := pgx.Connect(ctx, d.pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	Eventually(t, 30*time.Second, "the database role to be dropped after delete", func() bool {
		var n int
		err := admin.QueryRow(ctx, "select count(*) from pg_roles where rolname = $1", d.user).Scan(&n)
		return err == nil && n == 0
	})
	Eventually(t, 30*time.Second, "the ExternalSecret to be gone (finalizer released)", func() bool {
		err := e.kube.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "db"}, &v1alpha1.ExternalSecret{})
		return apierrors.IsNotFound(err)
	})
	e.assertNotLogged(t, d.password)
}
