package externalsecret

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// needsFinalizer: only dynamic secrets need cleanup outside Kubernetes (lease
// revocation); owned Secrets go with garbage collection.
func needsFinalizer(es *v1alpha1.ExternalSecret) bool {
	for _, d := range es.Spec.DataFrom {
		if d.Dynamic != nil && (d.Dynamic.RevokeOnDelete == nil || *d.Dynamic.RevokeOnDelete) {
			return true
		}
	}
	return false
}

// ensureFinalizer adds or removes the lease finalizer to match the spec.
func (r *Reconciler) ensureFinalizer(ctx context.Context, es *v1alpha1.ExternalSecret) error {
	want := needsFinalizer(es)
	if want == controllerutil.ContainsFinalizer(es, v1alpha1.FinalizerLeases) {
		return nil
	}
	if want {
		controllerutil.AddFinalizer(es, v1alpha1.FinalizerLeases)
	} else {
		controllerutil.RemoveFinalizer(es, v1alpha1.FinalizerLeases)
	}
	return r.Client.Update(ctx, es)
}

// reconcileDelete revokes recorded leases, then releases the finalizer.
func (r *Reconciler) reconcileDelete(ctx context.Context, es *v1alpha1.ExternalSecret) (reconcile.Result, error) {
	r.mem.forget(es.UID)
	if !controllerutil.ContainsFinalizer(es, v1alpha1.FinalizerLeases) {
		return reconcile.Result{}, nil
	}
	if len(es.Status.Leases) > 0 && needsFinalizer(es) {
		store, _, o := r.resolveStore(ctx, es)
		if o != nil && o.reason != v1alpha1.ReasonStoreNotReady {
			// The store is gone or refuses us: nothing can revoke; do not block deletion.
			r.Recorder.Eventf(es, nil, corev1.EventTypeWarning, v1alpha1.EventSyncFailed, "Revoke", "leases not revoked: %s", o.message)
		} else if store != nil {
			h, err := r.Fetcher.For(ctx, store, es.Namespace)
			if err != nil {
				return reconcile.Result{}, errSafe(err) // transient: retry revocation
			}
			leaser, ok := h.Client().(provider.Leaser)
			for _, l := range es.Status.Leases {
				if !ok {
					break
				}
				if err := leaser.Revoke(ctx, l.ID); err != nil {
					return reconcile.Result{}, errSafe(err) // transient: retry revocation
				}
			}
			r.Recorder.Eventf(es, nil, corev1.EventTypeNormal, v1alpha1.EventLeaseRevoked, "Revoke", "%d lease(s) revoked", len(es.Status.Leases))
		}
	}
	controllerutil.RemoveFinalizer(es, v1alpha1.FinalizerLeases)
	return reconcile.Result{}, r.Client.Update(ctx, es)
}

type safeError string

func (e safeError) Error() string { return string(e) }

// errSafe renders err for controller-runtime's error log without backend text.
func errSafe(err error) error { return safeError(provider.SafeMessage(err)) }
