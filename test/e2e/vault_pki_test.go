package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
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
	// Signing a CSR checks its key type against the role's (rsa by default).
	pkiWrite("pki/roles/signer", map[string]any{"allowed_domains": "example.test", "allow_subdomains": true, "max_ttl": "1h", "key_type": "any"})
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
	// A Deployment that uses the Secret, created before it: restarted once per re-issue.
	labels := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "web", Image: "web:1", VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/tls"}}}},
			Volumes:    []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "web"}}}},
		}}}}
	pkiMust(t, c.Create(ctx, deploy))
	generation := func() int64 {
		d := &appsv1.Deployment{}
		pkiMust(t, c.Get(ctx, client.ObjectKeyFromObject(deploy), d))
		return d.Generation
	}
	es := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: v1alpha1.ExternalSecretSpec{
			SecretStoreRef:  v1alpha1.StoreRef{Name: "bao"},
			RefreshInterval: &metav1.Duration{Duration: time.Hour},
			Target: v1alpha1.Target{Template: &v1alpha1.Template{Type: string(corev1.SecretTypeTLS)},
				Rollout: &v1alpha1.Rollout{Consumers: v1alpha1.RolloutAuto}},
			DataFrom: []v1alpha1.DataFromSource{{
				Dynamic: &v1alpha1.DynamicRef{Path: "pki/issue/web", Method: "POST", RenewPercent: 50,
					Parameters: map[string]string{"common_name": "app.example.test", "ttl": "30s"}},
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
		t.Fatalf("certificate lifetime %s, want the 30 s asked for", life)
	}
	if g := generation(); g != 1 {
		t.Fatalf("the first issue restarted the Deployment (generation %d)", g)
	}

	var second string
	Eventually(t, 35*time.Second, "certificate re-issued before it expires", func() bool {
		second, _ = current()
		return second != first
	})
	reissued := time.Since(issuedAt)
	t.Logf("re-issued after %s (lifetime 30 s, renewPercent 50)", reissued.Round(100*time.Millisecond))
	if reissued < 12*time.Second {
		t.Fatalf("re-issued after %s: before renewPercent of the lifetime", reissued)
	}
	if _, leases := current(); len(leases) < 2 {
		t.Fatalf("status.leases = %+v, want the superseded certificate kept until it expires", leases)
	}
	if revokedAt(first) != 0 {
		t.Fatal("the superseded certificate was revoked at rotation")
	}

	// The consumer is restarted once for the re-issue (after the 5 s coalescing window).
	Eventually(t, 15*time.Second, "Deployment restarted for the re-issue", func() bool { return generation() == 2 })

	// A restart ~6 s after a re-issue (the next one is ~14 s away) issues nothing and
	// restarts nothing.
	op.Stop()
	StartOperator(t, kube, reg)
	LetTimePass(t, 4*time.Second, "the restarted operator looks at everything once")
	if now, _ := current(); now != second {
		t.Fatalf("the restart re-issued: serial %s -> %s", second, now)
	}
	if g := generation(); g != 2 {
		t.Fatalf("Deployment generation %d after the operator restart, want 2", g)
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

	// pki/sign with a CSR: the certificate is for the CSR's key (which the operator
	// never sees), recorded as a certificate and revoked on delete.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkiMust(t, err)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "signed.example.test"}}, key)
	pkiMust(t, err)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	signed := &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signed"},
		Spec: v1alpha1.ExternalSecretSpec{
			SecretStoreRef:  v1alpha1.StoreRef{Name: "bao"},
			RefreshInterval: &metav1.Duration{Duration: time.Hour},
			DataFrom: []v1alpha1.DataFromSource{{
				Dynamic: &v1alpha1.DynamicRef{Path: "pki/sign/signer", Method: "POST",
					Parameters: map[string]string{"csr": csr, "common_name": "signed.example.test", "ttl": "10m"}},
				Rewrite: []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: "^certificate$", Target: "tls.crt"}}},
			}},
		}}
	pkiMust(t, c.Create(ctx, signed))
	var serial string
	var last *v1alpha1.ExternalSecret
	defer func() {
		if serial == "" && last != nil {
			t.Logf("signed: status %+v", last.Status.Conditions)
		}
	}()
	Eventually(t, 30*time.Second, "CSR signed", func() bool {
		got := &v1alpha1.ExternalSecret{}
		pkiMust(t, c.Get(ctx, client.ObjectKeyFromObject(signed), got))
		last = got
		if len(got.Status.Leases) == 1 && got.Status.Leases[0].Kind == v1alpha1.LeaseKindCertificate {
			serial = got.Status.Leases[0].ID
		}
		return serial != ""
	})
	block, _ = pem.Decode(GetSecret(t, c, ns, "signed").Data["tls.crt"])
	if block == nil {
		t.Fatal("no certificate in the signed Secret")
	}
	scert, err := x509.ParseCertificate(block.Bytes)
	pkiMust(t, err)
	if pub, ok := scert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		t.Fatal("the signed certificate is not for the CSR's key")
	}
	pkiMust(t, c.Delete(ctx, signed))
	Eventually(t, 30*time.Second, "signed certificate revoked on delete", func() bool { return revokedAt(serial) != 0 })
}

func pkiMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
