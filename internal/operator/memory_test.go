package operator

import (
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

	for _, c := range []struct {
		name      string
		env       map[string]string
		wantGC    int
		wantLimit int64
		wantAfter int // GOGC once settled
	}{
		{"defaults: GOGC 10 until settled, then 25; 90% of the cgroup limit", nil, StartupGCPercent, 900000000, DefaultGCPercent},
		{"GOGC and GOMEMLIMIT set: untouched", map[string]string{"GOGC": "200", "GOMEMLIMIT": "1GiB"}, 100, 0, 100},
	} {
		t.Run(c.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			soft, settle := TuneMemory(env(c.env), root)
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
