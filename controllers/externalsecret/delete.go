package externalsecret

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
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

// ensureFinalizer adds or removes the finalizers to match the spec: leases to
// revoke, and a Merge ExternalSecret's keys to remove from its target.
func (r *Reconciler) ensureFinalizer(ctx context.Context, es *v1alpha1.ExternalSecret) error {
	orig := es.DeepCopy()
	changed := false
	for _, f := range []struct {
		name string
		want bool
	}{
		{v1alpha1.FinalizerLeases, needsFinalizer(es)},
		{v1alpha1.FinalizerMergedKeys, creationPolicy(es) == v1alpha1.CreationMerge},
	} {
		if f.want == controllerutil.ContainsFinalizer(es, f.name) {
			continue
		}
		changed = true
		if f.want {
			controllerutil.AddFinalizer(es, f.name)
		} else {
			controllerutil.RemoveFinalizer(es, f.name)
		}
	}
	if !changed {
		return nil
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

// DefaultRevocationTimeout bounds how long deletion waits for a backend that cannot
// revoke (down, store not Ready): after it the finalizer goes and the leases are
// left to expire. A namespace deletion must complete; the leases' own TTLs bound
// what is left.
const DefaultRevocationTimeout = 10 * time.Minute

// reconcileDelete removes a Merge ExternalSecret's keys from its target
// (removeMergedKeys), revokes the leases that have not expired, then releases the
// finalizer. While revocation is possible but fails it keeps the finalizer and
// retries with backoff (Warning RevocationPending). It gives up (Warning
// LeaseLeftToExpire, naming the leases) when nothing can revoke any more: the store
// is deleted or refuses this namespace, the credentials are gone (the namespace's
// ServiceAccount was deleted with it), or RevocationTimeout has passed since the
// deletion began.
func (r *Reconciler) reconcileDelete(ctx context.Context, es *v1alpha1.ExternalSecret) (reconcile.Result, error) {
	if controllerutil.ContainsFinalizer(es, v1alpha1.FinalizerMergedKeys) {
		// First, so that credentials revoked below are no longer in the Secret.
		if err := r.removeMergedKeys(ctx, es); err != nil {
			return reconcile.Result{}, err
		}
	}
	if !controllerutil.ContainsFinalizer(es, v1alpha1.FinalizerLeases) {
		r.mem.forget(es.UID)
		r.unwritten.forget(es.UID)
		return reconcile.Result{}, nil
	}
	live := unexpired(r.leasesOf(es), r.Clock.Now())
	if len(live) == 0 || !needsFinalizer(es) {
		return r.release(ctx, es)
	}
	store, _, o := r.resolveStore(ctx, es)
	if o != nil {
		if o.reason == v1alpha1.ReasonStoreNotReady || o.kind == transient {
			return r.pending(ctx, es, live, o.message)
		}
		return r.leaveToExpire(ctx, es, live, o.message) // deleted or refusing: nothing can revoke
	}
	h, err := r.Fetcher.For(ctx, store, es.Namespace)
	if err != nil {
		return r.revokeFailed(ctx, es, live, "spec.secretStoreRef", err)
	}
	var left []v1alpha1.LeaseStatus
	var firstErr error
	for _, l := range live {
		err := revokeOne(ctx, h.Client(), l)
		switch {
		case err == nil || errors.Is(provider.Classify(err), provider.ErrNotFound): // revoked, or already gone
		case firstErr == nil:
			firstErr = err
			fallthrough
		default:
			left = append(left, l)
		}
	}
	if n := len(live) - len(left); n > 0 {
		r.Recorder.Eventf(es, nil, corev1.EventTypeNormal, v1alpha1.EventLeaseRevoked, "Revoke", "%d lease(s) revoked", n)
		log.FromContext(ctx).V(1).Info("leases revoked on delete", "count", n)
	}
	if len(left) == 0 {
		return r.release(ctx, es)
	}
	if err := r.recordLeases(ctx, es, left); err != nil {
		return reconcile.Result{}, err
	}
	return r.revokeFailed(ctx, es, left, "status.leases", firstErr)
}

// removeMergedKeys implements "removing a Merge ExternalSecret removes only its
// keys" (api.md): the keys it wrote and its entry in the writers' annotation go;
// the Secret and every other key stay. An API failure keeps the finalizer and is
// retried with backoff: the API server is the only thing this needs.
func (r *Reconciler) removeMergedKeys(ctx context.Context, es *v1alpha1.ExternalSecret) error {
	if creationPolicy(es) == v1alpha1.CreationMerge {
		existing, err := r.getTarget(ctx, es)
		if err != nil {
			return fmt.Errorf("spec.target: read Secret %q: %w", targetName(es), err)
		}
		// A Secret Merge may not write (a token, the operator's namespace, another
		// ExternalSecret's) is not written on deletion either, whatever its
		// writers' annotation claims: that annotation is editable by the tenant.
		if existing != nil && r.mergeRefusal(existing, es, nil) == "" {
			changed, o := r.removeOurKeys(ctx, es, existing)
			if o != nil {
				return safeError(o.message)
			}
			if changed {
				r.Recorder.Eventf(es, nil, corev1.EventTypeNormal, v1alpha1.EventUpdated, "Delete", "keys of this ExternalSecret removed from Secret %s", targetName(es))
			}
		}
	}
	orig := es.DeepCopy()
	controllerutil.RemoveFinalizer(es, v1alpha1.FinalizerMergedKeys)
	return client.IgnoreNotFound(r.patchFinalizers(ctx, orig, es))
}

// revokeOne revokes a lease, or a certificate by its serial number.
func revokeOne(ctx context.Context, c provider.Client, l v1alpha1.LeaseStatus) error {
	if l.Kind == v1alpha1.LeaseKindCertificate {
		if cr, ok := c.(provider.CertRevoker); ok {
			return cr.RevokeCertificate(ctx, l.Path, l.ID)
		}
	} else if leaser, ok := c.(provider.Leaser); ok {
		return leaser.Revoke(ctx, l.ID)
	}
	return fmt.Errorf("%w: the provider cannot revoke %s", provider.ErrCredentials, l.ID)
}

// revokeFailed: gone credentials cannot come back; anything else may recover.
func (r *Reconciler) revokeFailed(ctx context.Context, es *v1alpha1.ExternalSecret, live []v1alpha1.LeaseStatus, path string, err error) (reconcile.Result, error) {
	msg := path + ": " + provider.SafeMessage(err)
	if errors.Is(provider.Classify(err), provider.ErrCredentials) {
		return r.leaveToExpire(ctx, es, live, msg)
	}
	return r.pending(ctx, es, live, msg)
}

// pending keeps the finalizer and retries with backoff, until the timeout.
func (r *Reconciler) pending(ctx context.Context, es *v1alpha1.ExternalSecret, live []v1alpha1.LeaseStatus, why string) (reconcile.Result, error) {
	timeout := r.RevocationTimeout
	if timeout <= 0 {
		timeout = DefaultRevocationTimeout
	}
	if waited := r.Clock.Now().Sub(es.DeletionTimestamp.Time); waited >= timeout {
		return r.leaveToExpire(ctx, es, live, fmt.Sprintf("%s; gave up after %s", why, timeout))
	}
	mem, _ := r.mem.get(es.UID)
	if mem.pending != why { // one event per distinct cause, not one per retry
		r.Recorder.Eventf(es, nil, corev1.EventTypeWarning, v1alpha1.EventRevocationPending, "Revoke",
			"%d lease(s) not revoked yet, retrying until %s: %s", len(live), es.DeletionTimestamp.Add(timeout).UTC().Format(time.RFC3339), why)
		mem.pending = why
		r.mem.put(es.UID, mem)
	}
	return reconcile.Result{}, safeError("revocation pending: " + why) // jittered exponential backoff
}

// leaveToExpire releases the finalizer without revoking, and says so.
func (r *Reconciler) leaveToExpire(ctx context.Context, es *v1alpha1.ExternalSecret, live []v1alpha1.LeaseStatus, why string) (reconcile.Result, error) {
	ids := make([]string, 0, len(live))
	for _, l := range live {
		ids = append(ids, fmt.Sprintf("%s (expires %s)", l.ID, l.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	r.Recorder.Eventf(es, nil, corev1.EventTypeWarning, v1alpha1.EventLeaseLeftToExpire, "Revoke",
		"lease(s) left to expire: %s: %s", strings.Join(ids, ", "), why)
	log.FromContext(ctx).Info("leases left to expire on delete", "count", len(live), "why", why)
	return r.release(ctx, es)
}

func (r *Reconciler) release(ctx context.Context, es *v1alpha1.ExternalSecret) (reconcile.Result, error) {
	orig := es.DeepCopy()
	controllerutil.RemoveFinalizer(es, v1alpha1.FinalizerLeases)
	if err := client.IgnoreNotFound(r.patchFinalizers(ctx, orig, es)); err != nil {
		return reconcile.Result{}, err
	}
	r.mem.forget(es.UID)
	r.unwritten.forget(es.UID) // revoked with the others (leasesOf holds them)
	return reconcile.Result{}, nil
}

// recordLeases writes the leases still to revoke, so a retry (or another replica)
// does not revoke the others again.
func (r *Reconciler) recordLeases(ctx context.Context, es *v1alpha1.ExternalSecret, live []v1alpha1.LeaseStatus) error {
	mem, _ := r.mem.get(es.UID)
	mem.leases = live
	r.mem.put(es.UID, mem)
	if equality.Semantic.DeepEqual(es.Status.Leases, live) {
		return nil
	}
	orig := es.DeepCopy()
	es.Status.Leases = live
	return client.IgnoreNotFound(r.Client.Status().Patch(ctx, es, client.MergeFrom(orig)))
}

func unexpired(ls []v1alpha1.LeaseStatus, now time.Time) []v1alpha1.LeaseStatus {
	var out []v1alpha1.LeaseStatus
	for _, l := range ls {
		if now.Before(l.ExpiresAt.Time) {
			out = append(out, l)
		}
	}
	return out
}

type safeError string

func (e safeError) Error() string { return string(e) }
