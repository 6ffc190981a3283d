package e2e

// End-to-end behaviour of the ExternalSecret controller against the in-memory
// backend: one shared envtest and operator (sharedSync), one namespace per test.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// creationPolicy Owner creates the Secret with an ownerReference and the managed label.
func TestSyncOwnerCreatesControlledSecret(t *testing.T) {
	env, ns := syncTest(t)
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
}

// creationPolicy Owner refuses to adopt a foreign Secret.
func TestSyncOwnerRefusesForeignSecret(t *testing.T) {
	env, ns := syncTest(t)
	env.mem.Put(ns+"/k", []byte("v"), nil)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"}, Data: map[string][]byte{"x": []byte("y")}}
	must(t, env.kube.Client.Create(env.ctx(), foreign))
	env.es(t, ns, "taken", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")} })
	env.waitReason(t, ns, "taken", v1alpha1.ReasonTargetOwnedElsewhere)
	if s := env.secret(t, ns, "taken"); s.ResourceVersion != foreign.ResourceVersion {
		t.Fatalf("foreign Secret was written: %+v", s)
	}
}

// Two Owner ExternalSecrets on one target: the second gets TargetOwnedElsewhere.
func TestSyncSecondOwnerGetsTargetOwnedElsewhere(t *testing.T) {
	env, ns := syncTest(t)
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
}

// creationPolicy Orphan creates without ownerReference.
func TestSyncOrphanCreatesWithoutOwnerReference(t *testing.T) {
	env, ns := syncTest(t)
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
}

// creationPolicy Merge never creates and patches only our keys.
func TestSyncMergeNeverCreatesAndPatchesOnlyOurKeys(t *testing.T) {
	env, ns := syncTest(t)
	env.mem.Put(ns+"/k", []byte("v"), nil)
	env.es(t, ns, "merge", func(es *v1alpha1.ExternalSecret) {
		es.Spec.Target.CreationPolicy = v1alpha1.CreationMerge
		es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
	})
	env.waitReason(t, ns, "merge", v1alpha1.ReasonTargetNotFound)
	if env.secret(t, ns, "merge") != nil {
		t.Fatal("Merge created the Secret")
	}
	must(t, env.kube.Client.Create(env.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "merge"}, Data: map[string][]byte{"theirs": []byte("1")}}))
	env.waitReason(t, ns, "merge", v1alpha1.ReasonSynced)
	s := env.secret(t, ns, "merge")
	if string(s.Data["theirs"]) != "1" || string(s.Data["k"]) != "v" || len(s.OwnerReferences) != 0 {
		t.Fatalf("merged secret = %+v", s)
	}

	// Deleting the ExternalSecret removes its key and keeps the Secret with theirs.
	es := &v1alpha1.ExternalSecret{}
	must(t, env.kube.Client.Get(env.ctx(), client.ObjectKey{Namespace: ns, Name: "merge"}, es))
	must(t, env.kube.Client.Delete(env.ctx(), es))
	Eventually(t, 30*time.Second, "the Merge ExternalSecret gone and its key removed", func() bool {
		err := env.kube.Client.Get(env.ctx(), client.ObjectKey{Namespace: ns, Name: "merge"}, &v1alpha1.ExternalSecret{})
		s := env.secret(t, ns, "merge")
		return apierrors.IsNotFound(err) && s != nil && s.Data["k"] == nil
	})
	if s := env.secret(t, ns, "merge"); string(s.Data["theirs"]) != "1" || len(s.Data) != 1 {
		t.Fatalf("after the delete: Secret keys %v, want theirs alone", s.Data)
	}
}

// creationPolicy None writes nothing and reports Synced with sources.
func TestSyncNoneWritesNothingAndReportsSources(t *testing.T) {
	env, ns := syncTest(t)
	env.mem.Put(ns+"/k", []byte("v"), nil)
	env.es(t, ns, "none", func(es *v1alpha1.ExternalSecret) {
		es.Spec.Target.CreationPolicy = v1alpha1.CreationNone
		es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
	})
	es := env.waitReason(t, ns, "none", v1alpha1.ReasonSynced)
	if env.secret(t, ns, "none") != nil || len(es.Status.Sources) != 1 {
		t.Fatalf("None wrote a Secret or has no sources: %+v", es.Status)
	}
}

// When the remote key is deleted, deletionPolicy decides what happens to the Secret.
func TestSyncDeletionPolicyOnRemoteDeletion(t *testing.T) {
	cases := []struct {
		name     string
		creation v1alpha1.CreationPolicy
		policy   v1alpha1.DeletionPolicy
		// applied is the Secret's state once the policy has been applied.
		applied func(s *corev1.Secret) bool
		// eventual: applied describes a change to wait for, not a state to keep.
		eventual bool
	}{
		{"Retain keeps the last good data", v1alpha1.CreationOwner, v1alpha1.DeletionRetain,
			func(s *corev1.Secret) bool { return s != nil && string(s.Data["k"]) == "v" }, false},
		{"Delete removes the Secret", v1alpha1.CreationOwner, v1alpha1.DeletionDelete,
			func(s *corev1.Secret) bool { return s == nil }, true},
		{"Merge removes our keys and keeps the Secret", v1alpha1.CreationMerge, v1alpha1.DeletionMerge,
			func(s *corev1.Secret) bool { return s != nil && s.Data["k"] == nil && string(s.Data["theirs"]) == "1" }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, ns := syncTest(t)
			env.mem.Put(ns+"/k", []byte("v"), nil)
			if tc.creation == v1alpha1.CreationMerge {
				must(t, env.kube.Client.Create(env.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "t"}, Data: map[string][]byte{"theirs": []byte("1")}}))
			}
			env.es(t, ns, "t", func(es *v1alpha1.ExternalSecret) {
				es.Spec.RefreshInterval = &metav1.Duration{Duration: 2 * time.Second}
				es.Spec.Target.CreationPolicy, es.Spec.Target.DeletionPolicy = tc.creation, tc.policy
				es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
			})
			env.waitReason(t, ns, "t", v1alpha1.ReasonSynced)
			env.mem.Delete(ns + "/k")
			env.waitReason(t, ns, "t", v1alpha1.ReasonRemoteNotFound)
			if tc.eventual {
				Eventually(t, 10*time.Second, "deletionPolicy "+string(tc.policy)+" applied", func() bool { return tc.applied(env.secret(t, ns, "t")) })
				return
			}
			LetTimePass(t, 500*time.Millisecond, "Retain must not touch the Secret after RemoteNotFound")
			if s := env.secret(t, ns, "t"); !tc.applied(s) {
				t.Fatalf("%s: Secret = %+v", tc.policy, s)
			}
		})
	}
}

// A backend failure leaves the Secret untouched, is reported, and recovers.
func TestSyncBackendFailureLeavesSecretAndRecovers(t *testing.T) {
	env, ns := syncTest(t)
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
	// The memory backend does not count failed calls, so the retries are not observable.
	LetTimePass(t, 3*time.Second, "a few retries against the failing backend must not touch the Secret")
	if after := env.secret(t, ns, "flaky"); after.ResourceVersion != before.ResourceVersion || string(after.Data["k"]) != "v1" {
		t.Fatalf("Secret changed during the outage: %v", after.Data)
	}
	env.mem.Fail(nil)
	env.waitReason(t, ns, "flaky", v1alpha1.ReasonSynced)
	Eventually(t, 10*time.Second, "new value after recovery", func() bool { return string(env.secret(t, ns, "flaky").Data["k"]) == "v2" })
}

// A missing key or property is KeyNotFound, never Synced, and writes no Secret.
func TestSyncMissingKeyIsKeyNotFound(t *testing.T) {
	env, ns := syncTest(t)
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
}

// A target edited or deleted by hand is repaired.
func TestSyncDriftRepair(t *testing.T) {
	env, ns := syncTest(t)
	c := env.kube.Client
	env.mem.Put(ns+"/k", []byte("v"), nil)
	env.es(t, ns, "drift", func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")} })
	env.waitReason(t, ns, "drift", v1alpha1.ReasonSynced)
	s := env.secret(t, ns, "drift")
	s.Data["k"] = []byte("tampered")
	must(t, c.Update(env.ctx(), s))
	Eventually(t, 10*time.Second, "edit repaired", func() bool { return string(env.secret(t, ns, "drift").Data["k"]) == "v" })
	must(t, c.Delete(env.ctx(), env.secret(t, ns, "drift")))
	Eventually(t, 10*time.Second, "deletion repaired", func() bool {
		s := env.secret(t, ns, "drift")
		return s != nil && string(s.Data["k"]) == "v"
	})
}

// A refresh that changes nothing writes nothing.
func TestSyncUnchangedRefreshWritesNothing(t *testing.T) {
	env, ns := syncTest(t)
	env.mem.Put(ns+"/k", []byte("v"), nil)
	for i := range 5 {
		env.es(t, ns, fmt.Sprintf("quiet-%d", i), func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = &metav1.Duration{Duration: 2 * time.Second}
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
		})
	}
	for i := range 5 {
		env.waitReason(t, ns, fmt.Sprintf("quiet-%d", i), v1alpha1.ReasonSynced)
	}
	WaitStable(t, 10*time.Second, time.Second, "the initial writes", func() int64 { return env.op.Writes.InNamespace(ns) })
	writes := env.op.Writes.InNamespace(ns)
	reads := env.mem.KeyCalls(ns + "/k")
	LetTimePass(t, 7*time.Second, "three 2s refresh rounds that change nothing must write nothing")
	if got := env.op.Writes.InNamespace(ns) - writes; got != 0 {
		t.Fatalf("%d API writes during refreshes that changed nothing", got)
	}
	if env.mem.KeyCalls(ns+"/k") == reads {
		t.Fatal("no refresh happened: the test proves nothing")
	}
}

// The force-sync annotation refreshes now.
func TestSyncForceSyncRefreshesNow(t *testing.T) {
	env := sharedSync.Get(t)
	ns, es := env.syncedOld(t, "force")
	env.mem.Put(ns+"/k", []byte("new"), nil)
	env.forceSync(t, es, "1")
	Eventually(t, 10*time.Second, "forced refresh", func() bool { return string(env.secret(t, ns, "force").Data["k"]) == "new" })
}

// Events: none for the first sync, Updated for a change, one SyncFailed per
// distinct failure.
func TestSyncEventsOnlyForChangesAndDistinctFailures(t *testing.T) {
	env := sharedSync.Get(t)
	ns, es := env.syncedOld(t, "ev")
	reasons := func() map[string]int {
		l := &eventsv1.EventList{}
		must(t, env.kube.Client.List(env.ctx(), l, client.InNamespace(ns)))
		n := map[string]int{}
		for _, e := range l.Items {
			if e.Regarding.Name == "ev" {
				n[e.Reason]++
			}
		}
		return n
	}
	env.mem.Put(ns+"/k", []byte("new"), nil)
	env.forceSync(t, es, "1")
	Eventually(t, 10*time.Second, "an Updated event", func() bool { return reasons()[v1alpha1.EventUpdated] == 1 })
	if got := reasons(); len(got) != 1 {
		t.Fatalf("events after a first sync and one change: %v, want only Updated=1", got)
	}
	env.mem.Delete(ns + "/k")
	env.forceSync(t, es, "2")
	env.waitReason(t, ns, "ev", v1alpha1.ReasonRemoteNotFound)
	calls := env.mem.KeyCalls(ns + "/k")
	env.forceSync(t, es, "3") // the same failure again: no second event
	Eventually(t, 10*time.Second, "the second forced read", func() bool { return env.mem.KeyCalls(ns+"/k") > calls })
	Eventually(t, 10*time.Second, "one SyncFailed event", func() bool { return reasons()[v1alpha1.EventSyncFailed] == 1 })
	if got := reasons(); got[v1alpha1.EventSyncFailed] != 1 || got[v1alpha1.EventUpdated] != 1 || len(got) != 2 {
		t.Fatalf("events: %v, want Updated=1 SyncFailed=1", got)
	}
	if s := env.secret(t, ns, "ev"); string(s.Data["k"]) != "new" {
		t.Fatalf("the failure changed the Secret: %q", s.Data["k"])
	}
}

// 50 ExternalSecrets reading one key cost one backend call.
func TestSyncSharedKeyIsReadOnce(t *testing.T) {
	env, ns := syncTest(t)
	env.mem.Put(ns+"/shared", []byte("v"), nil)
	for i := range 50 {
		env.es(t, ns, fmt.Sprintf("c-%d", i), func(es *v1alpha1.ExternalSecret) { es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/shared", "k")} })
	}
	for i := range 50 {
		env.waitReason(t, ns, fmt.Sprintf("c-%d", i), v1alpha1.ReasonSynced)
	}
	if got := env.mem.KeyCalls(ns + "/shared"); got != 1 {
		t.Fatalf("%d backend calls for 50 ExternalSecrets on one key, want 1", got)
	}
}

// An operator restart neither refetches ExternalSecrets that are in sync nor checks
// Ready stores.
func TestSyncRestartDoesNotRefetchOrRecheck(t *testing.T) {
	env, ns := syncTest(t)
	env.mem.Put(ns+"/k", []byte("v"), nil)
	// No periodic refresh: a scheduled one (read ahead of its slot, which a restart
	// keeps) may fall into the 5 s watched below with any interval; what is tested
	// is that the restart itself reads nothing.
	for i := range 20 {
		env.es(t, ns, fmt.Sprintf("r-%d", i), func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
			es.Spec.RefreshInterval = &metav1.Duration{}
		})
	}
	for i := range 20 {
		env.waitReason(t, ns, fmt.Sprintf("r-%d", i), v1alpha1.ReasonSynced)
	}
	env.op.Stop()
	before, writes, checks := env.mem.KeyCalls(ns+"/k"), env.op.Writes.InNamespace(ns), env.mem.StoreChecks(ns+"/mem")
	env.replaceOperator(t)
	// The new operator sees every ExternalSecret (its cache syncs) and waits for
	// each one's refresh slot instead of reading the backend now.
	LetTimePass(t, 5*time.Second, "the restarted operator must neither read the backend nor write")
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
	must(t, env.kube.Client.Update(env.ctx(), s))
	Eventually(t, 10*time.Second, "edit repaired by the restarted operator", func() bool { return string(env.secret(t, ns, "r-0").Data["k"]) == "v" })
}

// Immutable target: a remote change is TargetImmutable and the data stays.
func TestSyncImmutableTargetKeepsData(t *testing.T) {
	env, ns := syncTest(t)
	env.mem.Put(ns+"/k", []byte("v1"), nil)
	es := env.es(t, ns, "imm", func(es *v1alpha1.ExternalSecret) {
		es.Spec.Target.Immutable = true
		es.Spec.Data = []v1alpha1.DataItem{remote(ns+"/k", "k")}
	})
	env.waitReason(t, ns, "imm", v1alpha1.ReasonSynced)
	env.mem.Put(ns+"/k", []byte("v2"), nil)
	env.forceSync(t, es, "now")
	env.waitReason(t, ns, "imm", v1alpha1.ReasonTargetImmutable)
	if s := env.secret(t, ns, "imm"); string(s.Data["k"]) != "v1" {
		t.Fatalf("immutable data changed: %q", s.Data["k"])
	}
}

// ClusterSecretStore admission: conditions and allowedKeys, no backend call when refused.
func TestSyncClusterStoreAdmission(t *testing.T) {
	env := sharedSync.Get(t)
	c := env.kube.Client
	admittedNS := env.namespace(t, map[string]string{"tenant": "blue"})
	otherNS := env.namespace(t, nil)
	// Names and keys unique to this test: the store is cluster-wide, the backend shared.
	css := "shared-mem-" + admittedNS
	blue, red := admittedNS+"-blue/k", admittedNS+"-red/k"
	must(t, c.Create(env.ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: OperatorNamespace, Name: css + "-tok"}, StringData: map[string]string{"token": "t"}}))
	store := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: css}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "http://127.0.0.1:1",
			Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: css + "-tok", Key: "token", Namespace: OperatorNamespace}}}},
		Conditions: []v1alpha1.StoreCondition{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tenant": "blue"}}, AllowedKeys: []string{"^" + admittedNS + "-blue/.*"}}},
	}}
	must(t, c.Create(env.ctx(), store))
	t.Cleanup(func() { _ = c.Delete(env.ctx(), store) })
	env.mem.Put(blue, []byte("b"), nil)
	env.mem.Put(red, []byte("r"), nil)
	mk := func(ns, name, key string) {
		env.es(t, ns, name, func(es *v1alpha1.ExternalSecret) {
			es.Spec.SecretStoreRef = v1alpha1.StoreRef{Name: css, Kind: v1alpha1.KindClusterSecretStore}
			es.Spec.Data = []v1alpha1.DataItem{remote(key, "k")}
		})
	}
	mk(admittedNS, "ok", blue)
	env.waitReason(t, admittedNS, "ok", v1alpha1.ReasonSynced)
	reads := env.mem.KeyCalls(blue) + env.mem.KeyCalls(red)
	mk(otherNS, "refused", blue)
	mk(admittedNS, "forbidden-key", red)
	env.waitReason(t, otherNS, "refused", v1alpha1.ReasonNamespaceNotAllowed)
	env.waitReason(t, admittedNS, "forbidden-key", v1alpha1.ReasonKeyNotAllowed)
	if got := env.mem.KeyCalls(blue) + env.mem.KeyCalls(red) - reads; got != 0 {
		t.Fatalf("%d backend calls for refused ExternalSecrets", got)
	}
	if env.secret(t, otherNS, "refused") != nil || env.secret(t, admittedNS, "forbidden-key") != nil {
		t.Fatal("a refused ExternalSecret wrote a Secret")
	}
}

// A canary value never reaches logs, events, conditions or status.
func TestSyncCanaryNeverLeaks(t *testing.T) {
	const canary = "CANARY-7f3a9c-DO-NOT-LEAK"
	env, ns := syncTest(t)
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

	AssertNoCanary(t, env.kube.Client, ns, canary)
}
