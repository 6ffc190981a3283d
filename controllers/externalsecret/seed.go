package externalsecret

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// seeder tells the fetch layer, right after start-up, what every ExternalSecret found
// in sync will read at its next slot: the same expectation its first reconcile
// registers (waitForSlot), but in one pass over the cache instead of as the work queue
// gets to each object. With thousands of objects the queue takes seconds, and the
// read-ahead, which paces itself on the demand it knows, would start late and slow
// for the first slots after a restart; their readers, a start-up grace later, then
// found their keys not read yet and made their own calls (the restart peak of
// docs/benchmarks.md). It needs leader election like the controller: a standby
// replica must not read ahead.
type seeder struct {
	r     *Reconciler
	cache cache.Cache
}

func (s seeder) Start(ctx context.Context) error {
	if s.cache.WaitForCacheSync(ctx) {
		s.r.seed(ctx)
	}
	// The seed's List waited for the ExternalSecret informer; the controller's other
	// informers (Secrets) have started by now: wait for them too before saying synced.
	if s.cache.WaitForCacheSync(ctx) && s.r.StartupSynced != nil {
		s.r.StartupSynced()
	}
	return nil
}

// seed registers the next slot's keys of every ExternalSecret in sync that no
// reconcile has handled yet. It reads only the cache and makes no backend call;
// store resolution and admission are the reconcile's own (resolveStore), so a key
// the store does not allow is never read ahead.
func (r *Reconciler) seed(ctx context.Context) {
	// The cache's own objects, not deep copies: a copy of every ExternalSecret at once
	// added to the operator's memory peak after a restart (docs/benchmarks.md, third
	// round). The pass and everything it calls only read them: a write would change
	// the cache.
	var list v1alpha1.ExternalSecretList
	if err := r.Client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		log.FromContext(ctx).Error(err, "list ExternalSecrets to seed the read-ahead")
		return
	}
	start := r.Clock.Now()
	n := 0
	for i := range list.Items {
		es := &list.Items[i]
		if _, known := r.mem.get(es.UID); known || !seedable(es) {
			continue
		}
		store, _, o := r.resolveStore(ctx, es)
		if o != nil {
			continue
		}
		interval := refreshInterval(es)
		r.expect(ctx, es, store, keySlots(es, start, interval, afterStart), interval)
		n++
	}
	log.FromContext(ctx).V(1).Info("read-ahead seeded", "externalSecrets", n, "of", len(list.Items), "took", r.Clock.Since(start).String())
}

// seedable: the ExternalSecret's first reconcile would wait for its slot (decide's
// waitForSlot), judged from the object alone: Ready for its generation, refreshed
// periodically, no force-sync pending, not being deleted. A drifted target is found
// by the reconcile; its key read ahead once more is harmless.
func seedable(es *v1alpha1.ExternalSecret) bool {
	force := es.Annotations[v1alpha1.AnnotationForceSync]
	periodic := es.Spec.RefreshPolicy == "" || es.Spec.RefreshPolicy == v1alpha1.RefreshPeriodic
	return es.DeletionTimestamp == nil && periodic && isReady(es) &&
		es.Status.ObservedGeneration == es.Generation &&
		(force == "" || force == es.Status.ObservedForceSync) &&
		refreshInterval(es) > 0
}
