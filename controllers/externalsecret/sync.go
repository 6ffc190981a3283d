package externalsecret

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

// memory is what the controller remembers about an ExternalSecret between
// reconciles. Losing it (restart) costs nothing: the status and the target's hash
// say whether a fetch is needed, and refresh slots are computed from the clock.
type memory struct {
	next       time.Time // next scheduled refresh
	generation int64
	forceSync  string
	dynamic    map[string]map[string][]byte // dynamic source data by path (never persisted)
	// leases as last written to status: the cached object may not show them yet,
	// and issuing again because of a stale read would leak a lease.
	leases []v1alpha1.LeaseStatus
}

type memoryStore struct{ m sync.Map }

func (s *memoryStore) get(uid types.UID) (memory, bool) {
	v, ok := s.m.Load(uid)
	if !ok {
		return memory{}, false
	}
	return v.(memory), true
}
func (s *memoryStore) put(uid types.UID, m memory) { s.m.Store(uid, m) }
func (s *memoryStore) forget(uid types.UID)        { s.m.Delete(uid) }

// sync decides whether a fetch is due, fetches, renders and writes the target.
func (r *Reconciler) sync(ctx context.Context, es *v1alpha1.ExternalSecret) outcome {
	store, filter, o := r.resolveStore(ctx, es)
	if o != nil {
		return *o
	}
	existing, err := r.getTarget(ctx, es)
	if err != nil {
		return fail(v1alpha1.ReasonProviderError, true, "spec.target: read Secret %q: %s", targetName(es), apiReason(err))
	}
	now := r.Clock.Now()
	mem, known := r.mem.get(es.UID)
	interval := refreshInterval(es)
	force := es.Annotations[v1alpha1.AnnotationForceSync]
	may := policyAllows(es.Spec.RefreshPolicy, existing != nil, isReady(es))
	if !may.sync {
		// CreatedOnce and the target exists: nothing is read or written, and nothing
		// wakes us but a watch (no slot; a lease of a frozen target is not renewed).
		r.mem.put(es.UID, memory{generation: es.Generation, forceSync: force, leases: []v1alpha1.LeaseStatus{}})
		return outcome{keep: true}
	}
	slots := interval // refresh slots; the cache window stays the interval's
	if !may.periodic {
		slots = 0
	}
	drift := r.drifted(ctx, es, existing)

	leases := es.Status.Leases
	if known && mem.leases != nil {
		leases = mem.leases
	}
	upToDate := es.Status.ObservedGeneration == es.Generation && isReady(es) && !drift && !leaseRenewalDue(es, leases, now)
	if !known && upToDate {
		// First look since start-up and nothing is wrong: wait for this object's slot
		// instead of hitting the backend now (no herd on restart).
		next := nextSlot(now, slots, anchor(es), false)
		r.mem.put(es.UID, memory{next: afterStartup(next, now, interval), generation: es.Generation, forceSync: force})
		r.expect(ctx, es, store, next, interval)
		return outcome{keep: true}
	}
	forced := known && force != mem.forceSync
	due := !known || mem.generation != es.Generation || forced || drift || !isReady(es) ||
		(!mem.next.IsZero() && !now.Before(mem.next)) || leaseRenewalDue(es, leases, now)
	if !due {
		return outcome{keep: true}
	}

	maxAge := cacheWindow(interval)
	if forced {
		maxAge = 0
	}
	out := r.refresh(ctx, es, store, filter, existing, maxAge, leases)
	mem.generation, mem.forceSync = es.Generation, force
	mem.next = nextSlot(now, slots, anchor(es), true)
	if out.err == nil {
		r.expect(ctx, es, store, mem.next, interval)
	}
	if out.dynamicData != nil {
		mem.dynamic = out.dynamicData
	}
	if out.err == nil {
		mem.leases = out.leases
	}
	r.mem.put(es.UID, mem)
	return out
}

// expect tells the fetch layer which keys es will read at its next refresh (at
// next), so that it reads them just ahead of time, in full batches and at an even
// pace, and the refresh finds them in its cache. It makes no backend call.
func (r *Reconciler) expect(ctx context.Context, es *v1alpha1.ExternalSecret, store v1alpha1.GenericStore, next time.Time, interval time.Duration) {
	if next.IsZero() {
		return
	}
	h, err := r.Fetcher.For(ctx, store, es.Namespace)
	if err != nil {
		return // the refresh itself will report it
	}
	maxAge := cacheWindow(interval)
	for _, d := range es.Spec.Data {
		if d.RemoteRef != nil {
			h.Expect(provider.Ref{Key: d.RemoteRef.Key, Version: d.RemoteRef.Version}, next, maxAge, interval)
		}
	}
	for _, d := range es.Spec.DataFrom {
		if d.Extract != nil {
			h.Expect(provider.Ref{Key: d.Extract.Key, Version: d.Extract.Version}, next, maxAge, interval)
		}
	}
}

func isReady(es *v1alpha1.ExternalSecret) bool {
	c := meta.FindStatusCondition(es.Status.Conditions, v1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue
}

// drifted reports whether the target no longer holds what we last wrote (edited or
// deleted by hand), by comparing its keyed hash with status.dataHash.
func (r *Reconciler) drifted(ctx context.Context, es *v1alpha1.ExternalSecret, existing *corev1.Secret) bool {
	if creationPolicy(es) == v1alpha1.CreationNone || es.Status.DataHash == "" {
		return false
	}
	if existing == nil {
		return true
	}
	sum, err := r.Hasher.Sum(ctx, existing.Data, ourKeys(existing, es))
	return err != nil || sum != es.Status.DataHash
}

// refresh fetches every source, renders and writes the target.
func (r *Reconciler) refresh(ctx context.Context, es *v1alpha1.ExternalSecret, store v1alpha1.GenericStore, filter keyFilter, existing *corev1.Secret, maxAge time.Duration, leases []v1alpha1.LeaseStatus) outcome {
	h, err := r.Fetcher.For(ctx, store, es.Namespace)
	if err != nil {
		return providerFailure("spec.secretStoreRef", err)
	}
	f, o := r.fetchAll(ctx, es, store, h, filter, maxAge, existing, leases)
	if o != nil {
		if len(f.notFound) > 0 && es.Status.SyncedAt != nil {
			return r.remoteGone(ctx, es, existing, f, *o)
		}
		return *o
	}
	want, o := render(es, f.data)
	if o != nil {
		return *o
	}
	changed, o := r.write(ctx, es, existing, want)
	if o != nil {
		return *o
	}
	sum, err := r.Hasher.Sum(ctx, want.data, nil)
	if err != nil {
		return fail(v1alpha1.ReasonProviderError, true, "status.dataHash: %v", err)
	}
	out := outcome{reason: v1alpha1.ReasonSynced, changed: changed, sources: f.sources, dataHash: sum,
		target: targetName(es), leases: f.leases, dynamicData: f.dynamicData}
	if creationPolicy(es) == v1alpha1.CreationNone {
		out.dataHash = ""
	}
	// Events are for changes and problems. The first write of a new target is in the
	// Ready condition (lastTransitionTime) instead: creating 10,000 ExternalSecrets at
	// once would otherwise also create 10,000 Events, a third of the API writes.
	if changed && existing != nil {
		out.event = v1alpha1.EventUpdated
	}
	// Superseded leases are revoked only after the new credentials are in the Secret.
	r.revoke(ctx, es, h, f.superseded)
	return out
}

// remoteGone applies deletionPolicy once the backend says a remote secret no longer
// exists (only for a target we synced before; a never-synced key is KeyNotFound).
func (r *Reconciler) remoteGone(ctx context.Context, es *v1alpha1.ExternalSecret, existing *corev1.Secret, f *fetched, o outcome) outcome {
	o.reason, o.retry = v1alpha1.ReasonRemoteNotFound, true
	switch deletionPolicy(es) {
	case v1alpha1.DeletionDelete:
		if existing != nil && creationPolicy(es) == v1alpha1.CreationOwner && metav1.IsControlledBy(existing, es) {
			if err := r.Client.Delete(ctx, existing); err != nil {
				return fail(v1alpha1.ReasonProviderError, true, "spec.target: delete Secret %q: %s", targetName(es), apiReason(err))
			}
			o.event, o.message = v1alpha1.EventDeleted, fmt.Sprintf("%s; target Secret %q deleted (deletionPolicy Delete)", o.message, targetName(es))
			o.err = errors.New(o.message)
			o.clearHash = true
		}
	case v1alpha1.DeletionMerge:
		if existing == nil {
			break
		}
		if _, fo := r.removeOurKeys(ctx, es, existing); fo != nil {
			return *fo
		}
		o.message = fmt.Sprintf("%s; our keys removed from Secret %q (deletionPolicy Merge)", o.message, targetName(es))
		o.err = errors.New(o.message)
		o.clearHash = true
	}
	return o
}
