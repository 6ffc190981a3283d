package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// RaftCluster is a real OpenBao HA cluster: three server processes on loopback,
// each with its own Raft data directory, API port and cluster port, initialised
// (one unseal key) and unsealed by the helper, all three Raft voters, with a
// round-robin Front where a Kubernetes Service would stand.
type RaftCluster struct {
	Nodes []*RaftNode
	// Front is the single address clients use (like a Service in front of the pods).
	Front *Front
	// Client talks to the cluster through Front with RootToken.
	Client    *vaultapi.Client
	RootToken string
	UnsealKey string
}

// RaftNode is one OpenBao server of a RaftCluster.
type RaftNode struct {
	ID string
	// Addr is the node's own API URL (its api_addr: where standbys redirect to).
	Addr string
	// AuditLog is the node's file audit device (every node declares one; only
	// the active node audits, forwarded requests included).
	AuditLog string

	bin, dir string
	port     int
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	starts   int
	logPath  string
}

// StartRaftCluster starts a 3-node cluster and its Front, and stops every process
// (by process group) when t ends.
func StartRaftCluster(t testing.TB) *RaftCluster {
	t.Helper()
	RequireIntegration(t, "OpenBao Raft cluster")
	bin := binary(t, "BAO", "bao")
	dir := t.TempDir()
	c := &RaftCluster{}
	for i := range 3 {
		n := &RaftNode{ID: fmt.Sprintf("node%d", i), bin: bin, dir: filepath.Join(dir, fmt.Sprintf("node%d", i))}
		n.port = FreePort(t)
		n.Addr = "http://" + addr(n.port)
		n.AuditLog = filepath.Join(n.dir, "audit.log")
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		n.writeConfig(t, c.Nodes)
		t.Cleanup(n.kill)
		n.start(t)
	}
	c.initialise(t)
	for _, n := range c.Nodes[1:] {
		c.unseal(t, n)
	}
	c.waitVoters(t, c.Nodes[0], 90*time.Second)

	backends := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		backends[i] = addr(n.port)
	}
	c.Front = StartFront(t, backends, healthProbe)
	cfg := vaultapi.DefaultConfig()
	cfg.Address = c.Front.URL()
	cfg.MaxRetries = 3 // the admin client rides out the tests' own failovers
	cl, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl.SetToken(c.RootToken)
	cl.ClearNamespace()
	c.Client = cl
	return c
}

// healthProbe is a Service readiness probe: an unsealed active node or standby.
func healthProbe(backend string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+backend+"/v1/sys/health?standbyok=true", http.NoBody)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (n *RaftNode) writeConfig(t testing.TB, all []*RaftNode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(n.dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Its own cluster port too: api port + 1 may be another test's.
	cport := FreePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, "disable_mlock = true\nui = false\napi_addr = %q\ncluster_addr = %q\n", n.Addr, "http://"+addr(cport))
	fmt.Fprintf(&b, "listener \"tcp\" {\n  address = %q\n  cluster_address = %q\n  tls_disable = true\n}\n", addr(n.port), addr(cport))
	// performance_multiplier 1: the production recommendation (the default, 5,
	// is for development and slows elections down fivefold).
	fmt.Fprintf(&b, "storage \"raft\" {\n  path = %q\n  node_id = %q\n  performance_multiplier = 1\n", filepath.Join(n.dir, "data"), n.ID)
	for _, o := range all {
		if o != n {
			fmt.Fprintf(&b, "  retry_join {\n    leader_api_addr = %q\n  }\n", o.Addr)
		}
	}
	b.WriteString("}\n")
	// Every node must declare the same audit device (a node whose options differ
	// fails post-unseal when it becomes active): a path relative to the working
	// directory, which is the node's own.
	b.WriteString("audit \"file\" \"file\" {\n  options {\n    file_path = \"audit.log\"\n  }\n}\n")
	if err := os.WriteFile(filepath.Join(n.dir, "config.hcl"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (n *RaftNode) start(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.starts++
	n.logPath = filepath.Join(n.dir, fmt.Sprintf("bao-%d.log", n.starts))
	logf, err := os.Create(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	// A long-lived server stopped by Stop (SIGTERM, then SIGKILL), not by a context.
	cmd := exec.Command(n.bin, "server", "-config="+filepath.Join(n.dir, "config.hcl")) //nolint:noctx // see above
	home := filepath.Join(n.dir, "home")
	_ = os.MkdirAll(home, 0o700)
	cmd.Env = append(filteredEnv(), "HOME="+home)
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", n.ID, err)
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	if err := n.waitListening(30 * time.Second); err != nil {
		t.Fatalf("%s: %v\n%s", n.ID, err, tail(n.logPath))
	}
}

// kill SIGKILLs the node's process group (the server and any plugin it started)
// and waits for it. Safe to call when it is not running.
func (n *RaftNode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	select {
	case <-n.done:
	default:
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	}
	n.cmd = nil
}

// health is the node's /v1/sys/health status code (200 active, 429 standby,
// 503 sealed, 501 not initialised), 0 when it does not answer.
func (n *RaftNode) health() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.Addr+"/v1/sys/health", http.NoBody)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (n *RaftNode) waitListening(timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-n.done:
			return fmt.Errorf("server exited")
		default:
		}
		if n.health() != 0 {
			return nil
		}
	}
	return fmt.Errorf("not listening after %s", timeout)
}

// nodeClient is a vault/api client for one node, without retries.
func (c *RaftCluster) nodeClient(t testing.TB, n *RaftNode) *vaultapi.Client {
	t.Helper()
	cfg := vaultapi.DefaultConfig()
	cfg.Address = n.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 10 * time.Second
	cl, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl.SetToken(c.RootToken)
	cl.ClearNamespace()
	return cl
}

// initialise runs `operator init` (one key share) on the first node, unseals it
// and waits until it is active.
func (c *RaftCluster) initialise(t testing.TB) {
	t.Helper()
	n := c.Nodes[0]
	resp, err := c.nodeClient(t, n).Sys().InitWithContext(t.Context(), &vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("init %s: %v\n%s", n.ID, err, tail(n.logPath))
	}
	c.RootToken, c.UnsealKey = resp.RootToken, resp.KeysB64[0]
	c.unseal(t, n)
	// Promote joining nodes to voters quickly (default: after 10 s of stability).
	c.retry(t, 30*time.Second, "autopilot configuration", func() error {
		_, err := c.nodeClient(t, n).Logical().WriteWithContext(t.Context(), "sys/storage/raft/autopilot/configuration",
			map[string]any{"server_stabilization_time": "2s"})
		return err
	})
}

// unseal unseals n (a node that joins with retry_join answers "not initialized"
// until it has the leader's challenge) and waits until it is active or standby.
func (c *RaftCluster) unseal(t testing.TB, n *RaftNode) {
	t.Helper()
	cl := c.nodeClient(t, n)
	c.retry(t, 60*time.Second, n.ID+" unseal", func() error {
		st, err := cl.Sys().UnsealWithContext(t.Context(), c.UnsealKey)
		if err != nil {
			return err
		}
		if st.Sealed {
			return fmt.Errorf("still sealed")
		}
		return nil
	})
	c.retry(t, 60*time.Second, n.ID+" active or standby", func() error {
		if h := n.health(); h != http.StatusOK && h != http.StatusTooManyRequests {
			return fmt.Errorf("health %d", h)
		}
		return nil
	})
}

func (c *RaftCluster) retry(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

// raftPeer is one server of autopilot's state.
type raftPeer struct {
	Status  string `json:"status"` // leader, voter, non-voter
	Healthy bool   `json:"healthy"`
}

// waitVoters waits until autopilot, asked through node via (standbys forward),
// reports every node a healthy voter or leader: only then does losing one node
// keep a quorum.
func (c *RaftCluster) waitVoters(t testing.TB, via *RaftNode, timeout time.Duration) {
	t.Helper()
	cl := c.nodeClient(t, via)
	c.retry(t, timeout, "three healthy Raft voters", func() error {
		sec, err := cl.Logical().ReadWithContext(t.Context(), "sys/storage/raft/autopilot/state")
		if err != nil || sec == nil {
			return fmt.Errorf("autopilot state: %w", err)
		}
		raw, _ := json.Marshal(sec.Data["servers"])
		peers := map[string]raftPeer{}
		_ = json.Unmarshal(raw, &peers)
		for _, n := range c.Nodes {
			if p := peers[n.ID]; !p.Healthy || (p.Status != "voter" && p.Status != "leader") {
				return fmt.Errorf("%s: %+v", n.ID, p)
			}
		}
		return nil
	})
}

// Active is the index of the active node, waiting up to timeout for one.
func (c *RaftCluster) Active(t testing.TB, timeout time.Duration) int {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for i, n := range c.Nodes {
			if n.running() && n.health() == http.StatusOK {
				return i
			}
		}
	}
	t.Fatalf("no active OpenBao node after %s", timeout)
	return -1
}

func (n *RaftNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// Kill SIGKILLs node i (no step-down, no clean Raft leave): a crashed pod.
func (c *RaftCluster) Kill(t testing.TB, i int) {
	t.Helper()
	c.Nodes[i].kill()
}

// Restart starts a killed node again on its data directory and ports, unseals it
// and waits until the whole cluster is three healthy voters again.
func (c *RaftCluster) Restart(t testing.TB, i int) {
	t.Helper()
	n := c.Nodes[i]
	n.start(t)
	c.unseal(t, n)
	for _, o := range c.Nodes {
		if o.running() && o != n {
			// Any live node answers autopilot state (standbys forward).
			c.waitVoters(t, o, 90*time.Second)
			return
		}
	}
}

// AuditCount counts audited responses to requests on path over every node's
// audit log (the active node audits; a failover moves auditing to another node).
func (c *RaftCluster) AuditCount(t testing.TB, path string) int {
	t.Helper()
	total := 0
	for _, n := range c.Nodes {
		total += countAudit(t, n.AuditLog, path)
	}
	return total
}

// countAudit counts the audited responses to requests on path in an audit log file
// (none when the file does not exist yet).
func countAudit(t testing.TB, file, path string) int {
	t.Helper()
	f, err := os.Open(file)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "response" && e.Request.Path == path {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("audit log: %v", err)
	}
	return n
}

// LogTail is the end of node i's current log, for failure messages.
func (c *RaftCluster) LogTail(i int) string { return tail(c.Nodes[i].logPath) }

// MountKV2 mounts a KV v2 engine at path and waits until it serves writes (a new
// KV v2 mount answers 400 "upgrading" for a moment).
func (c *RaftCluster) MountKV2(t testing.TB, path string) {
	t.Helper()
	if err := c.Client.Sys().MountWithContext(t.Context(), path, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("mount %s: %v", path, err)
	}
	c.retry(t, 30*time.Second, "KV v2 mount "+path+" ready", func() error {
		_, err := c.Client.Logical().ReadWithContext(t.Context(), path+"/config")
		if err != nil {
			return err
		}
		_, err = c.Client.KVv2(path).Put(t.Context(), ".ready", map[string]any{"ok": "1"})
		return err
	})
}
