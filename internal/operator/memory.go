package operator

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultGCPercent is the operator's lowest GOGC, the one a large installation runs
// at. Go's default (100) lets the heap grow to twice what is live between
// collections. The operator's live heap is mostly its informer caches, so at 10,000
// ExternalSecrets a quarter of headroom took RSS from 138 to 108 MiB
// (docs/benchmarks.md).
const DefaultGCPercent = 25

// MaxGCPercent and heapBudget: a quarter of headroom costs CPU while the operator
// allocates fast (GC marking was 20-25 % of its CPU in a cold burst of new
// ExternalSecrets), and a small installation does not need it. After start-up GOGC
// follows the live heap: the heap goal, live × (1 + GOGC/100), stays within
// heapBudget, with GOGC between DefaultGCPercent and Go's default. At 10,000
// ExternalSecrets (live ≈ 50 MB) that is GOGC 25 as before; at 3,000 (≈ 25 MB), 100.
const (
	MaxGCPercent = 100
	heapBudget   = 60 << 20
)

// gcPercentFor is GOGC for a live heap of live bytes.
func gcPercentFor(live uint64) int {
	if live == 0 || live >= heapBudget {
		return DefaultGCPercent
	}
	p := int((heapBudget - live) * 100 / live)
	return min(max(p, DefaultGCPercent), MaxGCPercent)
}

// liveHeap is the live heap after the last collection (a variable for tests).
var liveHeap = func() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// followLiveHeap sets GOGC from the live heap now, and then every period until ctx
// ends. The live heap changes once per collection, so a second is fine-grained enough.
func followLiveHeap(ctx context.Context, period time.Duration) {
	cur := gcPercentFor(liveHeap())
	debug.SetGCPercent(cur)
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// Moves of less than 5 points are not worth a change of pace.
			if p := gcPercentFor(liveHeap()); p-cur >= 5 || cur-p >= 5 || (p != cur && (p == DefaultGCPercent || p == MaxGCPercent)) {
				cur = p
				debug.SetGCPercent(cur)
			}
		}
	}()
}

// StartupGCPercent is GOGC from process start until the ExternalSecret controller's
// caches have synced and its start-up pass is done (TuneMemory's settle). A start decodes every
// cached object in full, managedFields included: the cache's transform strips them
// only once an informer's initial list is complete. For about a second the live heap
// is then a third above its steady size (64 against 48 MB at 10,000 ExternalSecrets),
// and GOGC's headroom on top of that peak was the operator's highest RSS. A standby
// replica keeps it until it leads: it caches next to nothing, so the extra
// collections cost it nothing measurable.
const StartupGCPercent = 10

// memoryLimitFraction of the container's memory limit becomes the Go runtime's soft
// limit: the collector works harder before the kernel's OOM killer would step in.
const memoryLimitFraction = 0.9

// TuneMemory applies the defaults above unless the GOGC / GOMEMLIMIT environment
// variables are set (they always win). cgroupRoot is /sys/fs/cgroup in production.
// It returns the soft limit it set (0: none) and settle, which ends the start-up GOGC
// and lets GOGC follow the live heap until ctx ends (safe to call more than once, from
// any goroutine).
func TuneMemory(ctx context.Context, getenv func(string) string, cgroupRoot string) (soft int64, settle func()) {
	settle = func() {}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(StartupGCPercent)
		var once sync.Once
		settle = func() {
			once.Do(func() {
				debug.SetGCPercent(DefaultGCPercent)
				debug.FreeOSMemory() // the start-up peak's pages, returned now rather than over minutes
				followLiveHeap(ctx, time.Second)
			})
		}
	}
	if getenv("GOMEMLIMIT") != "" {
		return 0, settle
	}
	limit := cgroupMemoryLimit(cgroupRoot)
	if limit <= 0 {
		return 0, settle
	}
	soft = int64(float64(limit) * memoryLimitFraction)
	debug.SetMemoryLimit(soft)
	return soft, settle
}

// cgroupMemoryLimit reads the memory limit of the cgroup we run in (v2, then v1);
// 0 when there is none or it cannot be read.
func cgroupMemoryLimit(root string) int64 {
	for _, f := range []string{"memory.max", "memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 reports "no limit" as a huge number (about 2^63 rounded to pages).
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0
		}
		return n
	}
	return 0
}
