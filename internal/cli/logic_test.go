package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/controllers/externalsecret"
	"github.com/secretsync/secretsync/internal/scheme"
)

func ready(status metav1.ConditionStatus, reason string, at time.Time, gen int64) []metav1.Condition {
	return []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, LastTransitionTime: metav1.NewTime(at), ObservedGeneration: gen}}
}

func newES(ns, name string, ref v1alpha1.StoreRef, keys ...string) *v1alpha1.ExternalSecret {
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1},
		Spec: v1alpha1.ExternalSecretSpec{SecretStoreRef: ref, RefreshInterval: &metav1.Duration{Duration: time.Hour}}}
	for _, k := range keys {
		es.Spec.Data = append(es.Spec.Data, v1alpha1.DataItem{SecretKey: "k", RemoteRef: &v1alpha1.RemoteRef{Key: k}})
	}
	return es
}

func fakeClient(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.ExternalSecret{}).Build()
}

func TestExplainAdmissionByCondition(t *testing.T) {
	css := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceParameterStore, Region: "eu-west-1"}},
		Conditions: []v1alpha1.StoreCondition{
			{Namespaces: []string{"other"}},
			{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "a"}}, AllowedKeys: []string{"/a/.*"}},
			{Namespaces: []string{"team"}, AllowedKeys: []string{"/shared/x"}},
		}}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Labels: map[string]string{"tier": "a"}}}
	ref := v1alpha1.StoreRef{Name: "shared", Kind: v1alpha1.KindClusterSecretStore}
	cases := []struct {
		name      string
		ns        string
		keys      []string
		admitted  bool
		by        []int
		allowedBy []string
	}{
		{"two conditions admit, each allows its keys", "team", []string{"/a/db", "/shared/x", "/b/z"}, true, []int{1, 2}, []string{"conditions[1]", "conditions[2]", "none"}},
		{"namespace not admitted", "nobody", []string{"/a/db"}, false, nil, []string{"none"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := newES(c.ns, "es", ref, c.keys...)
			nobody := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}
			x, err := Explain(context.Background(), fakeClient(css, ns, nobody, es), c.ns, "es", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if x.Store.Admitted == nil || *x.Store.Admitted != c.admitted || len(x.Store.AdmittedBy) != len(c.by) {
				t.Fatalf("store %+v", x.Store)
			}
			for i, k := range x.Keys {
				if k.AllowedBy != c.allowedBy[i] {
					t.Errorf("key %s allowed by %s, want %s", k.Key, k.AllowedBy, c.allowedBy[i])
				}
			}
			if x.Healthy() {
				t.Error("no status: not healthy")
			}
		})
	}
}

// NextRefresh: after a refresh the next slot is at least half an interval away;
// with no known refresh it is the first slot after now.
func TestNextRefresh(t *testing.T) {
	es := newES("ns", "es", v1alpha1.StoreRef{Name: "s"}, "k")
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	slot := externalsecret.NextRefresh(es, time.Time{}, now)
	if d := slot.Sub(now); d <= 0 || d > time.Hour {
		t.Fatalf("next slot in %s", d)
	}
	// A refresh just before that slot pushes it one interval on.
	justBefore := slot.Add(-time.Minute)
	if got := externalsecret.NextRefresh(es, justBefore, justBefore); !got.Equal(slot.Add(time.Hour)) {
		t.Fatalf("after an off-slot refresh: %s, want %s", got, slot.Add(time.Hour))
	}
	es.Spec.RefreshPolicy = v1alpha1.RefreshOnChange
	if got := externalsecret.NextRefresh(es, time.Time{}, now); !got.IsZero() {
		t.Fatalf("OnChange has no slot: %s", got)
	}
}

func TestStatusGroupsByReason(t *testing.T) {
	now := time.Now()
	ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "sm", Generation: 1},
		Spec:   v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{AWS: &v1alpha1.AWSProvider{Service: v1alpha1.AWSServiceSecretsManager, Region: "r"}}},
		Status: v1alpha1.SecretStoreStatus{Conditions: ready(metav1.ConditionTrue, v1alpha1.ReasonValid, now, 1)}}
	bad := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "vault", Generation: 2},
		Spec:   v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "https://v"}}},
		Status: v1alpha1.SecretStoreStatus{Conditions: ready(metav1.ConditionFalse, v1alpha1.ReasonAuthFailed, now, 2)}}
	es := func(ns, name, reason string, st metav1.ConditionStatus, keys ...string) *v1alpha1.ExternalSecret {
		e := newES(ns, name, v1alpha1.StoreRef{Name: "sm"}, keys...)
		if reason != "" {
			e.Status.Conditions = ready(st, reason, now, 1)
		}
		return e
	}
	c := fakeClient(ss, bad,
		es("a", "ok", v1alpha1.ReasonSynced, metav1.ConditionTrue, "k1", "k2"),
		es("a", "nf1", v1alpha1.ReasonKeyNotFound, metav1.ConditionFalse, "k2"),
		es("a", "nf2", v1alpha1.ReasonKeyNotFound, metav1.ConditionFalse, "k3"),
		es("b", "nostatus", "", "", "x"))
	r, err := Status(context.Background(), c, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, g := range r.NotReady {
		got[g.Kind+"/"+g.Reason] = g.Count
	}
	want := map[string]int{"ExternalSecret/KeyNotFound": 2, "SecretStore/AuthFailed": 1, "ExternalSecret/NoStatus": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if r.Total.NotReady != 4 || r.Total.ExternalSecrets != 4 || r.Total.Stores != 2 {
		t.Errorf("totals %+v", r.Total)
	}
	for _, p := range r.Cost {
		// k1, k2 (shared by ok and nf1), k3 hourly: 3 distinct refs, one per call.
		if p.Name == "sm" && (p.DistinctRefs != 3 || p.CallsPerMo != 3*720) {
			t.Errorf("cost %+v", p)
		}
	}
	var b strings.Builder
	r.writeTable(&b)
	for _, s := range []string{"KeyNotFound", "a/nf1, a/nf2", "as of 2026-11", "storage fees", "SecretStore/a/sm"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, b.String())
		}
	}
}

func TestObserve(t *testing.T) {
	before := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	key := types.NamespacedName{Namespace: "a", Name: "es"}
	cases := []struct {
		name     string
		status   v1alpha1.ExternalSecretStatus
		observed bool
	}{
		{"observedForceSync equals the value", v1alpha1.ExternalSecretStatus{ObservedForceSync: "42", Conditions: ready(metav1.ConditionTrue, v1alpha1.ReasonSynced, before, 1)}, true},
		{"Ready moved", v1alpha1.ExternalSecretStatus{Conditions: ready(metav1.ConditionFalse, v1alpha1.ReasonProviderError, before.Add(time.Second), 1)}, true},
		{"nothing moved", v1alpha1.ExternalSecretStatus{ObservedForceSync: "41", Conditions: ready(metav1.ConditionTrue, v1alpha1.ReasonSynced, before, 1)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := newES("a", "es", v1alpha1.StoreRef{Name: "s"})
			es.Status = c.status
			r, done, err := observe(context.Background(), fakeClient(es), pending{key: key, value: "42", since: before, gen: 1})
			if err != nil || done != c.observed || r.Observed != c.observed {
				t.Fatalf("done=%v r=%+v err=%v", done, r, err)
			}
		})
	}
}

func TestForceSyncSetsANewValue(t *testing.T) {
	es := newES("a", "es", v1alpha1.StoreRef{Name: "s"})
	c := fakeClient(es)
	key := types.NamespacedName{Namespace: "a", Name: "es"}
	now := func() time.Time { return time.Unix(0, 1234) }
	var progress strings.Builder
	rs, err := ForceSync(context.Background(), c, []types.NamespacedName{key}, 0, time.Millisecond, &progress, now)
	if err != nil {
		t.Fatal(err)
	}
	got := &v1alpha1.ExternalSecret{}
	if err := c.Get(context.Background(), key, got); err != nil {
		t.Fatal(err)
	}
	if got.Annotations[v1alpha1.AnnotationForceSync] != "1234" || len(rs) != 1 || rs[0].Observed || syncHealthy(rs) {
		t.Fatalf("annotation %q results %+v", got.Annotations[v1alpha1.AnnotationForceSync], rs)
	}
	if !strings.Contains(progress.String(), "0/1 observed") || !strings.Contains(progress.String(), "not observed within") {
		t.Fatalf("progress %q", progress.String())
	}
}
