package externalsecret

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// resolveStore finds the store, decides namespace admission (before anything else,
// so NamespaceNotAllowed wins over StoreNotReady) and checks readiness. For a
// ClusterSecretStore it also returns the allowedKeys filter for keys found later.
func (r *Reconciler) resolveStore(ctx context.Context, es *v1alpha1.ExternalSecret) (v1alpha1.GenericStore, keyFilter, *outcome) {
	if o := checkCanonical(es); o != nil {
		return nil, nil, o
	}
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
		o := failTerminal(v1alpha1.ReasonSecretStoreNotFound, "spec.secretStoreRef: %s %q not found", kindOf(ref), ref.Name)
		return nil, nil, &o
	}
	if err != nil {
		o := kubeFailure("spec.secretStoreRef: read store", err)
		return nil, nil, &o
	}
	var filter keyFilter
	if css, ok := store.(*v1alpha1.ClusterSecretStore); ok {
		admitted, err := r.admittingConditions(ctx, css, es.Namespace)
		if err != nil {
			o := kubeFailure("spec.secretStoreRef: read Namespace "+strconv.Quote(es.Namespace), err)
			return nil, nil, &o
		}
		if len(admitted) == 0 {
			o := failTerminal(v1alpha1.ReasonNamespaceNotAllowed, "spec.secretStoreRef: ClusterSecretStore %q does not admit namespace %q", ref.Name, es.Namespace)
			return nil, nil, &o
		}
		a := newAdmission(admitted)
		if path, key, ok := keysAllowed(es, a); !ok {
			o := failTerminal(v1alpha1.ReasonKeyNotAllowed, "%s: key %q is not allowed by ClusterSecretStore %q for namespace %q", path, key, ref.Name, es.Namespace)
			return nil, nil, &o
		}
		filter = a.allows
	}
	c := meta.FindStatusCondition(store.GetStatus().Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != store.GetGeneration() {
		o := failTerminal(v1alpha1.ReasonStoreNotReady, "spec.secretStoreRef: %s %q is not ready", kindOf(ref), ref.Name)
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

// admission is the allowedKeys of the conditions that admit a namespace, compiled
// once per sync. Patterns match the WHOLE key (as if written ^(?:pattern)$): an
// unanchored "team-a/" would otherwise also admit "x/team-a/y".
type admission struct {
	all bool // an admitting condition has no allowedKeys
	res []*regexp.Regexp
}

func newAdmission(admitted []v1alpha1.StoreCondition) *admission {
	a := &admission{}
	for _, c := range admitted {
		if len(c.AllowedKeys) == 0 {
			a.all = true
		}
		for _, pattern := range c.AllowedKeys {
			// A pattern that does not compile admits nothing (the store is
			// InvalidSpec); it must never widen admission. The bare pattern must
			// compile too: "a)|(.*" fails alone but, wrapped, would admit every key.
			if _, err := regexp.Compile(pattern); err != nil {
				continue
			}
			if re, err := regexp.Compile(`^(?:` + pattern + `)$`); err == nil {
				a.res = append(a.res, re)
			}
		}
	}
	return a
}

func (a *admission) allows(key string) bool {
	if a.all {
		return true
	}
	for _, re := range a.res {
		if re.MatchString(key) {
			return true
		}
	}
	return false
}

// keysAllowed checks every key the spec names against allowedKeys; a key passes
// when ANY admitting entry allows it (an entry without allowedKeys allows all).
// Keys are canonical by then (checkCanonical), so what is matched is what is read.
func keysAllowed(es *v1alpha1.ExternalSecret, a *admission) (path, key string, ok bool) {
	for _, k := range specKeys(es) {
		if !a.allows(k.admitted) {
			return k.path, k.admitted, false
		}
	}
	return "", "", true
}

// specKey is one key or path the spec names: where (path), as written (key), and
// the string allowedKeys are checked against (admitted: the key itself, or
// "<mount>/<key>" for transit).
type specKey struct{ path, key, admitted string }

func specKeys(es *v1alpha1.ExternalSecret) []specKey {
	var out []specKey
	add := func(path, key string) { out = append(out, specKey{path, key, key}) }
	for i, d := range es.Spec.Data {
		switch {
		case d.RemoteRef != nil:
			add(fieldPath("spec.data", i, "remoteRef.key"), d.RemoteRef.Key)
		case d.Decrypt != nil:
			mount := transitMount(d.Decrypt)
			out = append(out, specKey{fieldPath("spec.data", i, "decrypt.mount"), mount, mount + "/" + d.Decrypt.Key})
		}
	}
	for i, d := range es.Spec.DataFrom {
		switch {
		case d.Extract != nil:
			add(fieldPath("spec.dataFrom", i, "extract.key"), d.Extract.Key)
		case d.Find != nil && d.Find.Path != "":
			add(fieldPath("spec.dataFrom", i, "find.path"), d.Find.Path)
		case d.Dynamic != nil:
			add(fieldPath("spec.dataFrom", i, "dynamic.path"), d.Dynamic.Path)
		}
	}
	return out
}

func transitMount(d *v1alpha1.DecryptRef) string {
	if d.Mount == "" {
		return "transit"
	}
	return d.Mount
}

// checkCanonical repeats the admission (CEL) rule on every key and path: an object
// stored before the rule existed must not reach outside its prefix either.
func checkCanonical(es *v1alpha1.ExternalSecret) *outcome {
	for _, k := range specKeys(es) {
		if err := provider.CheckKey(k.key); err != nil {
			o := failTerminal(v1alpha1.ReasonInvalidSpec, "%s: %q is not canonical (%v)", k.path, k.key, err)
			return &o
		}
	}
	for i, d := range es.Spec.DataFrom {
		if d.Dynamic == nil {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(d.Dynamic.Path, "/"), "/")
		switch first {
		case "sys", "auth", "identity", "cubbyhole":
			// Not secrets engines: a dynamic POST there would change Vault itself
			// (policies, auth roles, tokens) with the store's token.
			o := failTerminal(v1alpha1.ReasonInvalidSpec, "%s: %q is Vault's own %s/ path, not a secrets engine", fieldPath("spec.dataFrom", i, "dynamic.path"), d.Dynamic.Path, first)
			return &o
		}
	}
	for i, d := range es.Spec.Data {
		if d.Decrypt == nil {
			continue
		}
		if err := provider.CheckKey(d.Decrypt.Key); err != nil || strings.Contains(d.Decrypt.Key, "/") {
			o := failTerminal(v1alpha1.ReasonInvalidSpec, "%s: %q must be one canonical path segment", fieldPath("spec.data", i, "decrypt.key"), d.Decrypt.Key)
			return &o
		}
	}
	return nil
}
