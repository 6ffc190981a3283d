package fetch

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
	"github.com/secretsync/secretsync/internal/provider/memory"
	"github.com/secretsync/secretsync/internal/scheme"
)

// TestRecheckPicksUpRotatedCredentials: a rotated credential Secret rebuilds the
// client after CredentialRecheck, or at once after Recheck (an auth failure).
func TestRecheckPicksUpRotatedCredentials(t *testing.T) {
	ctx := context.Background()
	tok := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "tok"}, Data: map[string][]byte{"token": []byte("t1")}}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(tok).Build()
	store := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "s", UID: "u", Generation: 1},
		Spec: v1alpha1.SecretStoreSpec{Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: "http://vault.test",
			Auth: v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "tok", Key: "token"}}}}}}
	backend := memory.New("vault")
	clk := clocktesting.NewFakeClock(time.Now())
	f := New(provider.NewRegistry(backend), provider.KubeClient{Reader: c, Writer: c}, c, Options{Clock: clk})
	get := func() {
		t.Helper()
		if _, err := f.For(ctx, store, "team"); err != nil {
			t.Fatal(err)
		}
	}
	get()
	tok.Data["token"] = []byte("t2")
	if err := c.Update(ctx, tok); err != nil {
		t.Fatal(err)
	}
	get()
	if n := backend.Clients.Load(); n != 1 {
		t.Fatalf("clients = %d before the recheck period, want 1", n)
	}
	f.Recheck(store, "team")
	get()
	if n := backend.Clients.Load(); n != 2 {
		t.Fatalf("clients = %d after Recheck, want 2 (rotated credentials)", n)
	}
}
