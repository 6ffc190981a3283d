package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/vault"
	"github.com/secretsync/secretsync/internal/testenv"
)

// TestVaultPKI: a certificate from OpenBao's PKI engine becomes a kubernetes.io/tls
// Secret whose key pair matches; it is re-issued at renewPercent of its lifetime
// (never on restart), superseded certificates stay valid until they expire, and
// deleting the ExternalSecret revokes every certificate of it that has not expired.
func TestVaultPKI(t *testing.T) {
	kube := testenv.StartKube(t)
	bao := testenv.StartOpenBao(t)
	reg := provider.NewRegistry(vault.New())
	op := StartOperator(t, kube, reg)
	c, ctx := kube.Client, context.Background()

	pkiWrite := func(path string, data map[string]any) {
		t.Helper()
		if _, err := bao.Client.Logical().WriteWithContext(ctx, path, data); err != nil {
			t.Fatalf("bao write %s: %v", path, err)
		}
	}
	pkiWrite("sys/mounts/pki", map[string]any{"type": "pki", "config": map[string]any{"max_lease_ttl": "1h"}})
	pkiWrite("pki/root/generate/internal", map[string]any{"common_name": "secretsync test CA", "ttl": "1h"})
	pkiWrite("pki/roles/web", map[string]any{"allowed_domains": "example.test", "allow_subdomains": true, "max_ttl": "1h"})
	revokedAt := func(serial string) int64 {
		t.Helper()
		sec, err := bao.Client.Logical().ReadWithContext(ctx, "pki/cert/"+serial)
		if err != nil || sec == nil {
			t.Fatalf("read pki/cert/%s: %v", serial, err)
		}
		n, _ := sec.Data["revocation_time"].(json.Number).Int64()
		return n
	}

	ns := kube.Namespace(t, nil)
	pkiMust(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bao-token"}, StringData: map[string]string{"token": bao.RootToken}}))
	pkiMust(t, c.Create(ctx, &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bao"},
		Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: bao.Addr,
			Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "bao-token", Key: "token"}}}}}}))
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: v1alpha1.ExternalSecretSpec{
			SecretStoreRef:  v1alpha1.StoreRef{Name: "bao"},
			RefreshInterval: &metav1.Duration{Duration: time.Hour},
			Target:          v1alpha1.Target{Template: &v1alpha1.Template{Type: string(corev1.SecretTypeTLS)}},
			DataFrom: []v1alpha1.DataFromSource{{
				Dynamic: &v1alpha1.DynamicRef{Path: "pki/issue/web", Method: "POST", RenewPercent: 50,
					Parameters: map[string]string{"common_name": "app.example.test", "ttl": "20s"}},
				Rewrite: []v1alpha1.Rewrite{
					{Regexp: v1alpha1.RewriteRegexp{Source: "^certificate$", Target: "tls.crt"}},
					{Regexp: v1alpha1.RewriteRegexp{Source: "^private_key$", Target: "tls.key"}},
					{Regexp: v1alpha1.RewriteRegexp{Source: "^issuing_ca$", Target: "ca.crt"}},
				},
			}},
		}}
	pkiMust(t, c.Create(ctx, es))

	current := func() (serial string, leases []v1alpha1.LeaseStatus) {
		got := &v1alpha1.ExternalSecret{}
		pkiMust(t, c.Get(ctx, client.ObjectKeyFromObject(es), got))
		if n := len(got.Status.Leases); n > 0 {
			return got.Status.Leases[n-1].ID, got.Status.Leases
		}
		return "", nil
	}
	var first string
	Eventually(t, 30*time.Second, "certificate issued", func() bool { first, _ = current(); return first != "" })
	issuedAt := time.Now()

	s := GetSecret(t, c, ns, "web")
	if s.Type != corev1.SecretTypeTLS {
		t.Fatalf("Secret type %s", s.Type)
	}
	if _, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"]); err != nil {
		t.Fatalf("tls.crt and tls.key do not match: %v", err)
	}
	block, _ := pem.Decode(s.Data["tls.crt"])
	cert, err := x509.ParseCertificate(block.Bytes)
	pkiMust(t, err)
	if life := cert.NotAfter.Sub(cert.NotBefore); life > 2*time.Minute {
		t.Fatalf("certificate lifetime %s, want the role's 20 s", life)
	}

	var second string
	Eventually(t, 25*time.Second, "certificate re-issued before it expires", func() bool {
		second, _ = current()
		return second != first
	})
	reissued := time.Since(issuedAt)
	t.Logf("re-issued after %s (lifetime 20 s, renewPercent 50)", reissued.Round(100*time.Millisecond))
	if reissued < 7*time.Second {
		t.Fatalf("re-issued after %s: before renewPercent of the lifetime", reissued)
	}
	if _, leases := current(); len(leases) < 2 {
		t.Fatalf("status.leases = %+v, want the superseded certificate kept until it expires", leases)
	}
	if revokedAt(first) != 0 {
		t.Fatal("the superseded certificate was revoked at rotation")
	}

	// A restart right after a re-issue (the next one is ~9 s away) issues nothing.
	op.Stop()
	StartOperator(t, kube, reg)
	LetTimePass(t, 4*time.Second, "the restarted operator looks at everything once")
	if now, _ := current(); now != second {
		t.Fatalf("the restart re-issued: serial %s -> %s", second, now)
	}
	if got := GetSecret(t, c, ns, "web"); bytes.Equal(got.Data["tls.crt"], s.Data["tls.crt"]) {
		t.Fatal("the Secret still holds the first certificate")
	}

	_, leases := current()
	pkiMust(t, c.Delete(ctx, es))
	Eventually(t, 30*time.Second, "ExternalSecret deleted", func() bool {
		return c.Get(ctx, client.ObjectKeyFromObject(es), &v1alpha1.ExternalSecret{}) != nil
	})
	for _, l := range leases {
		if l.ExpiresAt.After(time.Now()) && revokedAt(l.ID) == 0 {
			t.Errorf("certificate %s (expires %s) not revoked on delete", l.ID, l.ExpiresAt)
		}
	}
}

func pkiMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
