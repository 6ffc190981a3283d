package externalsecret

import (
	"hash/fnv"
	"time"

	"k8s.io/utils/clock"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/fetch"
)

// Clock is injected so scheduling is testable without sleeping (k8s.io/utils/clock,
// the clock the fetch layer takes too; tests use k8s.io/utils/clock/testing).
type Clock = clock.PassiveClock

// RealClock is the wall clock.
type RealClock = clock.RealClock

// allowed is what an ExternalSecret's refreshPolicy lets a reconcile do.
type allowed struct {
	sync     bool // fetch and write now if due (spec change, force-sync, drift, not Ready)
	periodic bool // also every refreshInterval, with the keys read ahead of each slot
}

// policyAllows decides what refreshPolicy p allows, given whether the target Secret
// exists and the ExternalSecret is Ready (its data is in the target).
//   - Periodic (default): everything.
//   - OnChange: no refresh on the interval; spec edits, force-sync and drift repair.
//   - CreatedOnce: only while the target does not exist. A target that exists while
//     the ExternalSecret is not Ready (a first sync whose status patch failed, a
//     foreign Secret) is synced until it is Ready, then never again.
func policyAllows(p v1alpha1.RefreshPolicy, targetExists, ready bool) allowed {
	switch p {
	case v1alpha1.RefreshOnChange:
		return allowed{sync: true}
	case v1alpha1.RefreshCreatedOnce:
		return allowed{sync: !targetExists || !ready}
	}
	return allowed{sync: true, periodic: true}
}

func refreshInterval(es *v1alpha1.ExternalSecret) time.Duration {
	if es.Spec.RefreshInterval == nil {
		return time.Hour
	}
	return es.Spec.RefreshInterval.Duration
}

// model is the timing model this package shares with the fetch layer's cache and
// read-ahead (fetch.Timing; the whole model with its numbers: docs/design/refresh.md).
var model = fetch.DefaultTiming()

// cacheWindow is how old a value may be and still serve a scheduled refresh (the
// readers' maxAge): half the interval, at most five minutes. The fetch layer reads
// a key up to three quarters of it ahead of the refresh, in a batch with the keys
// due next, and ExternalSecrets reading several keys reuse values read for the
// others within it.
func cacheWindow(interval time.Duration) time.Duration { return model.CacheWindow(interval) }

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// nextSlot is the first refresh time after t. Slots are wall-clock aligned: every
// interval at an offset derived from anchor (the store and the first key read), so
// the ExternalSecrets reading one key refresh at the same moment (one read), the
// keys of a store are spread evenly over the whole interval (the fetch layer reads
// them ahead in due order, in full batches, at an even pace), and an operator
// restart moves nobody's slot: there is no herd after a restart.
//
// After a refresh the next slot is at least half an interval away, so a fresh sync is
// not repeated at once; after a restart (fresh=false) the very next slot is kept,
// since nobody knows how long ago the last refresh was.
func nextSlot(t time.Time, interval time.Duration, anchor string, fresh bool) time.Time {
	if interval <= 0 {
		return time.Time{}
	}
	base := int64(hash64(anchor) % uint64(interval))
	k := (t.UnixNano() - base) / int64(interval)
	next := time.Unix(0, (k+1)*int64(interval)+base)
	if fresh && next.Sub(t) < interval/2 {
		next = next.Add(interval)
	}
	return next
}

// afterStartup is when an ExternalSecret found in sync at start-up refreshes: at its
// kept slot, or a short grace later when that slot falls within one cache window of
// start-up. The read-ahead starts only once the operator has registered what is due,
// and it reads in due order at an even pace only a little faster than the demand: for
// the slots of the first window it runs behind, and their readers would make their
// own calls, several per second. The grace (a quarter of the cache window, at most
// 10 s) covers that lag, and a value read ahead is still within the cache window when
// its reader comes, a few seconds late, once.
func afterStartup(slot, now time.Time, interval time.Duration) time.Time {
	if slot.IsZero() || !slot.Before(now.Add(cacheWindow(interval))) {
		return slot
	}
	return slot.Add(model.StartupGrace(interval))
}

// anchor places an ExternalSecret's refresh slot: its store and the first key it
// reads, or its UID when it reads no key by name (find, dynamic, decrypt only).
func anchor(es *v1alpha1.ExternalSecret) string {
	for _, d := range es.Spec.Data {
		if d.RemoteRef != nil {
			return storeKey(es) + "\x00" + d.RemoteRef.Key
		}
	}
	for _, d := range es.Spec.DataFrom {
		if d.Extract != nil {
			return storeKey(es) + "\x00" + d.Extract.Key
		}
	}
	return storeKey(es) + "\x00uid:" + string(es.UID)
}

func storeKey(es *v1alpha1.ExternalSecret) string {
	if es.Spec.SecretStoreRef.Kind == v1alpha1.KindClusterSecretStore {
		return "css/" + es.Spec.SecretStoreRef.Name
	}
	return "ss/" + es.Namespace + "/" + es.Spec.SecretStoreRef.Name
}
