package externalsecret

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// This file exports thin wrappers for tools outside the operator (the kubectl plugin,
// cmd/kubectl-secretsync) that must answer with the operator's own rules: the refresh
// slot and ClusterSecretStore admission. They add no logic of their own, so the
// plugin can never disagree with the controller.

// RefreshInterval is es's refresh interval with the default applied.
func RefreshInterval(es *v1alpha1.ExternalSecret) time.Duration { return refreshInterval(es) }

// Periodic reports whether es's refreshPolicy refreshes on the interval at all.
func Periodic(es *v1alpha1.ExternalSecret) bool {
	return policyAllows(es.Spec.RefreshPolicy, true, true).periodic && refreshInterval(es) > 0
}

// NextRefresh is the controller's next refresh slot after now, given the last
// refresh it knows of (zero: none known): the earliest next slot of the keys es
// reads (keySlots). After a refresh the slot that fired moves at least half an
// interval on (the fresh rule); with no refresh since, every slot is kept. Zero when
// es does not refresh periodically.
func NextRefresh(es *v1alpha1.ExternalSecret, lastRefresh, now time.Time) time.Time {
	if !Periodic(es) {
		return time.Time{}
	}
	iv := refreshInterval(es)
	if !lastRefresh.IsZero() {
		if next := earliest(keySlots(es, lastRefresh, iv, afterSlot)); next.After(now) {
			return next
		}
	}
	return earliest(keySlots(es, now, iv, afterStart))
}

// CacheWindow is how old a value may be and still serve a scheduled refresh.
func CacheWindow(interval time.Duration) time.Duration { return cacheWindow(interval) }

// SpecKey is one key or path an ExternalSecret names: where it is written (Path), the
// key as written (Key) and the string allowedKeys are matched against (Admitted).
type SpecKey struct{ Path, Key, Admitted string }

// SpecKeys lists every key the spec names, in spec order.
func SpecKeys(es *v1alpha1.ExternalSecret) []SpecKey {
	var out []SpecKey
	for _, k := range specKeys(es) {
		out = append(out, SpecKey{Path: k.path, Key: k.key, Admitted: k.admitted})
	}
	return out
}

// AdmittingConditions returns the indexes of css.spec.conditions that admit
// namespace ns (its labels are read with c, as the controller does).
func AdmittingConditions(ctx context.Context, c ctrl.Client, css *v1alpha1.ClusterSecretStore, ns string) ([]int, error) {
	r := &Reconciler{Client: c}
	var out []int
	for i := range css.Spec.Conditions {
		one := css.DeepCopy()
		one.Spec.Conditions = one.Spec.Conditions[i : i+1]
		got, err := r.admittingConditions(ctx, one, ns)
		if err != nil {
			return nil, err
		}
		if len(got) > 0 {
			out = append(out, i)
		}
	}
	return out, nil
}

// KeyAllowedBy returns the first of the given condition indexes whose allowedKeys
// admit key (-1: none does), with the controller's whole-key matching.
func KeyAllowedBy(css *v1alpha1.ClusterSecretStore, conditions []int, key string) int {
	for _, i := range conditions {
		if newAdmission(css.Spec.Conditions[i : i+1]).allows(key) {
			return i
		}
	}
	return -1
}

// CheckTemplate applies the controller's parse-time rules to one target.template.data
// entry (the function allowlist, no define, ...). The error is a fixed description.
func CheckTemplate(key, text string) error {
	_, err := parseTemplate(key, text)
	return err
}
