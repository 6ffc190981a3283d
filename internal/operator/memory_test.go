package operator

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		name, file, content string
		want                int64
	}{
		{"v2 limit", "memory.max", "268435456\n", 268435456},
		{"v2 unlimited", "memory.max", "max\n", 0},
		{"v1 limit", "memory/memory.limit_in_bytes", "134217728\n", 134217728},
		{"v1 unlimited", "memory/memory.limit_in_bytes", "9223372036854771712\n", 0},
		{"garbage", "memory.max", "lots\n", 0},
		{"no cgroup files", "", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if c.file != "" {
				p := filepath.Join(root, c.file)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := cgroupMemoryLimit(root); got != c.want {
				t.Fatalf("limit = %d, want %d", got, c.want)
			}
		})
	}
}

func TestTuneMemory(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("1000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	defer func(f func() uint64) { liveHeap = f }(liveHeap)
	for _, c := range []struct {
		name      string
		env       map[string]string
		live      uint64 // bytes, when settled
		wantGC    int
		wantLimit int64
		wantAfter int // GOGC once settled
	}{
		{"defaults: GOGC 10 until settled, then 25 at a large live heap; 90% of the cgroup limit", nil, 50 << 20, StartupGCPercent, 900000000, DefaultGCPercent},
		{"defaults: GOGC 10 until settled, then Go's 100 at a small live heap", nil, 20 << 20, StartupGCPercent, 900000000, MaxGCPercent},
		{"GOGC and GOMEMLIMIT set: untouched", map[string]string{"GOGC": "200", "GOMEMLIMIT": "1GiB"}, 20 << 20, 100, 0, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel() // ends the follower before the next case
			liveHeap = func() uint64 { return c.live }
			debug.SetGCPercent(100)
			soft, settle := TuneMemory(ctx, env(c.env), root)
			if soft != c.wantLimit {
				t.Fatalf("soft limit = %d, want %d", soft, c.wantLimit)
			}
			got := debug.SetGCPercent(100)
			debug.SetGCPercent(got) // read, and put back for settle
			if got != c.wantGC {
				t.Fatalf("GOGC = %d, want %d", got, c.wantGC)
			}
			settle()
			settle()
			if got := debug.SetGCPercent(100); got != c.wantAfter {
				t.Fatalf("GOGC after settle = %d, want %d", got, c.wantAfter)
			}
		})
	}
}

// TestGCPercentFor: the heap goal stays within heapBudget while GOGC can stay between
// DefaultGCPercent and MaxGCPercent.
func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		name string
		live uint64
		want int
	}{
		{"not measured yet: the default", 0, DefaultGCPercent},
		{"small: Go's default", 10 << 20, MaxGCPercent},
		{"half the budget: Go's default", 30 << 20, MaxGCPercent},
		{"in between: the goal is the budget", 40 << 20, 50},
		{"10,000 ExternalSecrets: the default", 50 << 20, DefaultGCPercent},
		{"over the budget: the default, never lower", 200 << 20, DefaultGCPercent},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := gcPercentFor(c.live); got != c.want {
				t.Fatalf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
			}
		})
	}
}
