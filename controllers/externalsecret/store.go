package externalsecret

import (
	"context"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// resolveStore finds the store, decides namespace admission (before anything else,
// so NamespaceNotAllowed wins over StoreNotReady) and checks readiness. For a
// ClusterSecretStore it also returns the allowedKeys filter for keys found later.
func (r *Reconciler) resolveStore(ctx context.Context, es *v1alpha1.ExternalSecret) (v1alpha1.GenericStore, keyFilter, *outcome) {
	ref := es.Spec.SecretStoreRef
	var store v1alpha1.GenericStore
	var err error
	if ref.Kind == v1alpha1.KindClusterSecretStore {
		css := &v1alpha1.ClusterSecretStore{}
		err = r.Client.Get(ctx, types.NamespacedName{Name: ref.Name}, css)
		store = css
	} else {
		ss := &v1alpha1.SecretStore{}
		err = r.Client.Get(ctx, types.NamespacedName{Namespace: es.Namespace, Name: ref.Name}, ss)
		store = ss
	}
	if apierrors.IsNotFound(err) {
		o := fail(v1alpha1.ReasonSecretStoreNotFound, false, "spec.secretStoreRef: %s %q not found", kindOf(ref), ref.Name)
		return nil, nil, &o
	}
	if err != nil {
		o := fail(v1alpha1.ReasonProviderError, true, "spec.secretStoreRef: read store: %v", err)
		return nil, nil, &o
	}
	var filter keyFilter
	if css, ok := store.(*v1alpha1.ClusterSecretStore); ok {
		admitted, err := r.admittingConditions(ctx, css, es.Namespace)
		if err != nil {
			o := fail(v1alpha1.ReasonProviderError, true, "spec.secretStoreRef: read namespace: %v", err)
			return nil, nil, &o
		}
		if len(admitted) == 0 {
			o := fail(v1alpha1.ReasonNamespaceNotAllowed, false, "spec.secretStoreRef: ClusterSecretStore %q does not admit namespace %q", ref.Name, es.Namespace)
			return nil, nil, &o
		}
		if path, key, ok := keysAllowed(es, admitted); !ok {
			o := fail(v1alpha1.ReasonKeyNotAllowed, false, "%s: key %q is not allowed by ClusterSecretStore %q for namespace %q", path, key, ref.Name, es.Namespace)
			return nil, nil, &o
		}
		filter = func(k string) bool { return keyAllowed(k, admitted) }
	}
	c := meta.FindStatusCondition(store.GetStatus().Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != store.GetGeneration() {
		o := fail(v1alpha1.ReasonStoreNotReady, false, "spec.secretStoreRef: %s %q is not ready", kindOf(ref), ref.Name)
		return nil, nil, &o
	}
	return store, filter, nil
}

func kindOf(ref v1alpha1.StoreRef) v1alpha1.StoreKind {
	if ref.Kind == "" {
		return v1alpha1.KindSecretStore
	}
	return ref.Kind
}

// admittingConditions returns the entries of css.spec.conditions that admit ns.
// Empty conditions admit nobody.
func (r *Reconciler) admittingConditions(ctx context.Context, css *v1alpha1.ClusterSecretStore, ns string) ([]v1alpha1.StoreCondition, error) {
	var nsLabels labels.Set
	var out []v1alpha1.StoreCondition
	for _, c := range css.Spec.Conditions {
		admit := false
		for _, n := range c.Namespaces {
			if n == ns {
				admit = true
			}
		}
		if !admit && c.NamespaceSelector != nil {
			if nsLabels == nil {
				n := &corev1.Namespace{}
				if err := r.Client.Get(ctx, types.NamespacedName{Name: ns}, n); err != nil {
					return nil, err
				}
				nsLabels = labels.Set(n.Labels)
			}
			sel, err := metav1.LabelSelectorAsSelector(c.NamespaceSelector)
			if err == nil && sel.Matches(nsLabels) {
				admit = true
			}
		}
		if admit {
			out = append(out, c)
		}
	}
	return out, nil
}

// keysAllowed checks every remote key the spec names against allowedKeys; a key
// passes when ANY admitting entry allows it (an entry without allowedKeys allows all).
func keysAllowed(es *v1alpha1.ExternalSecret, admitted []v1alpha1.StoreCondition) (path, key string, ok bool) {
	for _, k := range specKeys(es) {
		if !keyAllowed(k.key, admitted) {
			return k.path, k.key, false
		}
	}
	return "", "", true
}

func keyAllowed(key string, admitted []v1alpha1.StoreCondition) bool {
	for _, c := range admitted {
		if len(c.AllowedKeys) == 0 {
			return true
		}
		for _, pattern := range c.AllowedKeys {
			if re, err := regexp.Compile(pattern); err == nil && re.MatchString(key) {
				return true
			}
		}
	}
	return false
}

type specKey struct{ path, key string }

func specKeys(es *v1alpha1.ExternalSecret) []specKey {
	var out []specKey
	for i, d := range es.Spec.Data {
		if d.RemoteRef != nil {
			out = append(out, specKey{fieldPath("spec.data", i, "remoteRef.key"), d.RemoteRef.Key})
		}
	}
	for i, d := range es.Spec.DataFrom {
		switch {
		case d.Extract != nil:
			out = append(out, specKey{fieldPath("spec.dataFrom", i, "extract.key"), d.Extract.Key})
		case d.Find != nil && d.Find.Path != "":
			out = append(out, specKey{fieldPath("spec.dataFrom", i, "find.path"), d.Find.Path})
		case d.Dynamic != nil:
			out = append(out, specKey{fieldPath("spec.dataFrom", i, "dynamic.path"), d.Dynamic.Path})
		}
	}
	return out
}
