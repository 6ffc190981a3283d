package externalsecret

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
	"github.com/secretsync/secretsync/internal/provider"
)

// memory is what the controller remembers about an ExternalSecret between
// reconciles. Losing it (restart) costs nothing: the status and the target's hash
// say whether a fetch is needed, and refresh slots are computed from the clock.
type memory struct {
	next       time.Time // next scheduled refresh
	generation int64
	// forceSync is the force-sync value last handled, for the moment between our
	// status patch and the cache showing it (status.observedForceSync is the record).
	forceSync string
	// forceRetry is a force-sync value whose refresh failed: observedForceSync
	// records it (kubectl secretsync sync reports the failure instead of waiting),
	// and the retries still read the backend, not a value read before the force.
	forceRetry string
	dynamic    map[string]map[string][]byte // dynamic source data by path (never persisted)
	// leases as last written to status: the cached object may not show them yet,
	// and issuing again because of a stale read would leak a lease.
	leases []v1alpha1.LeaseStatus
	// pending is the last RevocationPending message evented (deletion only).
	pending string
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

// leasesOf is THE lease source, for sync and deletion alike: what we last wrote to
// status (memory), else what the cached object shows.
func (r *Reconciler) leasesOf(es *v1alpha1.ExternalSecret) []v1alpha1.LeaseStatus {
	if mem, ok := r.mem.get(es.UID); ok && mem.leases != nil {
		return mem.leases
	}
	return es.Status.Leases
}

// scope is one reconcile's view of an ExternalSecret: what it resolved and read
// once, used by every step below it.
type scope struct {
	es       *v1alpha1.ExternalSecret
	store    v1alpha1.GenericStore
	admitted keyFilter      // ClusterSecretStore allowedKeys for found keys (nil: all)
	existing *corev1.Secret // the target as read at the start (nil: absent)
	leases   []v1alpha1.LeaseStatus
	h        *fetch.Handle
	maxAge   time.Duration // how old a cached value may be
	// keyMaxAge: at a scheduled refresh, how old each named key's value may be
	// (slotMaxAges); a key not in it takes maxAge.
	keyMaxAge map[string]time.Duration
}

// ageOf is how old a cached value of the named key may be in this refresh.
func (sc *scope) ageOf(key string) time.Duration {
	if a, ok := sc.keyMaxAge[key]; ok && sc.maxAge > 0 {
		return a
	}
	return sc.maxAge
}

// sync decides whether a fetch is due, fetches, renders and writes the target.
func (r *Reconciler) sync(ctx context.Context, es *v1alpha1.ExternalSecret) outcome {
	store, filter, o := r.resolveStore(ctx, es)
	if o != nil {
		return *o
	}
	existing, err := r.getTarget(ctx, es)
	if err != nil {
		return kubeFailure("spec.target: read Secret "+strconv.Quote(targetName(es)), err)
	}
	now := r.Clock.Now()
	mem, known := r.mem.get(es.UID)
	interval := refreshInterval(es)
	force := es.Annotations[v1alpha1.AnnotationForceSync]
	may := policyAllows(es.Spec.RefreshPolicy, existing != nil, isReady(es))
	if !may.sync {
		// CreatedOnce and the target exists: nothing is read or written, and nothing
		// wakes us but a watch (no slot; a lease of a frozen target is not renewed).
		log.FromContext(ctx).V(1).Info("sync skipped", "why", "refreshPolicy CreatedOnce and the target exists")
		r.mem.put(es.UID, memory{generation: es.Generation, forceSync: force, leases: []v1alpha1.LeaseStatus{}})
		return keep()
	}
	slots := interval // refresh slots; the cache window stays the interval's
	if !may.periodic {
		slots = 0
	}
	sc := &scope{es: es, store: store, admitted: filter, existing: existing, leases: r.leasesOf(es), maxAge: readAge(es, now, interval)}
	d := decide(r.facts(ctx, sc, mem, known, now))
	log.FromContext(ctx).V(1).Info("sync decision", "action", d.action.String(), "why", d.why)
	switch d.action {
	case waitForSlot:
		// First look since start-up and nothing is wrong: wait for this object's slot
		// instead of hitting the backend now (no herd on restart).
		// One reading several keys waits for the last of its keys' slots: by then the
		// read-ahead has read every key for its own slot since start-up, so the refresh
		// reads nothing (at an earlier slot it would read the keys whose latest slot
		// was before the restart: a herd). A change reaches the Secret up to one
		// interval later than usual, once.
		ks := keySlots(es, now, slots, afterStart)
		r.mem.put(es.UID, memory{next: afterStartup(latest(ks), now, interval), generation: es.Generation, forceSync: mem.forceSync})
		r.expect(ctx, es, store, ks, interval)
		return keep()
	case skip:
		return keep()
	}
	how := afterSync
	switch {
	case d.bypassCache:
		sc.maxAge = 0
	case d.scheduled:
		how, sc.keyMaxAge = afterSlot, slotMaxAges(es, now, slots)
	}
	out := r.refresh(ctx, sc)
	ks := keySlots(es, now, slots, how)
	mem.generation = es.Generation
	mem.next = earliest(ks)
	// A forced refresh that synced or failed is handled (a write conflict is retried
	// at once, still forced, and records nothing).
	if d.bypassCache && (out.kind == synced || out.failed()) {
		out.forceSync, mem.forceSync, mem.forceRetry = force, force, ""
		if out.failed() {
			mem.forceRetry = force
		}
	}
	if out.kind == synced {
		r.expect(ctx, es, store, ks, interval)
	}
	switch {
	case out.kind == synced:
		r.unwritten.forget(es.UID)
	case len(out.done.issued) > 0:
		r.unwritten.put(es.UID, sc.h, out.done.issued)
	}
	if out.kind == synced || out.done.leases != nil { // failed after issuing: unwritten
		if out.done.dynamicData != nil {
			mem.dynamic = out.done.dynamicData
		}
		mem.leases = out.done.leases
	}
	r.mem.put(es.UID, mem)
	return out
}

// readAge is how old a cached value a refresh of es accepts (force-sync aside): the
// cache window; for the first sync of a new ExternalSecret, any value read since one
// cache window before its creation, i.e. as fresh as a read at the moment it was
// created. In a cold burst of thousands the work queue reaches an object seconds to
// minutes after its creation; the readers of one key then share one read instead of
// each reading again once the first read is a window old. Capped at MaxCacheWindow,
// so an object that failed its first sync for long still reads a recent value.
func readAge(es *v1alpha1.ExternalSecret, now time.Time, interval time.Duration) time.Duration {
	w := cacheWindow(interval)
	if es.Status.ObservedGeneration != 0 || es.CreationTimestamp.IsZero() {
		return w
	}
	// creationTimestamp has whole seconds: up to 1 s earlier than the creation.
	return max(w, min(now.Sub(es.CreationTimestamp.Time)+w, model.MaxCacheWindow))
}

// facts gathers what the refresh decision depends on.
func (r *Reconciler) facts(ctx context.Context, sc *scope, mem memory, known bool, now time.Time) syncFacts {
	es := sc.es
	force := es.Annotations[v1alpha1.AnnotationForceSync]
	return syncFacts{
		known:       known,
		specChanged: (known && mem.generation != es.Generation) || es.Status.ObservedGeneration != es.Generation,
		forced:      force != "" && (mem.forceRetry == force || (force != es.Status.ObservedForceSync && (!known || mem.forceSync != force))),
		drifted:     r.drifted(ctx, es, sc.existing),
		ready:       isReady(es),
		slotDue:     known && !mem.next.IsZero() && !now.Before(mem.next),
		renewalDue:  leaseRenewalDue(es, sc.leases, now),
		unwritten:   hasOlderLeases(es, sc.leases),
	}
}

// expect tells the fetch layer which keys es will read at its next refreshes: each
// named key at its own next slot (slots), so that the fetch layer reads it just
// ahead of that slot, once for every ExternalSecret reading it, in full batches and
// at an even pace, and the refresh finds it in its cache. It makes no backend call.
func (r *Reconciler) expect(ctx context.Context, es *v1alpha1.ExternalSecret, store v1alpha1.GenericStore, slots []keySlot, interval time.Duration) {
	if earliest(slots).IsZero() {
		return
	}
	h, err := r.Fetcher.For(ctx, store, es.Namespace)
	if err != nil {
		return // the refresh itself will report it
	}
	maxAge := cacheWindow(interval)
	at := func(key, version string) {
		for _, s := range slots {
			if s.key == key {
				h.Expect(provider.Ref{Key: key, Version: version}, s.next, maxAge, interval)
				return
			}
		}
	}
	for _, d := range es.Spec.Data {
		if d.RemoteRef != nil {
			at(d.RemoteRef.Key, d.RemoteRef.Version)
		}
	}
	for _, d := range es.Spec.DataFrom {
		if d.Extract != nil {
			at(d.Extract.Key, d.Extract.Version)
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
func (r *Reconciler) refresh(ctx context.Context, sc *scope) outcome {
	es := sc.es
	h, err := r.Fetcher.For(ctx, sc.store, es.Namespace)
	if err != nil {
		return providerFailure("spec.secretStoreRef", err)
	}
	sc.h = h
	f, o := r.fetchAll(ctx, sc)
	if o != nil && o.reason == v1alpha1.ReasonAuthFailed {
		// Rotated credentials are picked up at the retry, not after the recheck period.
		r.Fetcher.Recheck(sc.store, es.Namespace)
	}
	if o != nil {
		if len(f.notFound) > 0 && es.Status.SyncedAt != nil {
			return unwritten(r.remoteGone(ctx, es, sc.existing, *o), f, sc.leases)
		}
		return unwritten(*o, f, sc.leases)
	}
	want, o := render(es, f.data)
	if o != nil {
		return unwritten(*o, f, sc.leases)
	}
	changed, existing, o := r.write(ctx, es, sc.existing, want)
	if o != nil {
		return unwritten(*o, f, sc.leases)
	}
	sc.existing = existing // create-first: a target found on AlreadyExists counts as existing
	sum, err := r.Hasher.Sum(ctx, want.data, nil)
	if err != nil {
		return unwritten(failTransient(v1alpha1.ReasonKubernetesError, "status.dataHash: %v", err), f, sc.leases)
	}
	out := outcome{kind: synced, done: syncResult{changed: changed, sources: f.sources, dataHash: sum,
		target: targetName(es), leases: f.leases, dynamicData: f.dynamicData}}
	// Rollout (rollout.go): only a data change of a Secret that existed restarts consumers.
	out.done.dataChanged = changed && sc.existing != nil && dataDiffers(sc.existing, r.desired(es, sc.existing.DeepCopy(), want))
	if out.done.dataChanged {
		r.rolloutHook(ctx, es)
	}
	if creationPolicy(es) == v1alpha1.CreationNone {
		out.done.dataHash = ""
	}
	// Events are for changes and problems. The first write of a new target is in the
	// Ready condition (lastTransitionTime) instead: creating 10,000 ExternalSecrets at
	// once would otherwise also create 10,000 Events, a third of the API writes.
	if changed && sc.existing != nil {
		out.event = v1alpha1.EventUpdated
	}
	log.FromContext(ctx).V(1).Info("refreshed", "written", changed, "sources", len(f.sources), "leases", len(f.leases))
	// Superseded leases are revoked only after the new credentials are in the Secret.
	r.revoke(ctx, es, h, f.superseded)
	return out
}

// unwritten carries the leases of a refresh that failed after it issued or renewed
// credentials (the Secret write failed, the API server was down, another source
// failed) into the outcome, with their data, so that sync remembers them: the retry
// then writes these credentials instead of issuing new ones each time (a lease
// leaked per retry). The list is the leases known before (prior) with the renewed
// ones updated, and the issued ones last: an older lease of a path is superseded
// (revoked after the retry's write), and a path whose source failed keeps its lease.
// They stay in memory only: the target does not hold them, so status must not claim
// it does. A restart before the retry leaves them to expire.
func unwritten(o outcome, f *fetched, prior []v1alpha1.LeaseStatus) outcome {
	if len(f.leases) == 0 {
		return o
	}
	o.done.leases = mergeLeases(prior, f.leases)
	o.done.dynamicData = f.dynamicData
	o.done.issued = f.issued
	return o
}

// mergeLeases is prior without the leases now, then now: a renewed lease (same id)
// appears once, with its new expiry; a re-issued path keeps its old lease before the
// new one (currentLease takes the last).
func mergeLeases(prior, now []v1alpha1.LeaseStatus) []v1alpha1.LeaseStatus {
	ids := make(map[string]bool, len(now))
	for _, l := range now {
		ids[l.ID] = true
	}
	out := make([]v1alpha1.LeaseStatus, 0, len(prior)+len(now))
	for _, l := range prior {
		if !ids[l.ID] {
			out = append(out, l)
		}
	}
	return append(out, now...)
}

// remoteGone applies deletionPolicy once the backend says a remote secret no longer
// exists (only for a target we synced before; a never-synced key is KeyNotFound).
func (r *Reconciler) remoteGone(ctx context.Context, es *v1alpha1.ExternalSecret, existing *corev1.Secret, o outcome) outcome {
	o.kind, o.reason = transient, v1alpha1.ReasonRemoteNotFound
	switch deletionPolicy(es) {
	case v1alpha1.DeletionDelete:
		if existing == nil && !readsTargetFirst(es) {
			// Not in the cache: getTarget did not read further (create-first).
			var err error
			if existing, err = r.readTarget(ctx, es); err != nil {
				return kubeFailure("spec.target: read Secret "+strconv.Quote(targetName(es)), err)
			}
		}
		if existing != nil && creationPolicy(es) == v1alpha1.CreationOwner && metav1.IsControlledBy(existing, es) {
			if err := r.Client.Delete(ctx, existing); err != nil {
				return kubeFailure("spec.target: delete Secret "+strconv.Quote(targetName(es)), err)
			}
			o.event, o.message = v1alpha1.EventDeleted, fmt.Sprintf("%s; target Secret %q deleted (deletionPolicy Delete)", o.message, targetName(es))
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
		o.clearHash = true
	}
	return o
}
