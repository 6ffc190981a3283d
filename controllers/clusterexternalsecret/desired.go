package clusterexternalsecret

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// matchNamespaces returns the sorted names of the namespaces ces stamps into: those
// named in spec.namespaces or matching any selector, except terminating ones (a
// create there is refused, and what is there goes away with the namespace). An
// invalid selector is an error, so nothing is pruned on a guess.
func matchNamespaces(ces *v1alpha1.ClusterExternalSecret, namespaces []corev1.Namespace) ([]string, error) {
	sels := make([]labels.Selector, 0, len(ces.Spec.NamespaceSelectors))
	for i := range ces.Spec.NamespaceSelectors {
		s, err := metav1.LabelSelectorAsSelector(&ces.Spec.NamespaceSelectors[i])
		if err != nil {
			return nil, fmt.Errorf("spec.namespaceSelectors[%d]: %w", i, err)
		}
		sels = append(sels, s)
	}
	var out []string
	for i := range namespaces {
		ns := &namespaces[i]
		if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
			continue
		}
		match := slices.Contains(ces.Spec.Namespaces, ns.Name) ||
			slices.ContainsFunc(sels, func(s labels.Selector) bool { return s.Matches(labels.Set(ns.Labels)) })
		if match {
			out = append(out, ns.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// externalSecretName is the name of every ExternalSecret ces stamps.
func externalSecretName(ces *v1alpha1.ClusterExternalSecret) string {
	if ces.Spec.ExternalSecretName != "" {
		return ces.Spec.ExternalSecretName
	}
	return ces.Name
}

// desired is the ExternalSecret ces wants in namespace ns.
func desired(ces *v1alpha1.ClusterExternalSecret, ns string) *v1alpha1.ExternalSecret {
	l := map[string]string{}
	for k, v := range ces.Spec.ExternalSecretMetadata.Labels {
		l[k] = v
	}
	// Set last, so a template label cannot disown the object.
	l[v1alpha1.LabelClusterExternalSecret] = ces.Name
	var a map[string]string
	if len(ces.Spec.ExternalSecretMetadata.Annotations) > 0 {
		a = map[string]string{}
		for k, v := range ces.Spec.ExternalSecretMetadata.Annotations {
			a[k] = v
		}
	}
	return &v1alpha1.ExternalSecret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: externalSecretName(ces), Labels: l, Annotations: a,
			// A cluster-scoped owner of namespaced dependents is allowed: deleting the
			// ClusterExternalSecret lets the garbage collector delete what it stamped.
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ces, v1alpha1.GroupVersion.WithKind("ClusterExternalSecret"))},
		},
		Spec: *ces.Spec.ExternalSecretSpec.DeepCopy(),
	}
}

// keptAnnotations survive on a stamped ExternalSecret although the template does not
// set them: force-sync is how a user asks one namespace's copy to sync now, and
// removing it before the ExternalSecret controller acts would swallow the request.
var keptAnnotations = []string{v1alpha1.AnnotationForceSync}

// owned: es was stamped by ces (its label says so). Anything else is never touched.
func owned(ces *v1alpha1.ClusterExternalSecret, es *v1alpha1.ExternalSecret) bool {
	return es.Labels[v1alpha1.LabelClusterExternalSecret] == ces.Name
}

// apply returns existing changed to match want (spec, labels, annotations, our
// ownerReference) and whether anything changed; existing itself is not modified.
func apply(existing, want *v1alpha1.ExternalSecret) (*v1alpha1.ExternalSecret, bool) {
	out := existing.DeepCopy()
	ann := want.Annotations
	for _, k := range keptAnnotations {
		if v, ok := existing.Annotations[k]; ok {
			if _, set := want.Annotations[k]; !set {
				ann = cloneSet(ann, k, v)
			}
		}
	}
	out.Spec = *want.Spec.DeepCopy()
	out.Labels = want.Labels
	out.Annotations = ann
	ref := want.OwnerReferences[0]
	if !slices.ContainsFunc(out.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == ref.UID && r.Controller != nil && *r.Controller }) {
		// Drop a controller reference left by a deleted ClusterExternalSecret of the
		// same name; keep any other owner a user added.
		out.OwnerReferences = slices.DeleteFunc(out.OwnerReferences, func(r metav1.OwnerReference) bool { return r.Controller != nil && *r.Controller })
		out.OwnerReferences = append(out.OwnerReferences, ref)
	}
	changed := !equality.Semantic.DeepEqual(existing.Spec, out.Spec) ||
		!equality.Semantic.DeepEqual(existing.Labels, out.Labels) ||
		!equality.Semantic.DeepEqual(existing.Annotations, out.Annotations) ||
		!equality.Semantic.DeepEqual(existing.OwnerReferences, out.OwnerReferences)
	return out, changed
}

func cloneSet(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// computeStatus is ces's status after a pass that provisioned the given namespaces
// and failed the others. invalid, when set, is an InvalidSpec message (no pass ran:
// the namespace lists are kept as they were).
func computeStatus(ces *v1alpha1.ClusterExternalSecret, provisioned []string, failed []v1alpha1.FailedNamespace, invalid string) v1alpha1.ClusterExternalSecretStatus {
	st := *ces.Status.DeepCopy()
	st.ObservedGeneration = ces.Generation
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: ces.Generation}
	switch {
	case invalid != "":
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, invalid
	default:
		st.ProvisionedNamespaces = slices.Sorted(slices.Values(provisioned))
		st.FailedNamespaces = slices.SortedFunc(slices.Values(failed), func(a, b v1alpha1.FailedNamespace) int {
			return strings.Compare(a.Namespace, b.Namespace)
		})
		if len(failed) == 0 {
			cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonProvisioned
			cond.Message = fmt.Sprintf("%d matched namespaces have the ExternalSecret", len(provisioned))
		} else {
			cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonNamespacesFailed
			cond.Message = fmt.Sprintf("%d of %d matched namespaces failed, see status.failedNamespaces", len(failed), len(failed)+len(provisioned))
		}
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	return st
}
