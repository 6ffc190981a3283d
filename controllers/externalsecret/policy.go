package externalsecret

// syncFacts is everything the refresh decision depends on, gathered once per
// reconcile, so that the decision itself is a pure, table-tested function.
type syncFacts struct {
	known       bool // this process has seen the object before (memory)
	specChanged bool // generation differs from what was last synced / observed
	forced      bool // a force-sync value not handled yet
	drifted     bool // the target no longer holds what we wrote
	ready       bool // the Ready condition is True
	slotDue     bool // the scheduled refresh slot has come
	renewalDue  bool // a recorded lease reached its renewal time
	unwritten   bool // credentials were issued but the Secret does not hold them yet
}

type action uint8

const (
	skip        action = iota // nothing is due
	waitForSlot               // in sync at start-up: schedule the slot, read nothing now
	refreshNow                // read the backend and write the target if it differs
)

func (a action) String() string {
	return [...]string{"skip", "wait-for-slot", "refresh"}[a]
}

// decision is what a reconcile does, and why (for the V(1) decision log).
type decision struct {
	action      action
	bypassCache bool // force-sync: read the backend, not a value read ahead
	scheduled   bool // only the refresh slot came: each key may be as old as its own slot allows
	why         string
}

// decide is the one refresh policy. Order matters only for the reason logged:
// any trigger refreshes. A first look after start-up at an object that is in sync
// waits for its slot (no restart herd); anything wrong is repaired at once.
func decide(f syncFacts) decision {
	switch {
	case f.forced:
		return decision{action: refreshNow, bypassCache: true, why: "force-sync annotation has a new value"}
	case f.specChanged:
		return decision{action: refreshNow, why: "spec changed"}
	case f.drifted:
		return decision{action: refreshNow, why: "target Secret edited or deleted"}
	case !f.ready:
		return decision{action: refreshNow, why: "not Ready"}
	case f.renewalDue:
		return decision{action: refreshNow, why: "lease renewal due"}
	case f.unwritten:
		return decision{action: refreshNow, why: "issued credentials not written yet"}
	case !f.known:
		return decision{action: waitForSlot, why: "in sync at start-up"}
	case f.slotDue:
		return decision{action: refreshNow, scheduled: true, why: "refresh slot"}
	}
	return decision{action: skip, why: "not due"}
}
