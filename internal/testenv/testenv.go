// Package testenv starts the real components integration tests run against: a
// kube-apiserver + etcd (controller-runtime envtest) with our CRDs installed, an
// OpenBao dev server, and PostgreSQL. Each is skipped, loudly, only when
// SECRETSYNC_SKIP_INTEGRATION=1; otherwise a missing binary FAILS the test, so a CI
// machine without the tools cannot pass by running nothing.
package testenv

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SkipEnv is the variable that turns integration tests into (loud) skips.
const SkipEnv = "SECRETSYNC_SKIP_INTEGRATION"

// RequireIntegration skips t when SECRETSYNC_SKIP_INTEGRATION=1.
func RequireIntegration(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("SKIPPING %s: %s=1 (this run does NOT test against real components)", what, SkipEnv)
	}
}

// RepoRoot is the checkout's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// binary finds a tool: an explicit env var, then bin/<rel> in the checkout.
func binary(t testing.TB, envVar, rel string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		return p
	}
	p := filepath.Join(RepoRoot(), "bin", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found at %s: run `make tools` (or set %s, or %s=1 to skip integration tests)", rel, p, envVar, SkipEnv)
	}
	return p
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
