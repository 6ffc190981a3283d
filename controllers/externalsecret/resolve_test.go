package externalsecret

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

func clusterStore(name string, ready bool, conds ...v1alpha1.StoreCondition) *v1alpha1.ClusterSecretStore {
	s := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: name, UID: "css-uid", Generation: 1},
		Spec: v1alpha1.SecretStoreSpec{Conditions: conds,
			Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "http://vault.test"}}}}
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: v1alpha1.ReasonValid, ObservedGeneration: 1, LastTransitionTime: metav1.Now()}}
	return s
}

// TestResolveStore: store resolution and ClusterSecretStore admission, in the order
// the contract gives (admission before readiness), on the fake client.
func TestResolveStore(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS, Labels: map[string]string{"tier": "gold"}}}
	viaCSS := func(name, key string) *v1alpha1.ExternalSecret {
		es := kvES("app", key)
		es.Spec.SecretStoreRef = v1alpha1.StoreRef{Kind: v1alpha1.KindClusterSecretStore, Name: name}
		return es
	}
	cases := []struct {
		name   string
		objs   []client.Object
		es     *v1alpha1.ExternalSecret
		reason string // "" = resolved
	}{
		{"namespaced store ready", nil, kvES("app", "db"), ""},
		{"namespaced store missing", nil, func() *v1alpha1.ExternalSecret {
			es := kvES("app", "db")
			es.Spec.SecretStoreRef.Name = "nope"
			return es
		}(), v1alpha1.ReasonSecretStoreNotFound},
		{"cluster store without conditions admits nobody", []client.Object{clusterStore("css", true)}, viaCSS("css", "db"), v1alpha1.ReasonNamespaceNotAllowed},
		{"admitted by name", []client.Object{clusterStore("css", true, v1alpha1.StoreCondition{Namespaces: []string{testNS}})}, viaCSS("css", "db"), ""},
		{"admitted by label", []client.Object{clusterStore("css", true, v1alpha1.StoreCondition{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "gold"}}})}, viaCSS("css", "db"), ""},
		{"label does not match", []client.Object{clusterStore("css", true, v1alpha1.StoreCondition{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "tin"}}})}, viaCSS("css", "db"), v1alpha1.ReasonNamespaceNotAllowed},
		{"key outside allowedKeys", []client.Object{clusterStore("css", true, v1alpha1.StoreCondition{Namespaces: []string{testNS}, AllowedKeys: []string{"shared/.*"}})}, viaCSS("css", "team-b/db"), v1alpha1.ReasonKeyNotAllowed},
		{"allowedKeys match the whole key", []client.Object{clusterStore("css", true, v1alpha1.StoreCondition{Namespaces: []string{testNS}, AllowedKeys: []string{"shared/"}})}, viaCSS("css", "x/shared/db"), v1alpha1.ReasonKeyNotAllowed},
		{"an invalid pattern admits nothing", []client.Object{clusterStore("css", true, v1alpha1.StoreCondition{Namespaces: []string{testNS}, AllowedKeys: []string{"a)|(.*"}})}, viaCSS("css", "db"), v1alpha1.ReasonKeyNotAllowed},
		{"admission is decided before readiness", []client.Object{clusterStore("css", false)}, viaCSS("css", "db"), v1alpha1.ReasonNamespaceNotAllowed},
		{"admitted but not ready", []client.Object{clusterStore("css", false, v1alpha1.StoreCondition{Namespaces: []string{testNS}})}, viaCSS("css", "db"), v1alpha1.ReasonStoreNotReady},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, append([]client.Object{ns}, c.objs...)...)
			_, _, o := e.r.resolveStore(context.Background(), c.es)
			switch {
			case c.reason == "" && o != nil:
				t.Fatalf("refused: %s: %s", o.reason, o.message)
			case c.reason != "" && (o == nil || o.reason != c.reason):
				t.Fatalf("outcome %+v, want %s", o, c.reason)
			}
		})
	}
}

// TestLeaseRenewal: a renewable lease is renewed at renewPercent (same credentials),
// a non-renewable one is replaced and the old one revoked after the Secret is written.
func TestLeaseRenewal(t *testing.T) {
	cases := []struct {
		name         string
		renewable    bool
		wantIssued   int
		wantRenewals int
		wantUser     string
	}{
		{"renewable: renewed, same credentials", true, 1, 1, "user-1"},
		{"not renewable: re-issued, old revoked", false, 2, 0, "user-2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, dynamicES("db", "database/creds/app"))
			e.backend.SetLeases(time.Hour, c.renewable)
			mustReconcile(t, e, "db")
			e.clock.Step(30 * time.Minute) // before 67 %
			mustReconcile(t, e, "db")
			if n := e.backend.Issued(); n != 1 {
				t.Fatalf("issued %d before renewPercent", n)
			}
			e.clock.Step(15 * time.Minute) // 45 min: past 67 % (40 min)
			mustReconcile(t, e, "db")
			renewals, _ := e.backend.LeaseCalls()
			if e.backend.Issued() != c.wantIssued || renewals != c.wantRenewals {
				t.Fatalf("issued %d, renewals %d; want %d, %d", e.backend.Issued(), renewals, c.wantIssued, c.wantRenewals)
			}
			if got := string(e.secret("db").Data["username"]); got != c.wantUser {
				t.Fatalf("username %q, want %q", got, c.wantUser)
			}
			if live := e.backend.LiveLeases(); len(live) != 1 {
				t.Fatalf("live leases %v, want exactly one", live)
			}
			if ls := e.es("db").Status.Leases; len(ls) != 1 || !ls[0].ExpiresAt.After(e.clock.Now().Add(30*time.Minute)) {
				t.Fatalf("status.leases = %+v, want one lease with its expiry moved", ls)
			}
		})
	}
}
