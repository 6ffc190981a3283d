package soak

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secretsync/secretsync/internal/testenv"
)

// proc is a child process in its own process group, stopped by PID only.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends sig and waits up to 20 s for the exit (then SIGKILL).
func (p *proc) kill(sig syscall.Signal) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// replica is one operator process.
type replica struct {
	id      int
	p       *proc
	metrics string
	log     string
}

type operators struct {
	t          testing.TB
	bin, dir   string
	kubeconfig string
	ns         string
	mu         sync.Mutex
	next       int
	live       []*replica
	logs       []string
	selfExits  int
}

func buildOperator(t testing.TB, dir string) string {
	t.Helper()
	if b := os.Getenv("SOAK_BINARY"); b != "" {
		return b
	}
	out := filepath.Join(dir, "secretsync")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".") //nolint:noctx // a one-shot build, bounded by the test timeout
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// start launches one more replica with leader election (default lease settings).
func (o *operators) start() *replica {
	o.t.Helper()
	o.mu.Lock()
	o.next++
	id := o.next
	o.mu.Unlock()
	mp, hp := testenv.FreePort(o.t), testenv.FreePort(o.t)
	args := []string{
		"--leader-elect=true",
		"--namespace=" + o.ns,
		"--operator-namespace=" + operatorNS,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", mp),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", hp),
		"--backend-timeout=10s",
		"--zap-encoder=json",
	}
	cmd := exec.Command(o.bin, args...) //nolint:noctx // a long-lived replica: killed by PID (SIGKILL is a fault under test), never by a context
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "VAULT_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "KUBECONFIG="+o.kubeconfig)
	cmd.Env = env
	log := filepath.Join(o.dir, fmt.Sprintf("operator-%d.log", id))
	p, err := startProc(cmd, log)
	if err != nil {
		o.t.Fatalf("start operator: %v", err)
	}
	r := &replica{id: id, p: p, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", mp), log: log}
	o.mu.Lock()
	o.live = append(o.live, r)
	o.logs = append(o.logs, log)
	o.mu.Unlock()
	return r
}

func (o *operators) stopAll() {
	o.mu.Lock()
	live := o.live
	o.live = nil
	o.mu.Unlock()
	for _, r := range live {
		r.p.kill(syscall.SIGTERM)
	}
}

// leader is the live replica whose metrics say it leads (nil: none yet).
func (o *operators) leader(ctx context.Context) *replica {
	o.mu.Lock()
	live := append([]*replica(nil), o.live...)
	o.mu.Unlock()
	for _, r := range live {
		if !r.p.exited() && isLeader(ctx, r.metrics) {
			return r
		}
	}
	return nil
}

// kill forgets r, then SIGKILLs it (the supervisor does not restart it: the
// caller starts its replacement).
func (o *operators) kill(r *replica) {
	o.remove(r)
	r.p.kill(syscall.SIGKILL)
}

func (o *operators) remove(r *replica) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, x := range o.live {
		if x == r {
			o.live = append(o.live[:i], o.live[i+1:]...)
			return
		}
	}
}

// supervise restarts a replica that exited by itself, as a Deployment's kubelet
// would: controller-runtime exits when its leader lease cannot be renewed (an API
// server down longer than the renew deadline), by design.
func (o *operators) supervise(ctx context.Context, logf func(string, ...any)) {
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		o.mu.Lock()
		var dead []*replica
		for _, r := range o.live {
			if r.p.exited() {
				dead = append(dead, r)
			}
		}
		o.mu.Unlock()
		if len(dead) > 0 {
			// A crash loop backs off as the kubelet's does (a replica exits at once
			// while the API server is down), capped low to keep the soak moving.
			backoff = min(2*backoff, 10*time.Second)
		} else {
			backoff = time.Second
		}
		for _, r := range dead {
			o.remove(r)
			logf("replica %d exited by itself (%v); starting another", r.id, r.p.cmd.ProcessState)
			o.mu.Lock()
			o.selfExits++
			o.mu.Unlock()
			o.start()
		}
	}
}

func (o *operators) logFiles() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.logs...)
}

// isLeader reads controller-runtime's leader_election_master_status gauge.
func isLeader(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "leader_election_master_status{") {
			f := strings.Fields(l)
			return len(f) == 2 && f[1] == "1"
		}
	}
	return false
}

// ---- kube-apiserver restart: the same command line again, etcd untouched, so the
// certificates, users and data envtest set up remain valid.

type apiserver struct {
	mu      sync.Mutex
	argv    []string
	pid     int
	current *proc // the re-executed process (nil: envtest's own)
	log     string
}

func findAPIServer(t testing.TB, certDir, log string) *apiserver {
	t.Helper()
	for _, pid := range pids() {
		argv := cmdline(pid)
		if len(argv) > 0 && filepath.Base(argv[0]) == "kube-apiserver" && strings.Contains(strings.Join(argv, " "), certDir) {
			return &apiserver{argv: argv, pid: pid, log: log}
		}
	}
	t.Fatalf("kube-apiserver with cert dir %s not found", certDir)
	return nil
}

// restart stops the API server (SIGTERM), waits down, then starts it again.
func (a *apiserver) restart(down time.Duration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current != nil {
		a.current.kill(syscall.SIGTERM)
	} else {
		_ = syscall.Kill(a.pid, syscall.SIGTERM)
		for deadline := time.Now().Add(30 * time.Second); alive(a.pid) && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(a.pid) {
			_ = syscall.Kill(a.pid, syscall.SIGKILL)
		}
	}
	time.Sleep(down)
	cmd := exec.Command(a.argv[0], a.argv[1:]...) //nolint:noctx // the restarted kube-apiserver lives until the soak stops it by PID
	p, err := startProc(cmd, a.log)
	if err != nil {
		return fmt.Errorf("restart kube-apiserver: %w", err)
	}
	a.current, a.pid = p, p.pid()
	return nil
}

// stop ends a re-executed API server (envtest stops its own).
func (a *apiserver) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current != nil {
		a.current.kill(syscall.SIGTERM)
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}
