package fetch

import "time"

// Timing is the one timing model shared by the refresh slots of the ExternalSecret
// controller (controllers/externalsecret refresh.go) and this package's value cache,
// read-ahead and pacing. docs/design/refresh.md follows one key through it with the
// numbers. The defaults are tuned together (make bench); change one and read the
// invariants below.
//
// Invariants:
//   - A value read ahead is still fresh when its reader comes: the read-ahead horizon
//     (HorizonShare of the reader's maxAge) is below the maxAge itself, and the quarter
//     left over covers a reader that comes late (the start-up grace included:
//     StartupShare of the cache window < 1 - HorizonShare).
//   - A value is kept in memory longer than any reader reuses it: MaxCacheAge >
//     MaxCacheWindow.
type Timing struct {
	// CacheShare and MaxCacheWindow: a scheduled refresh reuses a value read up to
	// min(CacheShare×interval, MaxCacheWindow) before it (its maxAge, the cache window).
	CacheShare     float64
	MaxCacheWindow time.Duration
	// MaxCacheAge bounds how long a value stays in memory at all.
	MaxCacheAge time.Duration
	// HorizonShare: a ref is read ahead at most HorizonShare×maxAge before its due time.
	HorizonShare float64

	// StartupShare and MaxStartupGrace: an ExternalSecret found in sync at start-up
	// whose slot falls within one cache window of start-up refreshes
	// min(StartupShare×window, MaxStartupGrace) after its slot, so the read-ahead,
	// which starts only once readers registered, can catch up.
	StartupShare    float64
	MaxStartupGrace time.Duration

	// BatchWindow is how long a reader's call waits for others to share its batch.
	BatchWindow time.Duration
	// MissedWindow is how long an expected reader whose ref the read-ahead has not
	// read yet (right after a restart) waits for the others due now.
	MissedWindow time.Duration

	// Smoothing: the read-ahead calls at most this many times as often as the demand
	// needs in full batches: headroom to catch up after a cluster of due refs, little
	// enough that a second never sees much more than the mean rate.
	Smoothing float64
	// ReaderDebt: readers' calls spend the read-ahead's budget, at most this much
	// time's worth, so both together stay near the smoothed rate.
	ReaderDebt time.Duration
	// AheadMargin and MarginShare: a read-ahead call goes out with fewer refs than a
	// full batch only when its earliest ref is due within min(AheadMargin,
	// MarginShare×maxAge). AheadMargin also marks a reader as "missed" (MissedWindow).
	AheadMargin time.Duration
	MarginShare float64
	// FailPause: after a call failed as a whole (throttling, an outage) nothing is
	// read ahead for this long, so the scheduler never adds load to a backend in trouble.
	FailPause time.Duration

	// PlanEvery: the read-ahead is planned (a pass over the expected refs) at most
	// this often, however often readers register.
	PlanEvery time.Duration
	// IdleLook bounds the scheduler's sleep while refs are expected, FillLook while
	// it waits for a batch to fill, MinLook is its shortest sleep.
	IdleLook time.Duration
	FillLook time.Duration
	MinLook  time.Duration
}

// DefaultTiming is the tuned model (docs/design/refresh.md).
func DefaultTiming() Timing {
	return Timing{
		CacheShare:      0.5,
		MaxCacheWindow:  5 * time.Minute,
		MaxCacheAge:     10 * time.Minute,
		HorizonShare:    0.75,
		StartupShare:    0.25,
		MaxStartupGrace: 10 * time.Second,
		BatchWindow:     5 * time.Millisecond,
		MissedWindow:    time.Second,
		Smoothing:       1.15,
		ReaderDebt:      time.Second,
		AheadMargin:     time.Second,
		MarginShare:     0.125,
		FailPause:       10 * time.Second,
		PlanEvery:       50 * time.Millisecond,
		IdleLook:        time.Second,
		FillLook:        200 * time.Millisecond,
		MinLook:         10 * time.Millisecond,
	}
}

// orDefault fills the zero fields of t from DefaultTiming.
func (t Timing) orDefault() Timing {
	d := DefaultTiming()
	share := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	share(&t.CacheShare, d.CacheShare)
	share(&t.HorizonShare, d.HorizonShare)
	share(&t.StartupShare, d.StartupShare)
	share(&t.Smoothing, d.Smoothing)
	share(&t.MarginShare, d.MarginShare)
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&t.MaxCacheWindow, d.MaxCacheWindow}, {&t.MaxCacheAge, d.MaxCacheAge},
		{&t.MaxStartupGrace, d.MaxStartupGrace}, {&t.BatchWindow, d.BatchWindow},
		{&t.MissedWindow, d.MissedWindow}, {&t.ReaderDebt, d.ReaderDebt},
		{&t.AheadMargin, d.AheadMargin}, {&t.FailPause, d.FailPause},
		{&t.PlanEvery, d.PlanEvery}, {&t.IdleLook, d.IdleLook},
		{&t.FillLook, d.FillLook}, {&t.MinLook, d.MinLook},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	return t
}

func scale(d time.Duration, share float64) time.Duration {
	return time.Duration(float64(d) * share)
}

// CacheWindow is how old a value may be and still serve a scheduled refresh of an
// ExternalSecret with this refresh interval (its readers' maxAge): a refresh shows
// the backend as it was at most that long before its slot. Shorter windows cost
// full batches where a store's keys are few for its interval (100 keys every 10 s
// fill Secrets Manager's batches of 20 only with a horizon over 2 s).
func (t Timing) CacheWindow(interval time.Duration) time.Duration {
	return min(scale(interval, t.CacheShare), t.MaxCacheWindow)
}

// Horizon is how long before its due time a ref read with maxAge may be read ahead.
func (t Timing) Horizon(maxAge time.Duration) time.Duration {
	return scale(maxAge, t.HorizonShare)
}

// StartupGrace is how much later than its slot an ExternalSecret found in sync at
// start-up refreshes when that slot falls within the first cache window.
func (t Timing) StartupGrace(interval time.Duration) time.Duration {
	return min(scale(t.CacheWindow(interval), t.StartupShare), t.MaxStartupGrace)
}

// fillMargin: a read-ahead batch goes out part-full only when its first ref is due
// this soon.
func (t Timing) fillMargin(maxAge time.Duration) time.Duration {
	return min(t.AheadMargin, scale(maxAge, t.MarginShare))
}
