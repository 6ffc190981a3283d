package externalsecret

import (
	"hash/fnv"
	"time"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// Clock is injected so scheduling is testable without sleeping.
type Clock interface{ Now() time.Time }

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

const maxSpread = 30 * time.Second

func refreshInterval(es *v1alpha1.ExternalSecret) time.Duration {
	if es.Spec.RefreshInterval == nil {
		return time.Hour
	}
	return es.Spec.RefreshInterval.Duration
}

// spread is the window in which the ExternalSecrets of one store refresh in a round.
func spread(interval time.Duration) time.Duration {
	return min(interval/10, maxSpread)
}

// cacheWindow is how old a value read by another ExternalSecret of the same round
// may be and still be reused instead of calling the backend again. It stays under
// half the interval, so a refresh never reuses the previous round's value (with
// short intervals spread+5s would span several rounds and a rotation would wait).
func cacheWindow(interval time.Duration) time.Duration {
	return min(spread(interval)+5*time.Second, interval/2)
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// nextSlot is the first refresh time after t. Refreshes are wall-clock aligned per
// store: a round starts at a phase derived from the store's name and each
// ExternalSecret refreshes at a fixed offset (from its UID) inside the round's
// spread. So one store's ExternalSecrets refresh together (one batched read per
// round) while stores are spread over the interval, and an operator restart does
// not move anybody's slot: there is no herd after a restart.
//
// After a refresh the next slot is at least half an interval away, so a fresh sync is
// not repeated at once; after a restart (fresh=false) the very next slot is kept,
// since nobody knows how long ago the last refresh was.
func nextSlot(t time.Time, interval time.Duration, storeKey, uid string, fresh bool) time.Time {
	if interval <= 0 {
		return time.Time{}
	}
	phase := time.Duration(hash64(storeKey) % uint64(interval))
	offset := time.Duration(0)
	if sp := spread(interval); sp > 0 {
		offset = time.Duration(hash64(uid) % uint64(sp))
	}
	base := phase + offset
	n := t.UnixNano() - int64(base)
	k := n / int64(interval)
	next := time.Unix(0, (k+1)*int64(interval)+int64(base))
	if fresh && next.Sub(t) < interval/2 {
		next = next.Add(interval)
	}
	return next
}

func storeKey(es *v1alpha1.ExternalSecret) string {
	if es.Spec.SecretStoreRef.Kind == v1alpha1.KindClusterSecretStore {
		return "css/" + es.Spec.SecretStoreRef.Name
	}
	return "ss/" + es.Namespace + "/" + es.Spec.SecretStoreRef.Name
}
