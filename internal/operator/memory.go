package operator

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// DefaultGCPercent is the operator's GOGC. Go's default (100) lets the heap grow to
// twice what is live between collections. The operator's live heap is mostly its
// informer caches and it allocates little per reconcile, so a quarter of headroom
// costs little: at 10,000 ExternalSecrets RSS went from 138 to 108 MiB for about one
// more percent of the operator's CPU time in GC (docs/benchmarks.md).
const DefaultGCPercent = 25

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
// (safe to call more than once, from any goroutine).
func TuneMemory(getenv func(string) string, cgroupRoot string) (soft int64, settle func()) {
	settle = func() {}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(StartupGCPercent)
		var once sync.Once
		settle = func() {
			once.Do(func() {
				debug.SetGCPercent(DefaultGCPercent)
				debug.FreeOSMemory() // the start-up peak's pages, returned now rather than over minutes
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
