package externalsecret

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// computeStatus is pure: the new status from the old one and the outcome. On
// failure the last good sources/hash stay (the Secret keeps the last good data).
func computeStatus(es *v1alpha1.ExternalSecret, out outcome, now metav1.Time) v1alpha1.ExternalSecretStatus {
	st := *es.Status.DeepCopy()
	st.ObservedGeneration = es.Generation
	if out.rollout != nil { // rollout.go: the last restart of consumers
		st.Rollout = out.rollout
	}
	if out.kind == kept || out.kind == conflict {
		return st
	}
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: es.Generation}
	if out.failed() {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, out.reason, out.message
	} else {
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonSynced
		cond.Message = "target Secret is in sync"
		if creationPolicy(es) == v1alpha1.CreationNone {
			cond.Message = "fetched; creationPolicy None writes nothing"
		}
		d := out.done
		st.Sources = d.sources
		st.DataHash = d.dataHash
		st.Leases = d.leases
		if d.target != "" && creationPolicy(es) != v1alpha1.CreationNone {
			st.Target = &v1alpha1.TargetStatus{Name: d.target}
		}
		if d.changed || (st.SyncedAt == nil && creationPolicy(es) != v1alpha1.CreationNone) {
			st.SyncedAt = &now
		}
	}
	if out.forceSync != "" {
		st.ObservedForceSync = out.forceSync
	}
	if out.clearHash {
		st.DataHash = ""
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	return st
}

// patchStatus writes status once, and only when it differs. An ExternalSecret
// deleted meanwhile has no status to write: not an error.
func (r *Reconciler) patchStatus(ctx context.Context, es *v1alpha1.ExternalSecret, before *v1alpha1.ExternalSecretStatus, out outcome) error {
	now := metav1.NewTime(r.Clock.Now())
	st := computeStatus(es, out, now)
	if equality.Semantic.DeepEqual(*before, st) {
		return nil
	}
	orig := es.DeepCopy()
	es.Status = st
	return client.IgnoreNotFound(r.Client.Status().Patch(ctx, es, client.MergeFrom(orig)))
}
