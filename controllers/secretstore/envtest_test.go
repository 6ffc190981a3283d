package secretstore

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/testenv"
)

// The one test of this package against a real API server: what the fake client
// cannot show. Admission (CEL) refuses an allowedKeys pattern that does not compile
// alone or anchored; a namespaceSelector admission cannot judge is refused by the
// controller through the real status subresource, and the fixed spec (new
// generation) becomes Valid; a CA bundle in a ConfigMap is part of the credential
// identity as read through the real API (metadata-only GET of a ConfigMap).
func TestEnvtestStore(t *testing.T) {
	k := testenv.StartKube(t)
	ctx := context.Background()
	ns := k.Namespace(t, nil)
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tok"}, StringData: map[string]string{"token": "t"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca"}, Data: map[string]string{"ca.crt": "PEM"}},
	} {
		if err := k.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	be := memory.New("vault")
	reg := provider.NewRegistry(be)
	kube := provider.KubeClient{Reader: k.Client, Writer: k.Client}
	r := &Reconciler{Client: k.Client, Registry: reg, Fetcher: fetch.New(reg, kube, k.Client, fetch.Options{}),
		Recheck: time.Minute, New: clusterKind, BackendTimeout: 5 * time.Second}

	spec := tokenVault()
	spec.Provider.Vault.Auth.TokenSecretRef.Namespace = ns
	spec.Provider.Vault.CAProvider = &v1alpha1.CAProvider{Type: v1alpha1.CAProviderConfigMap, Name: "ca", Key: "ca.crt", Namespace: ns}
	for _, pattern := range []string{"a(", "a)|(.*", `\Qteam-a/`} {
		spec.Conditions = []v1alpha1.StoreCondition{{Namespaces: []string{ns}, AllowedKeys: []string{"team-a/.*", pattern}}}
		err := k.Client.Create(ctx, &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "bad-" + ns}, Spec: spec})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.conditions[0].allowedKeys") {
			t.Fatalf("pattern %q: create = %v, want Invalid naming spec.conditions[0].allowedKeys", pattern, err)
		}
	}
	spec.Conditions = []v1alpha1.StoreCondition{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "team", Operator: metav1.LabelSelectorOpIn}}}}} // In without values: admission cannot tell
	store := &v1alpha1.ClusterSecretStore{ObjectMeta: metav1.ObjectMeta{Name: "css-" + ns}, Spec: spec}
	if err := k.Client.Create(ctx, store); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = k.Client.Delete(context.Background(), store) })

	ready := func() *metav1.Condition {
		t.Helper()
		if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(store)}); err != nil {
			t.Fatalf("Reconcile: %v", err)
		}
		if err := k.Client.Get(ctx, client.ObjectKeyFromObject(store), store); err != nil {
			t.Fatal(err)
		}
		return meta.FindStatusCondition(store.Status.Conditions, v1alpha1.ConditionReady)
	}
	if c := ready(); c == nil || c.Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(c.Message, "spec.conditions[0].namespaceSelector: invalid label selector") {
		t.Fatalf("Ready = %+v, want InvalidSpec naming spec.conditions[0].namespaceSelector", c)
	}

	store.Spec.Conditions[0].NamespaceSelector.MatchExpressions[0].Values = []string{"a"}
	if err := k.Client.Update(ctx, store); err != nil {
		t.Fatal(err)
	}
	if c := ready(); c == nil || c.Reason != v1alpha1.ReasonValid || c.ObservedGeneration != store.Generation {
		t.Fatalf("after the fix: Ready = %+v (generation %d), want Valid", c, store.Generation)
	}

	before, err := provider.CredentialVersions(ctx, k.Client, store)
	if err != nil || !strings.Contains(before, "ConfigMap:"+ns+"/ca=") {
		t.Fatalf("CredentialVersions = %q, %v; want the ConfigMap's resourceVersion", before, err)
	}
	cm := &corev1.ConfigMap{}
	if err := k.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ca"}, cm); err != nil {
		t.Fatal(err)
	}
	cm.Data["ca.crt"] = "NEW PEM"
	if err := k.Client.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if after, err := provider.CredentialVersions(ctx, k.Client, store); err != nil || after == before {
		t.Fatalf("identity %q -> %q (%v): a CA change must change it", before, after, err)
	}
}
