package testenv

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Postgres is a throw-away PostgreSQL server on 127.0.0.1 with a password-protected
// admin user (scram-sha-256), for Vault's database secrets engine.
type Postgres struct {
	Host          string
	Port          int
	AdminUser     string
	AdminPassword string

	dir    string
	binDir string
	osUser string // the OS user the server runs as ("" = the current user)
}

// DSN is a libpq/pgx URL for the admin user on the "postgres" database.
func (p *Postgres) DSN() string { return p.DSNFor(p.AdminUser, p.AdminPassword) }

// DSNFor is a URL for another user (e.g. one Vault issued) on the "postgres" database.
func (p *Postgres) DSNFor(username, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(username, password),
		Host:     fmt.Sprintf("%s:%d", p.Host, p.Port),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// VaultConnectionURL is the connection_url for Vault's database secrets engine
// (templated username/password, filled from the config's username and password).
func (p *Postgres) VaultConnectionURL() string {
	return fmt.Sprintf("postgresql://{{username}}:{{password}}@%s:%d/postgres?sslmode=disable", p.Host, p.Port)
}

// StartPostgres runs initdb and starts PostgreSQL on a free loopback port, and stops
// it (pg_ctl stop -m fast) when t ends. PostgreSQL refuses to run as root, so as root
// it runs as the `postgres` OS user (created when missing) via runuser.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	RequireIntegration(t, "PostgreSQL")
	binDir := pgBinDir(t)
	p := &Postgres{Host: "127.0.0.1", Port: FreePort(t), AdminUser: "secretsync_admin", AdminPassword: "pw-" + randomHex(t, 12), binDir: binDir}
	if os.Geteuid() == 0 {
		p.osUser = "postgres"
		ensureOSUser(t, p.osUser)
	}
	// Not t.TempDir(): its parents are private to root, and the server's user must
	// reach the data and socket directories.
	dir, err := os.MkdirTemp("", "secretsync-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(p.AdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p.osUser != "" {
		chown(t, p.osUser, dir, pwFile)
	}
	data := filepath.Join(dir, "data")
	if out, err := p.run("initdb", "-D", data, "-U", p.AdminUser, "--pwfile="+pwFile,
		"--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c full_page_writes=off", p.Port, dir)
	if out, err := p.run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, tail(filepath.Join(dir, "server.log")))
	}
	t.Cleanup(func() {
		if out, err := p.run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop"); err != nil {
			t.Errorf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	return p
}

func (p *Postgres) run(tool string, args ...string) ([]byte, error) {
	name := filepath.Join(p.binDir, tool)
	if p.osUser != "" {
		name, args = "runuser", append([]string{"-u", p.osUser, "--", name}, args...)
	}
	cmd := exec.Command(name, args...) //nolint:noctx // also stops the server from t.Cleanup, after t.Context() is done
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// pgBinDir finds initdb/pg_ctl/postgres: $PG_BIN, then PATH (following links to the
// real installation, whose share/ files initdb needs), then bin/pg/ in the checkout.
func pgBinDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PG_BIN"); d != "" {
		return d
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			p = resolved
		}
		return filepath.Dir(p)
	}
	return filepath.Dir(binary(t, "PG_INITDB", "pg/initdb"))
}

func ensureOSUser(t testing.TB, name string) {
	t.Helper()
	if _, err := user.Lookup(name); err == nil {
		return
	}
	if out, err := exec.CommandContext(t.Context(), "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("create OS user %s for PostgreSQL: %v\n%s", name, err, out)
	}
}

func chown(t testing.TB, name string, paths ...string) {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatalf("chown %s: %v", p, err)
		}
	}
}
