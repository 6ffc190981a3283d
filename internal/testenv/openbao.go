package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// OpenBao is a running OpenBao dev server (in-memory storage, unsealed, root token)
// listening on 127.0.0.1 only.
type OpenBao struct {
	// Addr is the server URL, http(s)://127.0.0.1:<port>.
	Addr string
	// RootToken is the dev server's root token (random per server).
	RootToken string
	// Client is a vault/api client authenticated with RootToken.
	Client *vaultapi.Client
	// UnsealKey unseals the server again after Seal.
	UnsealKey string
	// LogPath is the server's stdout+stderr.
	LogPath string
	// AuditLog is the file audit device's log once EnableAudit ran.
	AuditLog string

	// CACert is the PEM CA of a server started with OpenBaoTLS.
	CACert []byte

	bin      string
	dir      string
	port     int
	tls      bool
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	stopped  bool
	restarts int
}

// OpenBaoOption configures StartOpenBao.
type OpenBaoOption func(*OpenBao)

// OpenBaoTLS serves HTTPS with a CA the dev server generates (-dev-tls); CACert
// holds that CA's PEM.
func OpenBaoTLS() OpenBaoOption { return func(b *OpenBao) { b.tls = true } }

// StartOpenBao starts `bin/bao server -dev` (or $BAO) on a free loopback port, waits
// until /v1/sys/health answers and stops the server when t ends.
func StartOpenBao(t testing.TB, opts ...OpenBaoOption) *OpenBao {
	t.Helper()
	RequireIntegration(t, "OpenBao dev server")
	b := &OpenBao{bin: binary(t, "BAO", "bao"), dir: t.TempDir(), RootToken: "root-" + randomHex(t, 12)}
	for _, o := range opts {
		o(b)
	}
	for _, d := range []string{"home", "config", "tls"} {
		if err := os.MkdirAll(filepath.Join(b.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A config directory next to -dev: OpenBao creates audit devices only from its
	// configuration (not the API), re-read on SIGHUP; see EnableAudit.
	if err := os.WriteFile(filepath.Join(b.dir, "config", "base.hcl"), []byte("disable_mlock = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The dev server's cluster listener takes port+1 (loopback too).
	b.port = FreePort(t)
	scheme := "http://"
	if b.tls {
		scheme = "https://"
	}
	b.Addr = scheme + addr(b.port)
	t.Cleanup(func() { b.Stop(t) })
	b.start(t)
	return b
}

// Restart stops the server and starts a new one on the same address with the same
// root token (and audit device, if enabled). Dev servers keep data in memory, so
// everything else is gone: this is a server that was down and came back empty.
func (b *OpenBao) Restart(t testing.TB) {
	t.Helper()
	b.Stop(t)
	b.start(t)
}

func (b *OpenBao) start(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restarts++
	b.LogPath = filepath.Join(b.dir, fmt.Sprintf("bao-%d.log", b.restarts))
	logf, err := os.Create(b.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"server", "-dev",
		"-dev-root-token-id=" + b.RootToken,
		"-dev-listen-address=" + addr(b.port),
		"-dev-no-store-token",
		"-config=" + filepath.Join(b.dir, "config"),
	}
	if b.tls {
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+filepath.Join(b.dir, "tls"))
	}
	cmd := exec.Command(b.bin, args...) //nolint:noctx // the server outlives this call (and may outlive t): Stop and t.Cleanup end it, a context would SIGKILL it first
	cmd.Env = append(filteredEnv(), "HOME="+filepath.Join(b.dir, "home"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start bao: %v", err)
	}
	b.cmd, b.stopped = cmd, false
	done := make(chan struct{})
	b.done = done
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()

	if b.tls {
		// -dev-tls writes its CA before the listener comes up.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if ca, err := os.ReadFile(filepath.Join(b.dir, "tls", "vault-ca.pem")); err == nil && len(ca) > 0 {
				b.CACert = ca
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("bao -dev-tls wrote no CA:\n%s", tail(b.LogPath))
			}
		}
	}
	if err := b.waitHealthy(30 * time.Second); err != nil {
		t.Fatalf("bao: %v\n%s", err, tail(b.LogPath))
	}
	// The banner with the unseal key is printed just after the server turns healthy.
	unsealRE := regexp.MustCompile(`Unseal Key: (\S+)`)
	b.UnsealKey = ""
	for deadline := time.Now().Add(5 * time.Second); b.UnsealKey == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b.UnsealKey = findInLog(b.LogPath, unsealRE)
	}

	cfg := vaultapi.DefaultConfig()
	cfg.Address = b.Addr
	cfg.MaxRetries = 0
	if b.tls {
		if err := cfg.ConfigureTLS(&vaultapi.TLSConfig{CACertBytes: b.CACert}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		t.Fatalf("vault client: %v", err)
	}
	c.SetToken(b.RootToken)
	c.ClearNamespace()
	b.Client = c
}

// Stop terminates the server (SIGTERM, then SIGKILL after 10 s) and waits for it.
// Safe to call more than once; data is gone afterwards (dev servers keep it in memory).
func (b *OpenBao) Stop(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped || b.cmd == nil {
		return
	}
	b.stopped = true
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// Seal seals the server: every request then fails with 503 until Unseal. Unlike
// Stop, tokens, leases and data survive, so tests can simulate an outage and recovery.
func (b *OpenBao) Seal(t testing.TB) {
	t.Helper()
	if err := b.Client.Sys().SealWithContext(t.Context()); err != nil {
		t.Fatalf("seal: %v", err)
	}
}

// Unseal unseals a sealed server with its dev unseal key.
func (b *OpenBao) Unseal(t testing.TB) {
	t.Helper()
	if b.UnsealKey == "" {
		t.Fatalf("unseal: the dev server's unseal key was not found in %s", b.LogPath)
	}
	st, err := b.Client.Sys().UnsealWithContext(t.Context(), b.UnsealKey)
	if err != nil || st.Sealed {
		t.Fatalf("unseal: %v (status %+v)", err, st)
	}
	if err := b.waitHealthy(30 * time.Second); err != nil {
		t.Fatalf("unseal: %v", err)
	}
}

// EnableAudit enables a file audit device and returns the log path. Every request
// and response is one JSON line (values HMAC'ed), so tests can count logins.
// OpenBao refuses to enable audit devices through the API, so the device is
// declared in the server's config directory and the server reloads it (SIGHUP).
func (b *OpenBao) EnableAudit(t testing.TB) string {
	t.Helper()
	p := filepath.Join(b.dir, "audit.log")
	hcl := fmt.Sprintf("audit \"file\" \"file\" {\n  options {\n    file_path = %q\n  }\n}\n", p)
	if err := os.WriteFile(filepath.Join(b.dir, "config", "audit.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("reload bao config: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		devs, err := b.Client.Sys().ListAuditWithContext(t.Context())
		if err == nil && devs["file/"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file audit device not enabled after reload (err %v)\n%s", err, tail(b.LogPath))
		}
	}
	b.AuditLog = p
	return p
}

// AuditCount counts the audited responses to requests on path (e.g.
// "auth/approle/login"). EnableAudit must have run.
func (b *OpenBao) AuditCount(t testing.TB, path string) int {
	t.Helper()
	if b.AuditLog == "" {
		t.Fatal("AuditCount: EnableAudit has not run")
	}
	return countAudit(t, b.AuditLog, path)
}

func (b *OpenBao) waitHealthy(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	if b.tls {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(b.CACert)
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.Addr+"/v1/sys/health", http.NoBody)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-b.done:
			return fmt.Errorf("server exited before it became healthy")
		case <-ctx.Done():
			return fmt.Errorf("server not healthy after %s", timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// filteredEnv drops VAULT_*/BAO_* variables of the caller, which would otherwise
// configure the dev server or its client.
func filteredEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "VAULT_") || strings.HasPrefix(kv, "BAO_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func findInLog(path string, re *regexp.Regexp) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if m := re.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
