package clusterexternalsecret

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

func ns(name string, labels map[string]string) corev1.Namespace {
	return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func TestMatchNamespaces(t *testing.T) {
	gone := ns("gone", map[string]string{"team": "a"})
	gone.DeletionTimestamp = &metav1.Time{Time: time.Unix(1, 0)}
	all := []corev1.Namespace{ns("c", map[string]string{"team": "a"}), ns("a", map[string]string{"team": "b"}),
		ns("b", nil), ns("tools", nil), gone}
	sel := func(k, v string) metav1.LabelSelector {
		return metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	for _, tc := range []struct {
		name    string
		spec    v1alpha1.ClusterExternalSecretSpec
		want    []string
		wantErr bool
	}{
		{name: "by name only", spec: v1alpha1.ClusterExternalSecretSpec{Namespaces: []string{"tools", "missing"}}, want: []string{"tools"}},
		{name: "selector skips terminating", spec: v1alpha1.ClusterExternalSecretSpec{NamespaceSelectors: []metav1.LabelSelector{sel("team", "a")}}, want: []string{"c"}},
		{name: "OR of selectors and names, sorted, no duplicates", spec: v1alpha1.ClusterExternalSecretSpec{
			NamespaceSelectors: []metav1.LabelSelector{sel("team", "a"), sel("team", "b")}, Namespaces: []string{"c", "b"}}, want: []string{"a", "b", "c"}},
		{name: "terminating named namespace is skipped", spec: v1alpha1.ClusterExternalSecretSpec{Namespaces: []string{"gone"}}},
		{name: "empty selector matches every live namespace", spec: v1alpha1.ClusterExternalSecretSpec{NamespaceSelectors: []metav1.LabelSelector{{}}},
			want: []string{"a", "b", "c", "tools"}},
		{name: "invalid selector is an error", spec: v1alpha1.ClusterExternalSecretSpec{NamespaceSelectors: []metav1.LabelSelector{{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Bogus"}}}}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := matchNamespaces(&v1alpha1.ClusterExternalSecret{Spec: tc.spec}, all)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testCES() *v1alpha1.ClusterExternalSecret {
	return &v1alpha1.ClusterExternalSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "registry", UID: "uid-1", Generation: 3},
		Spec: v1alpha1.ClusterExternalSecretSpec{
			ExternalSecretMetadata: v1alpha1.TemplateMetadata{Labels: map[string]string{"app": "x", v1alpha1.LabelClusterExternalSecret: "other"}, Annotations: map[string]string{"note": "n"}},
			ExternalSecretSpec:     v1alpha1.ExternalSecretSpec{SecretStoreRef: v1alpha1.StoreRef{Name: "s", Kind: "ClusterSecretStore"}},
		},
	}
}

func TestDesired(t *testing.T) {
	for _, tc := range []struct {
		name     string
		esName   string
		wantName string
	}{
		{name: "defaults to the ClusterExternalSecret's name", wantName: "registry"},
		{name: "externalSecretName wins", esName: "creds", wantName: "creds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ces := testCES()
			ces.Spec.ExternalSecretName = tc.esName
			es := desired(ces, "team-a")
			if es.Name != tc.wantName || es.Namespace != "team-a" {
				t.Errorf("name = %s/%s", es.Namespace, es.Name)
			}
			if es.Labels[v1alpha1.LabelClusterExternalSecret] != "registry" || es.Labels["app"] != "x" || es.Annotations["note"] != "n" {
				t.Errorf("metadata = %v %v", es.Labels, es.Annotations)
			}
			if !metav1.IsControlledBy(es, ces) || es.Spec.SecretStoreRef.Name != "s" {
				t.Errorf("owner %v spec %+v", es.OwnerReferences, es.Spec)
			}
			if ces.Spec.ExternalSecretMetadata.Labels[v1alpha1.LabelClusterExternalSecret] != "other" {
				t.Error("desired modified the ClusterExternalSecret's template")
			}
		})
	}
}

func TestApply(t *testing.T) {
	ces := testCES()
	want := desired(ces, "ns")
	for _, tc := range []struct {
		name        string
		mutate      func(*v1alpha1.ExternalSecret)
		wantChanged bool
		check       func(*testing.T, *v1alpha1.ExternalSecret)
	}{
		{name: "unchanged: no write", mutate: func(*v1alpha1.ExternalSecret) {}},
		{name: "finalizers and status are not compared", mutate: func(es *v1alpha1.ExternalSecret) {
			es.Finalizers = []string{"x"}
			es.Status.DataHash = "h"
		}},
		{name: "spec drift is repaired", wantChanged: true, mutate: func(es *v1alpha1.ExternalSecret) { es.Spec.SecretStoreRef.Name = "other" },
			check: func(t *testing.T, es *v1alpha1.ExternalSecret) {
				if es.Spec.SecretStoreRef.Name != "s" {
					t.Error("spec not restored")
				}
			}},
		{name: "extra label removed", wantChanged: true, mutate: func(es *v1alpha1.ExternalSecret) { es.Labels = cloneSet(es.Labels, "old", "1") },
			check: func(t *testing.T, es *v1alpha1.ExternalSecret) {
				if _, ok := es.Labels["old"]; ok {
					t.Error("label kept")
				}
			}},
		{name: "force-sync annotation kept", mutate: func(es *v1alpha1.ExternalSecret) {
			es.Annotations = cloneSet(es.Annotations, v1alpha1.AnnotationForceSync, "1")
		}},
		{name: "stale controller reference replaced, other owners kept", wantChanged: true, mutate: func(es *v1alpha1.ExternalSecret) {
			yes := true
			es.OwnerReferences = []metav1.OwnerReference{{UID: "old", Controller: &yes}, {UID: "user"}}
		}, check: func(t *testing.T, es *v1alpha1.ExternalSecret) {
			if !metav1.IsControlledBy(es, ces) || len(es.OwnerReferences) != 2 || es.OwnerReferences[0].UID != "user" {
				t.Errorf("owners = %v", es.OwnerReferences)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			existing := want.DeepCopy()
			existing.ResourceVersion = "7"
			tc.mutate(existing)
			before := existing.DeepCopy()
			got, changed := apply(existing, want)
			if changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
			if got.ResourceVersion != "7" {
				t.Error("resourceVersion lost")
			}
			if _, changedAgain := apply(got, want); changedAgain {
				t.Error("a second apply still changes something")
			}
			if !metaEqual(existing, before) {
				t.Error("apply modified its input")
			}
		})
	}
}

func metaEqual(a, b *v1alpha1.ExternalSecret) bool {
	return a.ResourceVersion == b.ResourceVersion && len(a.Labels) == len(b.Labels) && len(a.Annotations) == len(b.Annotations) &&
		len(a.OwnerReferences) == len(b.OwnerReferences) && a.Spec.SecretStoreRef == b.Spec.SecretStoreRef
}

func TestComputeStatus(t *testing.T) {
	for _, tc := range []struct {
		name        string
		provisioned []string
		failed      []v1alpha1.FailedNamespace
		invalid     string
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantProv    []string
		wantFailed  []string
	}{
		{name: "all provisioned, sorted", provisioned: []string{"b", "a"}, wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonProvisioned, wantProv: []string{"a", "b"}},
		{name: "nothing matched is still Provisioned", wantStatus: metav1.ConditionTrue, wantReason: v1alpha1.ReasonProvisioned},
		{name: "a failed namespace makes Ready False", provisioned: []string{"a"},
			failed:     []v1alpha1.FailedNamespace{{Namespace: "z", Reason: v1alpha1.FailedAlreadyExists}, {Namespace: "c", Reason: "Forbidden"}},
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonNamespacesFailed, wantProv: []string{"a"}, wantFailed: []string{"c", "z"}},
		{name: "invalid spec keeps the namespace lists", invalid: "spec.namespaceSelectors[0]: bad",
			wantStatus: metav1.ConditionFalse, wantReason: v1alpha1.ReasonInvalidSpec, wantProv: []string{"old"}, wantFailed: []string{"f"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ces := testCES()
			ces.Status.ProvisionedNamespaces = []string{"old"}
			ces.Status.FailedNamespaces = []v1alpha1.FailedNamespace{{Namespace: "f", Reason: "x"}}
			st := computeStatus(ces, tc.provisioned, tc.failed, tc.invalid)
			c := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if c == nil || c.Status != tc.wantStatus || c.Reason != tc.wantReason || c.ObservedGeneration != 3 || st.ObservedGeneration != 3 {
				t.Fatalf("status = %+v", st)
			}
			var failed []string
			for _, f := range st.FailedNamespaces {
				failed = append(failed, f.Namespace)
			}
			if !slices.Equal(st.ProvisionedNamespaces, tc.wantProv) || !slices.Equal(failed, tc.wantFailed) {
				t.Errorf("provisioned %v failed %v", st.ProvisionedNamespaces, failed)
			}
			if len(ces.Status.Conditions) != 0 {
				t.Error("computeStatus modified the object")
			}
		})
	}
}
