package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/testenv"
)

// syncEnv is one envtest + one operator backed by the in-memory provider
// (registered under the name "vault", so Vault-shaped stores select it).
type syncEnv struct {
	kube *testenv.Kube
	mem  *memory.Backend
	op   *Operator
}

func (e *syncEnv) ctx() context.Context { return context.Background() }

func (e *syncEnv) store(t *testing.T, ns string) {
	t.Helper()
	c := e.kube.Client
	tok := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tok"}, StringData: map[string]string{"token": "t"}}
	must(t, c.Create(e.ctx(), tok))
	ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "mem"}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "http://127.0.0.1:1",
			Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token"}}}}}}
	must(t, c.Create(e.ctx(), ss))
	Eventually(t, 20*time.Second, "store Ready", func() bool {
		_ = c.Get(e.ctx(), client.ObjectKeyFromObject(ss), ss)
		return meta.IsStatusConditionTrue(ss.Status.Conditions, v1alpha1.ConditionReady)
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *syncEnv) es(t *testing.T, ns, name string, mutate func(*v1alpha1.ExternalSecret)) *v1alpha1.ExternalSecret {
	t.Helper()
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ExternalSecretSpec{
		SecretStoreRef: v1alpha1.StoreRef{Name: "mem"}}}
	mutate(es)
	must(t, e.kube.Client.Create(e.ctx(), es))
	return es
}

func remote(key, secretKey string) v1alpha1.DataItem {
	return v1alpha1.DataItem{SecretKey: secretKey, RemoteRef: &v1alpha1.RemoteRef{Key: key}}
}

// waitReason waits until the ExternalSecret's Ready condition has reason.
func (e *syncEnv) waitReason(t *testing.T, ns, name, reason string) *v1alpha1.ExternalSecret {
	t.Helper()
	return WaitESReason(t, e.kube.Client, 20*time.Second, ns, name, reason)
}

// syncedOld creates, in a new namespace with a store, ExternalSecret name reading
// remote key <ns>/k = "old" into key k, and waits until it is Synced.
func (e *syncEnv) syncedOld(t *testing.T, name string) (string, *v1alpha1.ExternalSecret) {
	t.Helper()
	ns := e.kube.Namespace(t, nil)
	e.store(t, ns)
	e.mem.Put(ns+"/k", []byte("old"), nil)
	es := e.es(t, ns, name, func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")} })
	e.waitReason(t, ns, name, v1alpha1.ReasonSynced)
	return ns, es
}

func (e *syncEnv) secret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	return GetSecret(t, e.kube.Client, ns, name)
}

func TestSync(t *testing.T) {
	kube := testenv.StartKube(t)
	env := &syncEnv{kube: kube, mem: memory.New("vault")}
	env.op = StartOperator(t, kube, provider.NewRegistry(env.mem))
	top := t // an operator restarted in a subtest must outlive that subtest
	c := kube.Client
	ctx := context.Background()

	t.Run("creationPolicy Owner creates the Secret with an ownerReference and the managed label", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/db", []byte(`{"user":"app","password":"pw"}`), nil)
		env.es(t, ns, "db", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "password", RemoteRef: &v1alpha1.RemoteRef{Key: ns + "/db", Property: "password"}}}
		})
		es := env.waitReason(t, ns, "db", v1alpha1.ReasonSynced)
		s := env.secret(t, ns, "db")
		if s == nil || string(s.Data["password"]) != "pw" || len(s.Data) != 1 {
			t.Fatalf("secret = %+v", s)
		}
		if !metav1.IsControlledBy(s, es) || s.Labels[v1alpha1.LabelManaged] != "true" {
			t.Fatalf("ownerRefs %v labels %v", s.OwnerReferences, s.Labels)
		}
		if es.Status.SyncedAt == nil || !strings.HasPrefix(es.Status.DataHash, "hmac-sha256:") || len(es.Status.Sources) != 1 || es.Status.Sources[0].Version != "1" {
			t.Fatalf("status = %+v", es.Status)
		}
	})

	t.Run("creationPolicy Owner refuses to adopt a foreign Secret", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v"), nil)
		foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"}, Data: map[string][]byte{"x": []byte("y")}}
		must(t, c.Create(ctx, foreign))
		env.es(t, ns, "taken", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")} })
		env.waitReason(t, ns, "taken", v1alpha1.ReasonTargetOwnedElsewhere)
		if s := env.secret(t, ns, "taken"); s.ResourceVersion != foreign.ResourceVersion {
			t.Fatalf("foreign Secret was written: %+v", s)
		}
	})

	t.Run("two Owner ExternalSecrets on one target: the second gets TargetOwnedElsewhere", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v"), nil)
		env.es(t, ns, "first", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Target.Name = "shared"
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
		})
		env.waitReason(t, ns, "first", v1alpha1.ReasonSynced)
		env.es(t, ns, "second", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Target.Name = "shared"
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "other")}
		})
		env.waitReason(t, ns, "second", v1alpha1.ReasonTargetOwnedElsewhere)
		if s := env.secret(t, ns, "shared"); len(s.Data) != 1 || s.Data["k"] == nil {
			t.Fatalf("shared Secret = %v", s.Data)
		}
	})

	t.Run("creationPolicy Orphan creates without ownerReference", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v"), nil)
		env.es(t, ns, "orphan", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Target.CreationPolicy = v1alpha1.CreationOrphan
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
		})
		env.waitReason(t, ns, "orphan", v1alpha1.ReasonSynced)
		s := env.secret(t, ns, "orphan")
		if len(s.OwnerReferences) != 0 || s.Labels[v1alpha1.LabelManaged] != "true" || string(s.Data["k"]) != "v" {
			t.Fatalf("secret = %+v", s)
		}
	})

	t.Run("creationPolicy Merge never creates and patches only our keys", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v"), nil)
		env.es(t, ns, "merge", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Target.CreationPolicy = v1alpha1.CreationMerge
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
		})
		env.waitReason(t, ns, "merge", v1alpha1.ReasonTargetNotFound)
		if env.secret(t, ns, "merge") != nil {
			t.Fatal("Merge created the Secret")
		}
		must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "merge"}, Data: map[string][]byte{"theirs": []byte("1")}}))
		env.waitReason(t, ns, "merge", v1alpha1.ReasonSynced)
		s := env.secret(t, ns, "merge")
		if string(s.Data["theirs"]) != "1" || string(s.Data["k"]) != "v" || len(s.OwnerReferences) != 0 {
			t.Fatalf("merged secret = %+v", s)
		}
	})

	t.Run("creationPolicy None writes nothing and reports Synced with sources", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v"), nil)
		env.es(t, ns, "none", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Target.CreationPolicy = v1alpha1.CreationNone
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
		})
		es := env.waitReason(t, ns, "none", v1alpha1.ReasonSynced)
		if env.secret(t, ns, "none") != nil || len(es.Status.Sources) != 1 {
			t.Fatalf("None wrote a Secret or has no sources: %+v", es.Status)
		}
	})

	deletion := []struct {
		name     string
		creation v1alpha1.CreationPolicy
		policy   v1alpha1.DeletionPolicy
		check    func(t *testing.T, s *corev1.Secret)
	}{
		{"Retain keeps the last good data", v1alpha1.CreationOwner, v1alpha1.DeletionRetain, func(t *testing.T, s *corev1.Secret) {
			if s == nil || string(s.Data["k"]) != "v" {
				t.Fatalf("Retain lost data: %+v", s)
			}
		}},
		{"Delete removes the Secret", v1alpha1.CreationOwner, v1alpha1.DeletionDelete, func(t *testing.T, s *corev1.Secret) {
			if s != nil {
				t.Fatalf("Delete kept the Secret: %+v", s.Data)
			}
		}},
		{"Merge removes our keys and keeps the Secret", v1alpha1.CreationMerge, v1alpha1.DeletionMerge, func(t *testing.T, s *corev1.Secret) {
			if s == nil || s.Data["k"] != nil || string(s.Data["theirs"]) != "1" {
				t.Fatalf("Merge: %+v", s)
			}
		}},
	}
	for _, d := range deletion {
		t.Run("deletionPolicy "+d.name, func(t *testing.T) {
			ns := kube.Namespace(t, nil)
			env.store(t, ns)
			env.mem.Put(ns+"/k", []byte("v"), nil)
			if d.creation == v1alpha1.CreationMerge {
				must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "t"}, Data: map[string][]byte{"theirs": []byte("1")}}))
			}
			env.es(t, ns, "t", func(es *v1alpha1.ExternalSecret) {
				es.Spec.RefreshInterval = &metav1.Duration{Duration: 2 * time.Second}
				es.Spec.Target.CreationPolicy, es.Spec.Target.DeletionPolicy = d.creation, d.policy
				es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
			})
			env.waitReason(t, ns, "t", v1alpha1.ReasonSynced)
			env.mem.Delete(ns + "/k")
			env.waitReason(t, ns, "t", v1alpha1.ReasonRemoteNotFound)
			time.Sleep(500 * time.Millisecond)
			d.check(t, env.secret(t, ns, "t"))
		})
	}

	t.Run("backend failure leaves the Secret untouched, reports, and recovers", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v1"), nil)
		env.es(t, ns, "flaky", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = &metav1.Duration{Duration: 2 * time.Second}
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
		})
		env.waitReason(t, ns, "flaky", v1alpha1.ReasonSynced)
		before := env.secret(t, ns, "flaky")
		env.mem.Put(ns+"/k", []byte("v2"), nil)
		env.mem.Fail(provider.Wrap(provider.ErrUnavailable, "503", errors.New("backend down")))
		env.waitReason(t, ns, "flaky", v1alpha1.ReasonProviderError)
		time.Sleep(3 * time.Second) // a few retries
		if after := env.secret(t, ns, "flaky"); after.ResourceVersion != before.ResourceVersion || string(after.Data["k"]) != "v1" {
			t.Fatalf("Secret changed during the outage: %v", after.Data)
		}
		env.mem.Fail(nil)
		env.waitReason(t, ns, "flaky", v1alpha1.ReasonSynced)
		Eventually(t, 10*time.Second, "new value after recovery", func() bool { return string(env.secret(t, ns, "flaky").Data["k"]) == "v2" })
	})

	t.Run("missing key is KeyNotFound, never Synced", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/present", []byte(`{"a":"1"}`), nil)
		env.es(t, ns, "missing", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/present", "a"), remote(ns+"/absent", "b")}
		})
		es := env.waitReason(t, ns, "missing", v1alpha1.ReasonKeyNotFound)
		if !strings.Contains(meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady).Message, ns+"/absent") {
			t.Fatalf("message does not name the key: %+v", es.Status.Conditions)
		}
		env.es(t, ns, "noprop", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "x", RemoteRef: &v1alpha1.RemoteRef{Key: ns + "/present", Property: "nope"}}}
		})
		env.waitReason(t, ns, "noprop", v1alpha1.ReasonKeyNotFound)
		if env.secret(t, ns, "missing") != nil || env.secret(t, ns, "noprop") != nil {
			t.Fatal("a Secret was written with a key missing")
		}
	})

	t.Run("a target edited or deleted by hand is repaired", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v"), nil)
		env.es(t, ns, "drift", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")} })
		env.waitReason(t, ns, "drift", v1alpha1.ReasonSynced)
		s := env.secret(t, ns, "drift")
		s.Data["k"] = []byte("tampered")
		must(t, c.Update(ctx, s))
		Eventually(t, 10*time.Second, "edit repaired", func() bool { return string(env.secret(t, ns, "drift").Data["k"]) == "v" })
		must(t, c.Delete(ctx, env.secret(t, ns, "drift")))
		Eventually(t, 10*time.Second, "deletion repaired", func() bool {
			s := env.secret(t, ns, "drift")
			return s != nil && string(s.Data["k"]) == "v"
		})
	})

	t.Run("a refresh that changes nothing writes nothing", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v"), nil)
		for i := 0; i < 5; i++ {
			env.es(t, ns, fmt.Sprintf("quiet-%d", i), func(es *v1alpha1.ExternalSecret) {
				es.Spec.RefreshInterval = &metav1.Duration{Duration: 2 * time.Second}
				es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
			})
		}
		for i := 0; i < 5; i++ {
			env.waitReason(t, ns, fmt.Sprintf("quiet-%d", i), v1alpha1.ReasonSynced)
		}
		time.Sleep(time.Second) // let the initial writes settle
		writes := env.op.Writes.InNamespace(ns)
		reads := env.mem.KeyCalls(ns + "/k")
		time.Sleep(7 * time.Second) // three refresh rounds
		if got := env.op.Writes.InNamespace(ns) - writes; got != 0 {
			t.Fatalf("%d API writes during refreshes that changed nothing", got)
		}
		if env.mem.KeyCalls(ns+"/k") == reads {
			t.Fatal("no refresh happened: the test proves nothing")
		}
	})

	t.Run("force-sync annotation refreshes now", func(t *testing.T) {
		ns, es := env.syncedOld(t, "force")
		env.mem.Put(ns+"/k", []byte("new"), nil)
		must(t, c.Get(ctx, client.ObjectKeyFromObject(es), es))
		es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "1"}
		must(t, c.Update(ctx, es))
		Eventually(t, 10*time.Second, "forced refresh", func() bool { return string(env.secret(t, ns, "force").Data["k"]) == "new" })
	})

	t.Run("events: none for the first sync, Updated for a change, one SyncFailed per distinct failure", func(t *testing.T) {
		ns, es := env.syncedOld(t, "ev")
		reasons := func() map[string]int {
			l := &eventsv1.EventList{}
			must(t, c.List(ctx, l, client.InNamespace(ns)))
			n := map[string]int{}
			for _, e := range l.Items {
				if e.Regarding.Name == "ev" {
					n[e.Reason]++
				}
			}
			return n
		}
		force := func(v string) {
			must(t, c.Get(ctx, client.ObjectKeyFromObject(es), es))
			es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: v}
			must(t, c.Update(ctx, es))
		}
		env.mem.Put(ns+"/k", []byte("new"), nil)
		force("1")
		Eventually(t, 10*time.Second, "an Updated event", func() bool { return reasons()[v1alpha1.EventUpdated] == 1 })
		if got := reasons(); len(got) != 1 {
			t.Fatalf("events after a first sync and one change: %v, want only Updated=1", got)
		}
		env.mem.Delete(ns + "/k")
		force("2")
		env.waitReason(t, ns, "ev", v1alpha1.ReasonRemoteNotFound)
		calls := env.mem.KeyCalls(ns + "/k")
		force("3") // the same failure again: no second event
		Eventually(t, 10*time.Second, "the second forced read", func() bool { return env.mem.KeyCalls(ns+"/k") > calls })
		Eventually(t, 10*time.Second, "one SyncFailed event", func() bool { return reasons()[v1alpha1.EventSyncFailed] == 1 })
		if got := reasons(); got[v1alpha1.EventSyncFailed] != 1 || got[v1alpha1.EventUpdated] != 1 || len(got) != 2 {
			t.Fatalf("events: %v, want Updated=1 SyncFailed=1", got)
		}
		if s := env.secret(t, ns, "ev"); string(s.Data["k"]) != "new" {
			t.Fatalf("the failure changed the Secret: %q", s.Data["k"])
		}
	})

	t.Run("50 ExternalSecrets reading one key cost one backend call", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/shared", []byte("v"), nil)
		for i := 0; i < 50; i++ {
			env.es(t, ns, fmt.Sprintf("c-%d", i), func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/shared", "k")} })
		}
		for i := 0; i < 50; i++ {
			env.waitReason(t, ns, fmt.Sprintf("c-%d", i), v1alpha1.ReasonSynced)
		}
		if got := env.mem.KeyCalls(ns + "/shared"); got != 1 {
			t.Fatalf("%d backend calls for 50 ExternalSecrets on one key, want 1", got)
		}
	})

	t.Run("an operator restart does not refetch ExternalSecrets that are in sync nor check Ready stores", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v"), nil)
		// No periodic refresh: a scheduled one (read ahead of its slot, which a restart
		// keeps) may fall into the 5 s watched below with any interval; what is tested
		// is that the restart itself reads nothing.
		for i := 0; i < 20; i++ {
			env.es(t, ns, fmt.Sprintf("r-%d", i), func(es *v1alpha1.ExternalSecret) {
				es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
				es.Spec.RefreshInterval = &metav1.Duration{}
			})
		}
		for i := 0; i < 20; i++ {
			env.waitReason(t, ns, fmt.Sprintf("r-%d", i), v1alpha1.ReasonSynced)
		}
		env.op.Stop()
		before, writes, checks := env.mem.KeyCalls(ns+"/k"), env.op.Writes.InNamespace(ns), env.mem.StoreChecks(ns+"/mem")
		env.op = StartOperator(top, kube, provider.NewRegistry(env.mem))
		// The new operator sees every ExternalSecret (its cache syncs) and waits for
		// each one's refresh slot instead of reading the backend now.
		time.Sleep(5 * time.Second)
		if got := env.mem.KeyCalls(ns+"/k") - before; got != 0 {
			t.Fatalf("%d backend reads right after a restart, want 0", got)
		}
		if got := env.op.Writes.InNamespace(ns); got != 0 {
			t.Fatalf("%d API writes right after a restart (before %d), want 0", got, writes)
		}
		// Nor are the Ready stores checked against their backends at once.
		if checks == 0 {
			t.Fatal("the store was never checked: the assertion below proves nothing")
		}
		if got := env.mem.StoreChecks(ns+"/mem") - checks; got != 0 {
			t.Fatalf("%d checks of the Ready store right after a restart, want 0", got)
		}
		// It is really running: drift is still repaired.
		s := env.secret(t, ns, "r-0")
		s.Data["k"] = []byte("tampered")
		must(t, c.Update(ctx, s))
		Eventually(t, 10*time.Second, "edit repaired by the restarted operator", func() bool { return string(env.secret(t, ns, "r-0").Data["k"]) == "v" })
	})

	t.Run("immutable target: a remote change is TargetImmutable and data stays", func(t *testing.T) {
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/k", []byte("v1"), nil)
		es := env.es(t, ns, "imm", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Target.Immutable = true
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
		})
		env.waitReason(t, ns, "imm", v1alpha1.ReasonSynced)
		env.mem.Put(ns+"/k", []byte("v2"), nil)
		must(t, c.Get(ctx, client.ObjectKeyFromObject(es), es))
		es.Annotations = map[string]string{v1alpha1.AnnotationForceSync: "now"}
		must(t, c.Update(ctx, es))
		env.waitReason(t, ns, "imm", v1alpha1.ReasonTargetImmutable)
		if s := env.secret(t, ns, "imm"); string(s.Data["k"]) != "v1" {
			t.Fatalf("immutable data changed: %q", s.Data["k"])
		}
	})

	t.Run("ClusterSecretStore admission: conditions and allowedKeys, no backend call when refused", func(t *testing.T) {
		admittedNS := kube.Namespace(t, map[string]string{"tenant": "blue"})
		otherNS := kube.Namespace(t, nil)
		must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: OperatorNamespace, Name: "css-tok"}, StringData: map[string]string{"token": "t"}}))
		css := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "shared-mem"}, Spec: v1alpha1.SecretStoreSpec{
			Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "http://127.0.0.1:1",
				Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "css-tok", Key: "token", Namespace: OperatorNamespace}}}},
			Conditions: []v1alpha1.StoreCondition{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "blue"}}, AllowedKeys: []string{"^blue/.*"}}},
		}}
		must(t, c.Create(ctx, css))
		env.mem.Put("blue/k", []byte("b"), nil)
		env.mem.Put("red/k", []byte("r"), nil)
		mk := func(ns, name, key string) {
			env.es(t, ns, name, func(es *v1alpha1.ExternalSecret) {
				es.Spec.SecretStoreRef = v1alpha1.StoreRef{Name: "shared-mem", Kind: v1alpha1.KindClusterSecretStore}
				es.Spec.Data = []v1alpha1.DataItem{remote(key, "k")}
			})
		}
		mk(admittedNS, "ok", "blue/k")
		env.waitReason(t, admittedNS, "ok", v1alpha1.ReasonSynced)
		reads := env.mem.KeyCalls("blue/k") + env.mem.KeyCalls("red/k")
		mk(otherNS, "refused", "blue/k")
		mk(admittedNS, "forbidden-key", "red/k")
		env.waitReason(t, otherNS, "refused", v1alpha1.ReasonNamespaceNotAllowed)
		env.waitReason(t, admittedNS, "forbidden-key", v1alpha1.ReasonKeyNotAllowed)
		if got := env.mem.KeyCalls("blue/k") + env.mem.KeyCalls("red/k") - reads; got != 0 {
			t.Fatalf("%d backend calls for refused ExternalSecrets", got)
		}
		if env.secret(t, otherNS, "refused") != nil || env.secret(t, admittedNS, "forbidden-key") != nil {
			t.Fatal("a refused ExternalSecret wrote a Secret")
		}
	})

	t.Run("a canary value never reaches logs, events, conditions or status", func(t *testing.T) {
		const canary = "CANARY-7f3a9c-DO-NOT-LEAK"
		ns := kube.Namespace(t, nil)
		env.store(t, ns)
		env.mem.Put(ns+"/c", []byte(`{"pw":"`+canary+`"}`), nil)
		env.es(t, ns, "canary", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = &metav1.Duration{Duration: 2 * time.Second}
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "pw", RemoteRef: &v1alpha1.RemoteRef{Key: ns + "/c", Property: "pw"}}}
		})
		env.es(t, ns, "canary-tpl", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "pw", RemoteRef: &v1alpha1.RemoteRef{Key: ns + "/c", Property: "pw"}}}
			es.Spec.Target.Template = &v1alpha1.Template{Data: map[string]string{"x": `{{ .pw | b64dec }}`}}
		})
		env.es(t, ns, "canary-prop", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "pw", RemoteRef: &v1alpha1.RemoteRef{Key: ns + "/c", Property: "pw.deeper"}}}
		})
		env.waitReason(t, ns, "canary", v1alpha1.ReasonSynced)
		env.waitReason(t, ns, "canary-tpl", v1alpha1.ReasonInvalidTemplate)
		env.waitReason(t, ns, "canary-prop", v1alpha1.ReasonInvalidProperty)
		// The backend's own error text quotes the value.
		env.mem.Fail(provider.Wrap(provider.ErrAccessDenied, "AccessDenied", errors.New("denied reading value "+canary)))
		env.waitReason(t, ns, "canary", v1alpha1.ReasonAuthFailed)
		env.mem.Fail(errors.New("raw error with " + canary))
		env.waitReason(t, ns, "canary", v1alpha1.ReasonProviderError)
		env.mem.Fail(nil)
		env.waitReason(t, ns, "canary", v1alpha1.ReasonSynced)

		AssertNoCanary(t, c, ns, canary)
	})
}
