package externalsecret

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	orig := es.DeepCopy()
	if want {
		controllerutil.AddFinalizer(es, v1alpha1.FinalizerLeases)
	} else {
		controllerutil.RemoveFinalizer(es, v1alpha1.FinalizerLeases)
	}
	return r.patchFinalizers(ctx, orig, es)
}

// patchFinalizers writes only the finalizers (optimistic lock: a concurrent change
// conflicts and is retried). Never an Update: the cached copy lacks what the cache
// transform strips (managedFields, kubectl's last-applied annotation), and an Update
// would delete the annotation on the server.
func (r *Reconciler) patchFinalizers(ctx context.Context, orig, es *v1alpha1.ExternalSecret) error {
	return r.Client.Patch(ctx, es, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
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
	orig := es.DeepCopy()
	controllerutil.RemoveFinalizer(es, v1alpha1.FinalizerLeases)
	return reconcile.Result{}, r.patchFinalizers(ctx, orig, es)
}

type safeError string

func (e safeError) Error() string { return string(e) }

// errSafe renders err for controller-runtime's error log without backend text.
func errSafe(err error) error { return safeError(provider.SafeMessage(err)) }
