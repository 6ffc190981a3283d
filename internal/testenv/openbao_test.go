package testenv

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestOpenBaoKVv2RoundTrip(t *testing.T) {
	b := StartOpenBao(t)
	kv := b.Client.KVv2("secret")
	if _, err := kv.Put(t.Context(), "check", map[string]any{"from": "test"}); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := kv.Get(t.Context(), "check")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Data["from"] != "test" || got.VersionMetadata.Version != 1 {
		t.Fatalf("got %v version %d", got.Data, got.VersionMetadata.Version)
	}
	if b.UnsealKey == "" {
		t.Error("unseal key not captured from the dev server's output")
	}
	audit := b.EnableAudit(t)
	if _, err := b.Client.Auth().Token().LookupSelfWithContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := b.AuditCount(t, "auth/token/lookup-self"); n != 1 {
		t.Errorf("audit log %s: %d lookup-self responses, want 1", audit, n)
	}

	b.Seal(t)
	if _, err := kv.Get(t.Context(), "check"); err == nil {
		t.Fatal("read from a sealed server succeeded")
	}
	b.Unseal(t)
	if _, err := kv.Get(t.Context(), "check"); err != nil {
		t.Fatalf("read after unseal: %v", err)
	}

	b.Stop(t)
	if _, err := kv.Get(t.Context(), "check"); err == nil {
		t.Fatal("read from a stopped server succeeded")
	}
}

func TestPostgresConnects(t *testing.T) {
	p := StartPostgres(t)
	conn, err := pgx.Connect(t.Context(), p.DSN())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(t.Context())
	var user string
	if err := conn.QueryRow(t.Context(), "select current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != p.AdminUser {
		t.Fatalf("current_user = %q, want %q", user, p.AdminUser)
	}
	if _, err := pgx.Connect(t.Context(), p.DSNFor(p.AdminUser, "wrong")); err == nil {
		t.Fatal("a wrong password was accepted: authentication is not enforced")
	}
}

func TestOpenBaoTLSAndRestart(t *testing.T) {
	b := StartOpenBao(t, OpenBaoTLS())
	if !strings.HasPrefix(b.Addr, "https://127.0.0.1:") || len(b.CACert) == 0 {
		t.Fatalf("addr %s, CA %d bytes", b.Addr, len(b.CACert))
	}
	if _, err := b.Client.KVv2("secret").Put(t.Context(), "check", map[string]any{"a": "b"}); err != nil {
		t.Fatalf("put over TLS: %v", err)
	}
	addr, token := b.Addr, b.RootToken
	b.Restart(t)
	if b.Addr != addr || b.RootToken != token {
		t.Fatalf("restart moved the server: %s -> %s", addr, b.Addr)
	}
	if _, err := b.Client.Auth().Token().LookupSelfWithContext(t.Context()); err != nil {
		t.Fatalf("root token after restart: %v", err)
	}
	if _, err := b.Client.KVv2("secret").Get(t.Context(), "check"); err == nil {
		t.Fatal("data survived a dev server restart")
	}
}
