package externalsecret

import (
	"hash/fnv"
	"slices"
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
// interval at an offset derived from anchor (the store and a key read, see
// keySlots), so the ExternalSecrets reading one key refresh at the same moment (one
// read), the keys of a store are spread evenly over the whole interval (the fetch
// layer reads them ahead in due order, in full batches, at an even pace), and an
// operator restart moves nobody's slot: there is no herd after a restart.
//
// With fresh, the next slot is at least half an interval away, so a fresh sync is
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

// latestSlot is anchor's last slot at or before t (zero without slots).
func latestSlot(t time.Time, interval time.Duration, anchor string) time.Time {
	next := nextSlot(t, interval, anchor, false)
	if next.IsZero() {
		return next
	}
	return next.Add(-interval)
}

// after says what the refresh that places the next slots did.
type after uint8

const (
	// afterStart: nothing was read (in sync at start-up): every key keeps its very next slot.
	afterStart after = iota
	// afterSlot: a scheduled refresh: the key whose slot fired moves at least half an
	// interval on (the fresh rule); the others keep their very next slot.
	afterSlot
	// afterSync: any other refresh (spec edit, drift, not Ready, force-sync, lease
	// renewal) read every key now. A single-key ExternalSecret takes the fresh rule
	// as before. One reading several keys keeps every key's very next slot: its
	// scheduled refreshes accept each key as read ahead for that key's latest slot
	// (slotMaxAges), so every slot must be read ahead, and that read is shared.
	afterSync
)

// keySlot is the next refresh slot of one key an ExternalSecret reads by name.
type keySlot struct {
	key  string // "" for the UID anchor of an ExternalSecret naming no key
	next time.Time
}

// keySlots are es's next refresh slots after now: one per key it reads by name, at
// that key's own slot in its store, shared by every ExternalSecret reading the key.
// Each key is read ahead once per interval, just before its slot, and an
// ExternalSecret reading k keys refreshes at each of their slots: at most k reads
// per interval, none of them its own. An ExternalSecret naming no key (find,
// dynamic, decrypt only) has one slot placed by its UID.
func keySlots(es *v1alpha1.ExternalSecret, now time.Time, interval time.Duration, how after) []keySlot {
	keys := namedKeys(es)
	if len(keys) == 0 {
		return []keySlot{{next: nextSlot(now, interval, storeKey(es)+"\x00uid:"+string(es.UID), how != afterStart)}}
	}
	var fired time.Time // the slot this refresh served: the latest of any key
	if how == afterSlot {
		for _, k := range keys {
			fired = maxTime(fired, latestSlot(now, interval, keyAnchor(es, k)))
		}
	}
	out := make([]keySlot, len(keys))
	for i, k := range keys {
		a := keyAnchor(es, k)
		fresh := (how == afterSync && len(keys) == 1) || (how == afterSlot && latestSlot(now, interval, a).Equal(fired))
		out[i] = keySlot{key: k, next: nextSlot(now, interval, a, fresh)}
	}
	return out
}

// latest is the last of slots: the first refresh after start-up of an ExternalSecret
// reading several keys (see sync's waitForSlot); zero when there is none.
func latest(slots []keySlot) time.Time {
	var last time.Time
	for _, s := range slots {
		last = maxTime(last, s.next)
	}
	return last
}

// earliest is the first of slots (es's next refresh); zero when there is none.
func earliest(slots []keySlot) time.Time {
	var next time.Time
	for _, s := range slots {
		if !s.next.IsZero() && (next.IsZero() || s.next.Before(next)) {
			next = s.next
		}
	}
	return next
}

// slotMaxAges is how old a cached value of each named key may be at a scheduled
// refresh at now: the time since that key's latest slot plus the cache window. The
// key whose slot is now gets about the window; another key accepts the value read
// ahead for its own latest slot, so the refresh reads nothing and the target shows
// every key as read at most one window before that key's latest slot.
func slotMaxAges(es *v1alpha1.ExternalSecret, now time.Time, interval time.Duration) map[string]time.Duration {
	if interval <= 0 {
		return nil
	}
	w := cacheWindow(interval)
	out := map[string]time.Duration{}
	for _, k := range namedKeys(es) {
		out[k] = now.Sub(latestSlot(now, interval, keyAnchor(es, k))) + w
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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

// namedKeys are the remote keys es reads by name (data remoteRefs, dataFrom
// extracts), each once, in spec order.
func namedKeys(es *v1alpha1.ExternalSecret) []string {
	var out []string
	add := func(k string) {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, d := range es.Spec.Data {
		if d.RemoteRef != nil {
			add(d.RemoteRef.Key)
		}
	}
	for _, d := range es.Spec.DataFrom {
		if d.Extract != nil {
			add(d.Extract.Key)
		}
	}
	return out
}

// keyAnchor places key's slot: its store and the key.
func keyAnchor(es *v1alpha1.ExternalSecret, key string) string {
	return storeKey(es) + "\x00" + key
}

func storeKey(es *v1alpha1.ExternalSecret) string {
	if es.Spec.SecretStoreRef.Kind == v1alpha1.KindClusterSecretStore {
		return "css/" + es.Spec.SecretStoreRef.Name
	}
	return "ss/" + es.Namespace + "/" + es.Spec.SecretStoreRef.Name
}
