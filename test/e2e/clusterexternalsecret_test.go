package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/testenv"
)

// TestClusterExternalSecret: a ClusterExternalSecret follows namespaces as they are
// labelled, unlabelled and created, never touches a foreign ExternalSecret, carries
// template edits to every copy, and grants nothing (store admission still applies).
// Steps build on each other, so they run in order on one operator.
func TestClusterExternalSecret(t *testing.T) {
	kube := testenv.StartKube(t)
	mem := memory.New("vault")
	StartOperator(t, kube, provider.NewRegistry(mem))
	c := kube.Client
	ctx := context.Background()

	// The store admits namespaces labelled admit=yes for keys under ces/.
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: OperatorNamespace, Name: "ces-tok"}, StringData: map[string]string{"token": "t"}}))
	css := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "ces-mem"}, Spec: v1alpha1.SecretStoreSpec{
		Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "http://127.0.0.1:1",
			Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "ces-tok", Key: "token", Namespace: OperatorNamespace}}}},
		Conditions: []v1alpha1.StoreCondition{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"admit": "yes"}}, AllowedKeys: []string{"^ces/.*"}}},
	}}
	must(t, c.Create(ctx, css))
	Eventually(t, 20*time.Second, "ClusterSecretStore Ready", func() bool {
		_ = c.Get(ctx, client.ObjectKeyFromObject(css), css)
		return meta.IsStatusConditionTrue(css.Status.Conditions, v1alpha1.ConditionReady)
	})
	mem.Put("ces/k", []byte("v"), nil)

	on := map[string]string{"ces": "on", "admit": "yes"}
	var labelled, others []string
	for i := range 20 {
		if i%2 == 0 {
			labelled = append(labelled, kube.Namespace(t, on))
		} else {
			others = append(others, kube.Namespace(t, map[string]string{"admit": "yes"}))
		}
	}
	ces := &v1alpha1.ClusterExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: "fleet"}, Spec: v1alpha1.ClusterExternalSecretSpec{
		NamespaceSelectors:     []metav1.LabelSelector{{MatchLabels: map[string]string{"ces": "on"}}},
		ExternalSecretMetadata: v1alpha1.TemplateMetadata{Labels: map[string]string{"team": "x"}},
		ExternalSecretSpec: v1alpha1.ExternalSecretSpec{
			SecretStoreRef:  v1alpha1.StoreRef{Name: "ces-mem", Kind: v1alpha1.KindClusterSecretStore},
			RefreshInterval: &metav1.Duration{Duration: time.Hour},
			Data:            []v1alpha1.DataItem{remote("ces/k", "k")},
		},
	}}
	must(t, c.Create(ctx, ces))

	stamped := func() []v1alpha1.ExternalSecret {
		var l v1alpha1.ExternalSecretList
		must(t, c.List(ctx, &l, client.MatchingLabels{v1alpha1.LabelClusterExternalSecret: "fleet"}))
		return slices.DeleteFunc(l.Items, func(es v1alpha1.ExternalSecret) bool { return es.DeletionTimestamp != nil })
	}
	synced := func(ns string) bool {
		s := GetSecret(t, c, ns, "fleet")
		return s != nil && string(s.Data["k"]) == "v"
	}
	gone := func(ns string) bool {
		es := &v1alpha1.ExternalSecret{}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fleet"}, es)
		return apierrors.IsNotFound(err) || (err == nil && es.DeletionTimestamp != nil)
	}
	status := func() v1alpha1.ClusterExternalSecretStatus {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(ces), ces))
		return ces.Status
	}
	provisioned := func(ns string) bool { return slices.Contains(status().ProvisionedNamespaces, ns) }

	t.Run("10 of 20 namespaces labelled: exactly 10 ExternalSecrets and 10 Secrets", func(t *testing.T) {
		Eventually(t, 30*time.Second, "10 Secrets synced", func() bool {
			return !slices.ContainsFunc(labelled, func(ns string) bool { return !synced(ns) })
		})
		want := slices.Sorted(slices.Values(labelled))
		Eventually(t, 10*time.Second, "status lists the 10 namespaces", func() bool {
			st := status()
			return slices.Equal(st.ProvisionedNamespaces, want) && len(st.FailedNamespaces) == 0 &&
				meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) && st.ObservedGeneration == ces.Generation
		})
		if r := meta.FindStatusCondition(ces.Status.Conditions, v1alpha1.ConditionReady); r.Reason != v1alpha1.ReasonProvisioned {
			t.Errorf("reason = %s", r.Reason)
		}
		l := stamped()
		if len(l) != 10 {
			t.Fatalf("%d stamped ExternalSecrets, want 10", len(l))
		}
		for _, es := range l {
			if !slices.Contains(labelled, es.Namespace) || es.Labels["team"] != "x" || !metav1.IsControlledBy(&es, ces) {
				t.Errorf("stamped %s/%s: labels %v owners %v", es.Namespace, es.Name, es.Labels, es.OwnerReferences)
			}
		}
		for _, ns := range others {
			if GetSecret(t, c, ns, "fleet") != nil {
				t.Errorf("Secret in unmatched namespace %s", ns)
			}
		}
	})

	t.Run("labelling an 11th namespace syncs it within 5s", func(t *testing.T) {
		ns := others[0]
		labelNamespace(t, c, ns, on)
		Eventually(t, 5*time.Second, "11th namespace synced", func() bool { return synced(ns) })
	})

	t.Run("unlabelling a namespace deletes its ExternalSecret", func(t *testing.T) {
		ns := labelled[0]
		labelNamespace(t, c, ns, map[string]string{"admit": "yes"})
		Eventually(t, 5*time.Second, "ExternalSecret deleted", func() bool { return gone(ns) })
		Eventually(t, 5*time.Second, "status without it", func() bool { return !provisioned(ns) })
	})

	t.Run("a new labelled namespace is synced", func(t *testing.T) {
		ns := kube.Namespace(t, on)
		Eventually(t, 5*time.Second, "new namespace synced", func() bool { return synced(ns) })
	})

	t.Run("a hand-deleted stamped ExternalSecret is re-created", func(t *testing.T) {
		ns := labelled[1]
		es := &v1alpha1.ExternalSecret{}
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fleet"}, es))
		old := es.UID
		must(t, c.Delete(ctx, es))
		// envtest runs no garbage collector: delete the Secret it owned as the cluster would.
		must(t, c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fleet"}}))
		Eventually(t, 10*time.Second, "re-created", func() bool {
			err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fleet"}, es)
			return err == nil && es.UID != old && es.DeletionTimestamp == nil
		})
		Eventually(t, 10*time.Second, "synced again", func() bool { return synced(ns) })
	})

	foreignNS := kube.Namespace(t, map[string]string{"admit": "yes"})
	foreign := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: foreignNS, Name: "fleet", Labels: map[string]string{"mine": "yes"}},
		Spec: v1alpha1.ExternalSecretSpec{SecretStoreRef: v1alpha1.StoreRef{Name: "nowhere"}, Data: []v1alpha1.DataItem{remote("x", "x")}}}
	must(t, c.Create(ctx, foreign))
	// Its own controller writes its status once (no such store); from then on any
	// change of resourceVersion would be a write by us.
	foreignRV := WaitESReason(t, c, 10*time.Second, foreignNS, "fleet", v1alpha1.ReasonSecretStoreNotFound).ResourceVersion
	checkForeign := func(t *testing.T) {
		t.Helper()
		got := &v1alpha1.ExternalSecret{}
		must(t, c.Get(ctx, client.ObjectKeyFromObject(foreign), got))
		if _, ours := got.Labels[v1alpha1.LabelClusterExternalSecret]; ours || got.Spec.SecretStoreRef.Name != "nowhere" || len(got.OwnerReferences) != 0 {
			t.Errorf("foreign ExternalSecret touched: labels %v owners %v spec %+v", got.Labels, got.OwnerReferences, got.Spec.SecretStoreRef)
		}
		if got.ResourceVersion != foreignRV {
			t.Errorf("foreign ExternalSecret written: resourceVersion %s, was %s", got.ResourceVersion, foreignRV)
		}
	}

	t.Run("a foreign ExternalSecret of the same name: AlreadyExists, untouched", func(t *testing.T) {
		labelNamespace(t, c, foreignNS, on)
		Eventually(t, 5*time.Second, "failedNamespaces AlreadyExists", func() bool {
			st := status()
			r := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			return slices.Contains(st.FailedNamespaces, v1alpha1.FailedNamespace{Namespace: foreignNS, Reason: v1alpha1.FailedAlreadyExists}) &&
				r != nil && r.Status == metav1.ConditionFalse && r.Reason == v1alpha1.ReasonNamespacesFailed
		})
		checkForeign(t)
	})

	t.Run("editing the template reaches every stamped ExternalSecret and Secret", func(t *testing.T) {
		must(t, c.Get(ctx, client.ObjectKeyFromObject(ces), ces))
		ces.Spec.ExternalSecretSpec.Target.Template = &v1alpha1.Template{Metadata: v1alpha1.TemplateMetadata{Labels: map[string]string{"rev": "2"}}}
		must(t, c.Update(ctx, ces))
		Eventually(t, 20*time.Second, "every Secret carries rev=2", func() bool {
			l := stamped()
			if len(l) != 11 { // 10 - 1 unlabelled + the 11th + the new one
				return false
			}
			for _, es := range l {
				if es.Spec.Target.Template == nil {
					return false
				}
				s := GetSecret(t, c, es.Namespace, "fleet")
				if s == nil || s.Labels["rev"] != "2" {
					return false
				}
			}
			return true
		})
		checkForeign(t)
	})

	t.Run("deleting the foreign ExternalSecret lets the namespace be provisioned", func(t *testing.T) {
		must(t, c.Delete(ctx, foreign))
		Eventually(t, 10*time.Second, "provisioned", func() bool {
			st := status()
			return provisioned(foreignNS) && len(st.FailedNamespaces) == 0 &&
				meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady)
		})
	})

	t.Run("it grants nothing: a namespace the store does not admit gets NamespaceNotAllowed and no backend read", func(t *testing.T) {
		reads := mem.KeyCalls("ces/k")
		ns := kube.Namespace(t, map[string]string{"ces": "on"})
		WaitESReason(t, c, 10*time.Second, ns, "fleet", v1alpha1.ReasonNamespaceNotAllowed)
		if got := mem.KeyCalls("ces/k") - reads; got != 0 {
			t.Errorf("%d backend reads for a refused namespace", got)
		}
		if GetSecret(t, c, ns, "fleet") != nil {
			t.Error("Secret written in a namespace the store does not admit")
		}
		// Provisioned all the same: the ExternalSecret exists; its own status says why it is not Ready.
		Eventually(t, 5*time.Second, "provisioned", func() bool { return provisioned(ns) })
	})

	t.Run("a reconcile that changes nothing writes nothing", func(t *testing.T) {
		rvs := map[string]string{}
		for _, es := range stamped() {
			rvs[es.Namespace] = es.ResourceVersion
		}
		// Any namespace's label change makes every ClusterExternalSecret reconcile.
		labelNamespace(t, c, others[5], map[string]string{"admit": "yes", "touched": "1"})
		LetTimePass(t, time.Second, "the label change reaches every ClusterExternalSecret")
		for _, es := range stamped() {
			if rvs[es.Namespace] != es.ResourceVersion {
				t.Errorf("stamped ExternalSecret in %s written: resourceVersion %s → %s", es.Namespace, rvs[es.Namespace], es.ResourceVersion)
			}
		}
	})
}

// labelNamespace replaces namespace ns's labels.
func labelNamespace(t *testing.T, c client.Client, ns string, labels map[string]string) {
	t.Helper()
	n := &corev1.Namespace{}
	must(t, c.Get(context.Background(), client.ObjectKey{Name: ns}, n))
	n.Labels = labels
	must(t, c.Update(context.Background(), n))
}
