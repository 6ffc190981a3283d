package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/secretsync/secretsync/internal/testenv"
)

// Shared is a costly environment (kube-apiserver, OpenBao, PostgreSQL, an
// operator) started once, by the first test that needs it, and used by every test
// of its family; StopShared, from TestMain, stops it after the last test. Tests
// sharing it must each create their own namespace and backend objects, so that
// they pass alone, in any order and with -count=N.
type Shared[E any] struct {
	// What names the environment in skips and failures.
	What string
	// Start starts the environment. tb outlives every test: its Cleanup runs in
	// StopShared, its TempDir is removed then, and its failures fail the test that
	// is starting (or restarting) the environment, if any.
	Start func(tb testing.TB) *E

	once sync.Once
	env  *E
}

// Get returns the environment, starting it on first use.
func (s *Shared[E]) Get(t *testing.T) *E {
	t.Helper()
	testenv.RequireIntegration(t, s.What)
	s.once.Do(func() {
		suite.With(t, func(tb testing.TB) { s.env = s.Start(tb) })
	})
	if s.env == nil {
		t.Fatalf("%s did not start (see the first test that used it)", s.What)
	}
	return s.env
}

// suite owns every Shared environment's resources.
var suite = &suiteTB{}

// suiteTB is the testing.TB that shared environments are started with. The
// embedded TB is nil on purpose: a method not overridden below would be used after
// the test that provided it ended, so it panics instead.
type suiteTB struct {
	testing.TB

	mu       sync.Mutex
	cur      testing.TB // the test starting or restarting something, if any
	cleanups []func()
	failed   atomic.Bool
}

// With runs f with failures reported to t; what f registers with Cleanup lives
// until StopShared. Use it to start (or restart) a part of a shared environment,
// such as an operator, that must outlive t.
func (s *suiteTB) With(t testing.TB, f func(tb testing.TB)) {
	s.mu.Lock()
	s.cur = t
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
	}()
	f(s)
}

func (s *suiteTB) current() testing.TB {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *suiteTB) Helper()                  {}
func (s *suiteTB) Name() string             { return "shared-environment" }
func (s *suiteTB) Context() context.Context { return context.Background() }
func (s *suiteTB) Failed() bool             { return s.failed.Load() }
func (s *suiteTB) Skipped() bool            { return false }

func (s *suiteTB) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *suiteTB) TempDir() string {
	dir, err := os.MkdirTemp("", "secretsync-e2e-shared-")
	if err != nil {
		s.Fatalf("temp dir: %v", err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (s *suiteTB) Log(args ...any) { s.Logf("%s", fmt.Sprint(args...)) }
func (s *suiteTB) Logf(format string, args ...any) {
	if t := s.current(); t != nil {
		t.Logf(format, args...)
		return
	}
	fmt.Fprintf(os.Stderr, "shared environment: "+format+"\n", args...)
}

func (s *suiteTB) Fail()             { s.Errorf("failed") }
func (s *suiteTB) Error(args ...any) { s.Errorf("%s", fmt.Sprint(args...)) }
func (s *suiteTB) Errorf(format string, args ...any) {
	s.failed.Store(true)
	if t := s.current(); t != nil {
		t.Errorf(format, args...)
		return
	}
	fmt.Fprintf(os.Stderr, "shared environment: FAIL: "+format+"\n", args...)
}

func (s *suiteTB) FailNow()          { s.Fatalf("failed") }
func (s *suiteTB) Fatal(args ...any) { s.Fatalf("%s", fmt.Sprint(args...)) }
func (s *suiteTB) Fatalf(format string, args ...any) {
	if t := s.current(); t != nil {
		s.failed.Store(true)
		t.Fatalf(format, args...)
	}
	s.Errorf(format, args...)
	runtime.Goexit()
}

func (s *suiteTB) SkipNow()         { s.Fatalf("a shared environment cannot be skipped") }
func (s *suiteTB) Skip(args ...any) { s.Fatalf("skip: %s", fmt.Sprint(args...)) }
func (s *suiteTB) Skipf(format string, args ...any) {
	s.Fatalf("skip: "+format, args...)
}

// StopShared stops every shared environment (last started, first stopped), then
// kills, by PID, any process this test binary started that is still running (a
// server whose stop failed, and its children). It reports whether all went well.
func StopShared() bool {
	suite.mu.Lock()
	cleanups := suite.cleanups
	suite.cleanups = nil
	suite.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		// In its own goroutine: a Fatal in a cleanup ends only that cleanup.
		done := make(chan struct{})
		go func() { defer close(done); cleanups[i]() }()
		<-done
	}
	if n := killDescendants(os.Getpid()); n > 0 {
		fmt.Fprintf(os.Stderr, "shared environment: FAIL: %d process(es) were still running after the environments stopped\n", n)
		suite.failed.Store(true)
	}
	return !suite.failed.Load()
}

// killDescendants SIGKILLs every live descendant of pid and returns how many it
// found. Each is named on stderr: one left running is a bug in a stop.
func killDescendants(pid int) int {
	parent := processParents()
	var found []int
	for p := range parent {
		for a := parent[p]; a > 0; a = parent[a] {
			if a == pid {
				found = append(found, p)
				break
			}
		}
	}
	for _, p := range found {
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "cmdline"))
		fmt.Fprintf(os.Stderr, "shared environment: killing leftover process %d: %s\n", p, strings.ReplaceAll(string(cmd), "\x00", " "))
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return len(found)
}

// processParents maps each live (not zombie) process to its parent, from /proc.
func processParents() map[int]int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[p] = pp
		}
	}
	return parent
}
