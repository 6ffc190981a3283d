package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// cleanups runs registered functions once, last registered first, on every exit path.
type cleanups struct {
	mu   sync.Mutex
	fns  []func()
	done bool
}

func (c *cleanups) add(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, f)
}

func (c *cleanups) run() {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.done = true
	fns := c.fns
	c.fns = nil
	c.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		func() {
			defer func() { _ = recover() }()
			fns[i]()
		}()
	}
}

func freePort() (int, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// proc is a child process started in its own process group and stopped by PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

func startProc(name string, cmd *exec.Cmd, logPath string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
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

// stop sends SIGTERM to the process (by PID), then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	p.once.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// ---- /proc sampling

type memSample struct{ RSS, HWM int64 } // bytes

func readMem(pid int) (memSample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memSample{}, err
	}
	var m memSample
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			m.RSS = kb << 10
		case "VmHWM:":
			m.HWM = kb << 10
		}
	}
	return m, nil
}

// clkTck is USER_HZ, 100 on Linux for every architecture we run on.
const clkTck = 100

// cpuSeconds is utime+stime of pid.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(ut+st) / clkTck, nil
}

// rssSampler records the peak VmRSS of a process, sampled every 250 ms.
type rssSampler struct {
	mu   sync.Mutex
	peak int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if m, err := readMem(pid); err == nil {
				s.mu.Lock()
				s.peak = max(s.peak, m.RSS, m.HWM)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) Peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

func (s *rssSampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
}

// ---- OpenBao

type bao struct {
	p        *proc
	addr     string
	root     string
	dir      string
	auditLog string
	client   *vaultapi.Client
}

func startBao(ctx context.Context, bin, dir string, cl *cleanups) (*bao, error) {
	home, confDir := filepath.Join(dir, "home"), filepath.Join(dir, "config")
	for _, d := range []string{home, confDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(confDir, "base.hcl"), []byte("disable_mlock = true\n"), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b := &bao{addr: fmt.Sprintf("http://127.0.0.1:%d", port), root: fmt.Sprintf("root-bench-%d", time.Now().UnixNano()), dir: dir}
	// The cleanups stop it gracefully (p.stop); ctx ending would SIGKILL it first.
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id="+b.root, //nolint:noctx // see above
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port), "-dev-no-store-token", "-config="+confDir)
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "BAO_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home)
	cmd.Env = env
	p, err := startProc("bao", cmd, filepath.Join(dir, "bao.log"))
	if err != nil {
		return nil, err
	}
	b.p = p
	cl.add(func() { p.stop(10 * time.Second) })
	if err := waitHTTP(ctx, b.addr+"/v1/sys/health", 30*time.Second, p); err != nil {
		return nil, fmt.Errorf("bao: %w", err)
	}
	cfg := vaultapi.DefaultConfig()
	cfg.Address = b.addr
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(b.root)
	c.ClearNamespace()
	b.client = c
	// OpenBao creates audit devices only from its configuration, re-read on SIGHUP.
	b.auditLog = filepath.Join(dir, "audit.log")
	hcl := fmt.Sprintf("audit \"file\" \"file\" {\n  options {\n    file_path = %q\n  }\n}\n", b.auditLog)
	if err := os.WriteFile(filepath.Join(confDir, "audit.hcl"), []byte(hcl), 0o600); err != nil {
		return nil, err
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		devs, err := c.Sys().ListAuditWithContext(ctx)
		if err == nil && devs["file/"] != nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bao file audit device not enabled (err %v)", err) //nolint:errorlint // err is often nil (the device is just missing), which %w would render as %!w(<nil>)
		}
	}
	return b, nil
}

func waitHTTP(ctx context.Context, url string, timeout time.Duration, p *proc) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before %s answered", p.name, url)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not answering after %s", url, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ---- audit logs

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// readLines calls f for every complete line of path in [from, to).
func readLines(path string, from, to int64, f func([]byte)) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	if to <= from {
		return nil
	}
	buf := make([]byte, to-from)
	if _, err := fh.ReadAt(buf, from); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	for len(buf) > 0 {
		i := indexByte(buf, '\n')
		if i < 0 {
			break
		}
		if i > 0 {
			f(buf[:i])
		}
		buf = buf[i+1:]
	}
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// vaultCounts classifies OpenBao audit responses: logins, KV reads, token calls, other.
type vaultCounts struct {
	Total  int            `json:"total"`
	Logins int            `json:"logins"`
	Reads  int            `json:"kv_reads"`
	Token  int            `json:"token_ops"`
	ByPath map[string]int `json:"by_path_prefix"`
}

func countVault(path string, from, to int64) (vaultCounts, error) {
	vc := vaultCounts{ByPath: map[string]int{}}
	err := readLines(path, from, to, func(line []byte) {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Path      string `json:"path"`
				Operation string `json:"operation"`
			} `json:"request"`
		}
		if json.Unmarshal(line, &e) != nil || e.Type != "response" {
			return
		}
		p := e.Request.Path
		vc.Total++
		switch {
		case strings.HasPrefix(p, "auth/") && strings.HasSuffix(p, "/login"):
			vc.Logins++
		case strings.HasPrefix(p, "auth/token/"):
			vc.Token++
		case strings.HasPrefix(p, "secret/data/"):
			vc.Reads++
		}
		key := p
		if parts := strings.SplitN(p, "/", 3); len(parts) >= 2 {
			key = parts[0] + "/" + parts[1]
		}
		vc.ByPath[e.Request.Operation+" "+key]++
	})
	return vc, err
}

// vaultPerSecond counts the OpenBao audit responses in [from, to) of path by whole
// seconds since t0, for the n seconds from t0; the others are left out.
func vaultPerSecond(path string, from, to int64, t0 time.Time, n int) ([]int, error) {
	out := make([]int, n)
	err := readLines(path, from, to, func(line []byte) {
		var e struct {
			Type string `json:"type"`
			Time string `json:"time"`
		}
		if json.Unmarshal(line, &e) != nil || e.Type != "response" {
			return
		}
		t, err := time.Parse(time.RFC3339Nano, e.Time)
		if err != nil {
			return
		}
		if d := t.Sub(t0); d >= 0 && d < time.Duration(n)*time.Second {
			out[d/time.Second]++
		}
	})
	return out, err
}

// kubeWrites counts the audited writes of user, by "verb resource[/subresource]".
type kubeWrites struct {
	Total  int            `json:"total"`
	ByKind map[string]int `json:"by_verb_resource"`
}

// auditEvent is what the counters below read of a kube-apiserver audit log line.
type auditEvent struct {
	Stage          string    `json:"stage"`
	StageTimestamp time.Time `json:"stageTimestamp"`
	Verb           string    `json:"verb"`
	User           struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		APIGroup    string `json:"apiGroup"`
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// forUser calls fn with every completed request of user in the audit log between
// from and to.
func forUser(path, user string, from, to int64, fn func(e *auditEvent)) error {
	return readLines(path, from, to, func(line []byte) {
		var e auditEvent
		if json.Unmarshal(line, &e) != nil || e.Stage != "ResponseComplete" || e.User.Username != user {
			return
		}
		fn(&e)
	})
}

// resource is "resource[/subresource]".
func (e *auditEvent) resource() string {
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// lastStatusPatch is when the API server completed user's last status patch of an
// ExternalSecret in namespace: the cold burst's end, read from the audit log instead
// of a watch (see waitColdReady).
func lastStatusPatch(path, user, namespace string, from, to int64) (time.Time, error) {
	var last time.Time
	err := forUser(path, user, from, to, func(e *auditEvent) {
		if e.Verb == "patch" && e.resource() == "externalsecrets/status" && e.ObjectRef.Namespace == namespace &&
			e.ResponseStatus.Code == 200 && e.StageTimestamp.After(last) {
			last = e.StageTimestamp
		}
	})
	return last, err
}

func countKubeWrites(path, user string, from, to int64) (kubeWrites, error) {
	kw := kubeWrites{ByKind: map[string]int{}}
	err := forUser(path, user, from, to, func(e *auditEvent) {
		switch e.Verb {
		case "create", "update", "patch", "delete", "deletecollection":
			kw.Total++
			kw.ByKind[e.Verb+" "+e.resource()]++
		}
	})
	return kw, err
}

// countKubeRequests counts the audited requests of user by "verb resource[/subresource]
// code" (the audit policy logs the operator's gets and lists too, not its watches).
func countKubeRequests(path, user string, from, to int64) (map[string]int, error) {
	out := map[string]int{}
	err := forUser(path, user, from, to, func(e *auditEvent) {
		out[fmt.Sprintf("%s %s %d", e.Verb, e.resource(), e.ResponseStatus.Code)]++
	})
	return out, err
}

// countWorkloadCalls counts user's LISTs and PATCHes of Deployments, StatefulSets
// and DaemonSets in the audit log between from and to (rollout discovery and restarts).
func countWorkloadCalls(path, user string, from, to int64) (lists, patches int, err error) {
	err = forUser(path, user, from, to, func(e *auditEvent) {
		if e.ObjectRef.APIGroup != "apps" {
			return
		}
		switch e.Verb {
		case "list":
			lists++
		case "patch":
			patches++
		}
	})
	return lists, patches, err
}

// findPIDs returns the PIDs of the processes whose command line contains every one of
// substrs (read from /proc, our own processes only in practice: the strings are
// paths and ports of this run).
func findPIDs(substrs ...string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		ok := true
		for _, s := range substrs {
			if !strings.Contains(cmd, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, pid)
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
