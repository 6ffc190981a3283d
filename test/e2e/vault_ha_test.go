package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/testenv"
)

const (
	haKVCount    = 49 // plus one database credential: 50 ExternalSecrets
	haGrace      = 30 * time.Second
	haKeysPerKV  = 3 // user, password, round
	haLoginPath  = "auth/approle/login"
	haDynamicES  = "db"
	haRefreshing = 2 * time.Second
)

// haEnv is a 3-node OpenBao Raft cluster behind a round-robin front, PostgreSQL
// for dynamic credentials, envtest and the operator (a child process) whose store
// points at the front.
type haEnv struct {
	kube    *testenv.Kube
	cluster *testenv.RaftCluster
	op      *childOperator
	ns      string
	watch   client.WithWatch
}

func (e *haEnv) write(t *testing.T, path string, data map[string]any) *vaultapi.Secret {
	t.Helper()
	s, err := e.cluster.Client.Logical().WriteWithContext(context.Background(), path, data)
	if err != nil {
		t.Fatalf("vault write %s: %v", path, err)
	}
	return s
}

// putRound writes ha/round through the front, waiting for a cluster that is
// electing a new leader.
func (e *haEnv) putRound(t *testing.T, round string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = e.cluster.Client.KVv2("secret").Put(ctx, "ha/round", map[string]any{"round": round})
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("write ha/round=%s: %v", round, err)
}

func startHAEnv(t *testing.T) *haEnv {
	t.Helper()
	e := &haEnv{kube: testenv.StartKube(t), cluster: testenv.StartRaftCluster(t)}
	pg := testenv.StartPostgres(t)
	ctx := context.Background()
	c := e.cluster.Client
	e.cluster.MountKV2(t, "secret")
	vmust(t, c.Sys().PutPolicyWithContext(ctx, "read", vaultPolicy))
	vmust(t, c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vaultapi.EnableAuthOptions{Type: "approle"}))
	e.write(t, "auth/approle/role/app", map[string]any{"token_policies": "read", "token_ttl": "1h"})
	rid, err := c.Logical().ReadWithContext(ctx, "auth/approle/role/app/role-id")
	vmust(t, err)
	sid := e.write(t, "auth/approle/role/app/secret-id", nil)

	vmust(t, c.Sys().MountWithContext(ctx, "database", &vaultapi.MountInput{Type: "database"}))
	e.write(t, "database/config/pg", map[string]any{
		"plugin_name": "postgresql-database-plugin", "connection_url": pg.VaultConnectionURL(),
		"username": pg.AdminUser, "password": pg.AdminPassword, "allowed_roles": "readonly",
	})
	e.write(t, "database/roles/readonly", map[string]any{
		"db_name":             "pg",
		"creation_statements": `CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
		// Short, so renewals happen every ~10 s and one falls in each failover.
		"default_ttl": "20s", "max_ttl": "1h",
	})
	for i := range haKVCount {
		if _, err := c.KVv2("secret").Put(ctx, fmt.Sprintf("ha/app-%02d", i), map[string]any{"user": fmt.Sprintf("u%02d", i), "password": fmt.Sprintf("p%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	e.putRound(t, "0")

	e.ns = e.kube.Namespace(t, nil)
	vmust(t, e.kube.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "approle"},
		StringData: map[string]string{"role-id": rid.Data["role_id"].(string), "secret-id": sid.Data["secret_id"].(string)}}))
	e.op = startChildOperator(t, e.kube)
	e.watch, err = client.NewWithWatch(e.kube.Config, client.Options{Scheme: testenv.Scheme()})
	vmust(t, err)
	return e
}

func (e *haEnv) createObjects(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "vault"}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: e.cluster.Front.URL(), Auth: v1alpha1.VaultAuth{
			AppRole: &v1alpha1.VaultAppRoleAuth{RoleRef: &v1alpha1.SecretKeySelector{Name: "approle", Key: "role-id"},
				SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}}}}}
	vmust(t, e.kube.Client.Create(ctx, ss))
	refresh := &metav1.Duration{Duration: haRefreshing}
	for i := range haKVCount {
		es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: fmt.Sprintf("kv-%02d", i)},
			Spec: v1alpha1.ExternalSecretSpec{SecretStoreRef: v1alpha1.StoreRef{Name: "vault"}, RefreshInterval: refresh,
				Data: []v1alpha1.DataItem{
					{SecretKey: "user", RemoteRef: &v1alpha1.RemoteRef{Key: fmt.Sprintf("ha/app-%02d", i), Property: "user"}},
					{SecretKey: "password", RemoteRef: &v1alpha1.RemoteRef{Key: fmt.Sprintf("ha/app-%02d", i), Property: "password"}},
					{SecretKey: "round", RemoteRef: &v1alpha1.RemoteRef{Key: "ha/round", Property: "round"}},
				}}}
		vmust(t, e.kube.Client.Create(ctx, es))
	}
	vmust(t, e.kube.Client.Create(ctx, &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: haDynamicES},
		Spec: v1alpha1.ExternalSecretSpec{SecretStoreRef: v1alpha1.StoreRef{Name: "vault"}, RefreshInterval: refresh,
			DataFrom: []v1alpha1.DataFromSource{{Dynamic: &v1alpha1.DynamicRef{Path: "database/creds/readonly", RenewPercent: 50}}}}}))
}

// haMonitor watches the namespace's Secrets, ExternalSecrets and SecretStores and
// records every violation of "a failover goes unnoticed": a Secret written with
// fewer keys than before, an ExternalSecret or store Ready other than True.
type haMonitor struct {
	mu         sync.Mutex
	keys       map[string]int       // Secret name: most keys ever seen
	round      map[string]string    // Secret name: its round value
	roundAt    map[string]time.Time // Secret name: when it first showed want
	want       string
	violations []string
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

func (e *haEnv) monitor(t *testing.T) *haMonitor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &haMonitor{keys: map[string]int{}, round: map[string]string{}, roundAt: map[string]time.Time{}, cancel: cancel}
	for _, l := range []client.ObjectList{&corev1.SecretList{}, &v1alpha1.ExternalSecretList{}, &v1alpha1.SecretStoreList{}} {
		w, err := e.watch.Watch(ctx, l, client.InNamespace(e.ns))
		vmust(t, err)
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						return
					}
					if ev.Type == watch.Added || ev.Type == watch.Modified {
						m.observe(ev.Object)
					}
				}
			}
		}()
	}
	t.Cleanup(m.stop)
	return m
}

func (m *haMonitor) stop() { m.cancel(); m.done.Wait() }

func (m *haMonitor) observe(obj any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	switch o := obj.(type) {
	case *corev1.Secret:
		if o.Name == "approle" {
			return
		}
		if n := len(o.Data); n < m.keys[o.Name] {
			m.violations = append(m.violations, fmt.Sprintf("%s Secret %s written with %d keys, had %d", now.Format(time.StampMilli), o.Name, n, m.keys[o.Name]))
		} else {
			m.keys[o.Name] = n
		}
		if r, ok := o.Data["round"]; ok {
			m.round[o.Name] = string(r)
			if string(r) == m.want && m.roundAt[o.Name].IsZero() {
				m.roundAt[o.Name] = now
			}
		}
	case *v1alpha1.ExternalSecret:
		if c := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue && m.keys[o.Name] > 0 {
			m.violations = append(m.violations, fmt.Sprintf("%s ExternalSecret %s Ready=%s %s: %s", now.Format(time.StampMilli), o.Name, c.Status, c.Reason, c.Message))
		}
	case *v1alpha1.SecretStore:
		if c := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status != metav1.ConditionTrue {
			m.violations = append(m.violations, fmt.Sprintf("%s SecretStore %s Ready=%s %s: %s", now.Format(time.StampMilli), o.Name, c.Status, c.Reason, c.Message))
		}
	}
}

// expect starts measuring when each KV Secret shows round.
func (m *haMonitor) expect(round string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.want = round
	m.roundAt = map[string]time.Time{}
	for name, r := range m.round {
		if r == round {
			m.roundAt[name] = time.Now()
		}
	}
}

// synced is how many KV Secrets show the expected round, and the latest time one
// of them first did.
func (m *haMonitor) synced() (int, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var last time.Time
	for _, at := range m.roundAt {
		if at.After(last) {
			last = at
		}
	}
	return len(m.roundAt), last
}

func (m *haMonitor) failures() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.violations...)
}

// lease is the dynamic ExternalSecret's only lease.
func (e *haEnv) lease(t *testing.T) v1alpha1.LeaseStatus {
	t.Helper()
	es := &v1alpha1.ExternalSecret{}
	vmust(t, e.kube.Client.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: haDynamicES}, es))
	if len(es.Status.Leases) != 1 {
		t.Fatalf("%s has leases %+v, want one", haDynamicES, es.Status.Leases)
	}
	return es.Status.Leases[0]
}

// TestVaultHA: 50 ExternalSecrets (49 KV v2, one PostgreSQL credential) through a
// round-robin front to a 3-node OpenBao Raft cluster ride out SIGKILL of the
// active node, first with the front routing to the active node, then to a standby.
func TestVaultHA(t *testing.T) {
	start := time.Now()
	e := startHAEnv(t)
	t.Logf("cluster, PostgreSQL, envtest and operator up in %s", time.Since(start).Round(time.Second))
	e.createObjects(t)
	m := e.monitor(t)
	m.expect("0")
	Eventually(t, 120*time.Second, "all 50 ExternalSecrets synced", func() bool {
		n, _ := m.synced()
		return n == haKVCount && e.dynamicSynced()
	})
	LetTimePass(t, 3*time.Second, "the initial reconciles settle (status writes trigger more)")
	if f := m.failures(); len(f) > 0 {
		t.Fatalf("before any failover:\n%s", strings.Join(f, "\n"))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator logs (vault, retry, lease lines; every line of the dynamic ExternalSecret):")
			for _, l := range strings.Split(e.op.Logs(), "\n") {
				if strings.Contains(l, "retry") || strings.Contains(l, "lease") || strings.Contains(l, "ERROR") || strings.Contains(l, `"name":"`+haDynamicES+`"`) {
					t.Log(l)
				}
			}
		}
	})

	for i, sc := range []struct {
		name    string
		standby bool // the front routes the operator to a standby
	}{
		{"front routes to the active node", false},
		{"front routes to a standby", true},
	} {
		ok := t.Run(sc.name, func(t *testing.T) { e.failover(t, m, fmt.Sprint(i+1), sc.standby) })
		if !ok {
			return
		}
	}
	e.op.Stop(t)
	t.Logf("the operator retried %d Vault requests during the failovers",
		strings.Count(e.op.Logs(), "vault request failed during a possible failover, retrying"))
}

func (e *haEnv) dynamicSynced() bool {
	s := &corev1.Secret{}
	if err := e.kube.Client.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: haDynamicES}, s); err != nil {
		return false
	}
	return len(s.Data["username"]) > 0 && len(s.Data["password"]) > 0
}

func (e *haEnv) failover(t *testing.T, m *haMonitor, round string, viaStandby bool) {
	active := e.cluster.Active(t, 30*time.Second)
	routed := active
	if viaStandby {
		routed = (active + 1) % len(e.cluster.Nodes)
	}
	e.cluster.Front.Prefer(routed)
	e.cluster.Front.DropConnections()
	LetTimePass(t, 2*haRefreshing, "every connection now goes to the routed node: a refresh round on it")
	// Baseline: how long a new value takes to reach every Secret without a failover
	// (refresh interval, slot jitter, 50 reconciles on a shared machine).
	m.expect(round + "-baseline")
	written := time.Now()
	e.putRound(t, round+"-baseline")
	Eventually(t, haGrace, "every KV ExternalSecret to sync the baseline round", func() bool {
		n, _ := m.synced()
		return n == haKVCount
	})
	_, last := m.synced()
	t.Logf("baseline: every ExternalSecret synced a new value %s after it was written", last.Sub(written).Round(time.Millisecond))
	loginsBefore := e.cluster.AuditCount(t, haLoginPath)
	leaseBefore := e.lease(t)
	if f := m.failures(); len(f) > 0 {
		t.Fatalf("before the kill:\n%s", strings.Join(f, "\n"))
	}

	killed := time.Now()
	e.cluster.Kill(t, active)
	t.Logf("killed node%d (active); the front routes to node%d", active, routed)
	newActive := e.cluster.Active(t, haGrace)
	t.Logf("node%d active %s after the kill", newActive, time.Since(killed).Round(time.Millisecond))
	m.expect(round)
	e.putRound(t, round)
	t.Logf("round %s written %s after the kill", round, time.Since(killed).Round(time.Millisecond))

	Eventually(t, haGrace+10*time.Second, "every KV ExternalSecret to sync the round written after the kill", func() bool {
		n, _ := m.synced()
		return n == haKVCount
	})
	_, last = m.synced()
	gap := last.Sub(killed)
	t.Logf("MAX GAP: every ExternalSecret synced again %s after SIGKILL of the active node", gap.Round(time.Millisecond))
	if gap > haGrace {
		t.Errorf("the last ExternalSecret synced %s after the kill, beyond the %s grace", gap, haGrace)
	}

	Eventually(t, 40*time.Second, "the database lease renewed on the new active node (same lease, later expiry)", func() bool {
		l := e.lease(t)
		return l.ID == leaseBefore.ID && l.ExpiresAt.After(leaseBefore.ExpiresAt.Time) && l.ExpiresAt.After(killed.Add(20*time.Second))
	})
	if got := e.lease(t); got.ID != leaseBefore.ID {
		t.Errorf("the database credential was re-issued (%s -> %s) instead of renewed", leaseBefore.ID, got.ID)
	}
	logins := e.cluster.AuditCount(t, haLoginPath) - loginsBefore
	t.Logf("logins after the failover: %d", logins)
	if logins > 1 {
		t.Errorf("%d logins after the failover, want at most 1 for the one store", logins)
	}
	if f := m.failures(); len(f) > 0 {
		t.Fatalf("the failover was noticed:\n%s", strings.Join(f, "\n"))
	}

	// The killed node comes back, unseals and rejoins; nobody notices.
	e.cluster.Front.Prefer(-1)
	restarted := time.Now()
	e.cluster.Restart(t, active)
	t.Logf("node%d rejoined as a voter %s after its restart", active, time.Since(restarted).Round(time.Millisecond))
	LetTimePass(t, 2*haRefreshing, "two refresh rounds with the restarted node back in the cluster")
	e.checkAllSynced(t, round)
	if f := m.failures(); len(f) > 0 {
		t.Fatalf("the rejoin was noticed:\n%s", strings.Join(f, "\n"))
	}
}

// checkAllSynced: every ExternalSecret Ready for its generation, every KV Secret at
// round with all its keys.
func (e *haEnv) checkAllSynced(t *testing.T, round string) {
	t.Helper()
	var list v1alpha1.ExternalSecretList
	vmust(t, e.kube.Client.List(context.Background(), &list, client.InNamespace(e.ns)))
	var notReady []string
	for _, es := range list.Items {
		c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue {
			notReady = append(notReady, es.Name)
		}
	}
	sort.Strings(notReady)
	if len(list.Items) != haKVCount+1 || len(notReady) > 0 {
		t.Fatalf("%d ExternalSecrets, not Ready: %v", len(list.Items), notReady)
	}
	for i := range haKVCount {
		s := GetSecret(t, e.kube.Client, e.ns, fmt.Sprintf("kv-%02d", i))
		if s == nil || len(s.Data) != haKeysPerKV || string(s.Data["round"]) != round {
			t.Fatalf("Secret kv-%02d = %v keys, round %q; want %d keys at round %s", i, len(s.Data), s.Data["round"], haKeysPerKV, round)
		}
	}
}
