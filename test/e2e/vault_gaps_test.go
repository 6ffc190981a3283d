package e2e

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// TestVaultGaps: a user's renewable token (tokenSecretRef) is renewed and never
// revoked, Transit decrypts ciphertexts of every key version after a rotation, and
// a store with a Vault namespace logs in and reads inside that namespace.
func TestVaultGaps(t *testing.T) {
	e := startVaultEnv(t)
	ctx := context.Background()
	var canaries []string // values that must never appear in the operator's logs

	t.Run("a renewable tokenSecretRef token is renewed, never revoked", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		// 8 s: without renewal it dies within the test; explicit_max_ttl lets it live on.
		tok, err := e.bao.Client.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
			Policies: []string{"read"}, TTL: "8s", ExplicitMaxTTL: "10m", Renewable: boolPtr(true),
		})
		vmust(t, err)
		userToken, accessor := tok.Auth.ClientToken, tok.Auth.Accessor
		canaries = append(canaries, userToken)
		renewalsBefore := e.bao.AuditCount(t, "auth/token/renew-self")
		e.secretData(t, ns, "vault-token", map[string]string{"token": userToken})
		e.store(t, ns, v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}})
		e.externalSecret(t, ns, "app", func(es *v1alpha1.ExternalSecret) {
			es.Spec.RefreshInterval = &metav1.Duration{Duration: time.Second}
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "password", RemoteRef: &v1alpha1.RemoteRef{Key: "app/db", Property: "password"}}}
		})
		e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
		created := time.Now()

		Eventually(t, 30*time.Second, "two renewals of the user's token in OpenBao's audit log", func() bool {
			return e.bao.AuditCount(t, "auth/token/renew-self")-renewalsBefore >= 2
		})
		// Past the token's first 8 s: only renewals keep it alive.
		LetTimePass(t, time.Until(created.Add(12*time.Second)), "past the token's first 8 s TTL: only renewals keep it alive")
		look, err := e.bao.Client.Auth().Token().LookupAccessorWithContext(ctx, accessor)
		if err != nil {
			t.Fatalf("the user's token is gone after its first TTL: %v", err)
		}
		if ttl, _ := look.TokenTTL(); ttl <= 0 {
			t.Fatalf("the user's token has ttl %s", ttl)
		}
		e.waitReady(t, ns, "app", metav1.ConditionTrue, 5*time.Second)

		// The store goes away: its client is closed, the user's token stays valid.
		vmust(t, e.kube.Client.Delete(ctx, &v1alpha1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}))
		vmust(t, e.kube.Client.Delete(ctx, &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"}}))
		LetTimePass(t, 2*time.Second, "the deleted store's client is closed")
		if _, err := e.bao.Client.Auth().Token().LookupAccessorWithContext(ctx, accessor); err != nil {
			t.Fatalf("the user's token was revoked: %v", err)
		}
	})

	t.Run("Transit decrypts old and new ciphertexts after a key rotation", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		vmust(t, e.bao.Client.Sys().MountWithContext(ctx, "transit", &vaultapi.MountInput{Type: "transit"}))
		e.write(t, "transit/keys/rot", nil)
		encrypt := func(plain string) string {
			return e.write(t, "transit/encrypt/rot", map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte(plain))}).Data["ciphertext"].(string)
		}
		const oldPlain, newPlain = "before-rotation-5d1e", "after-rotation-77a0"
		oldCT := encrypt(oldPlain)
		e.write(t, "transit/keys/rot/rotate", nil)
		newCT := encrypt(newPlain)
		if !strings.HasPrefix(oldCT, "vault:v1:") || !strings.HasPrefix(newCT, "vault:v2:") {
			t.Fatalf("ciphertexts %q… and %q… are not of key versions 1 and 2", oldCT[:9], newCT[:9])
		}
		canaries = append(canaries, oldPlain, newPlain)
		e.secretData(t, ns, "vault-token", map[string]string{"token": e.bao.RootToken})
		e.store(t, ns, v1alpha1.VaultAuth{TokenSecretRef: &v1alpha1.SecretKeySelector{Name: "vault-token", Key: "token"}})
		e.externalSecret(t, ns, "both", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{
				{SecretKey: "old", Decrypt: &v1alpha1.DecryptRef{Key: "rot", Ciphertext: oldCT}},
				{SecretKey: "new", Decrypt: &v1alpha1.DecryptRef{Key: "rot", Ciphertext: newCT}},
			}
		})
		e.waitReady(t, ns, "both", metav1.ConditionTrue, 30*time.Second)
		s := e.secret(t, ns, "both")
		if s == nil || string(s.Data["old"]) != oldPlain || string(s.Data["new"]) != newPlain {
			t.Fatalf("after rotation: old %q new %q", s.Data["old"], s.Data["new"])
		}
	})

	t.Run("a store with a namespace logs in and reads inside it", func(t *testing.T) {
		ns := e.kube.Namespace(t, nil)
		e.write(t, "sys/namespaces/team-a", nil)
		tc, err := e.bao.Client.Clone()
		vmust(t, err)
		tc.SetToken(e.bao.RootToken)
		tc.SetNamespace("team-a")
		vmust(t, tc.Sys().MountWithContext(ctx, "secret", &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
		Eventually(t, 10*time.Second, "the namespace's KV v2 mount to serve writes", func() bool {
			_, err := tc.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "team-a-pw"})
			return err == nil
		})
		vmust(t, tc.Sys().PutPolicyWithContext(ctx, "read", vaultPolicy))
		vmust(t, tc.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vaultapi.EnableAuthOptions{Type: "approle"}))
		_, err = tc.Logical().WriteWithContext(ctx, "auth/approle/role/app", map[string]any{"token_policies": "read", "token_ttl": "1h"})
		vmust(t, err)
		rid, err := tc.Logical().ReadWithContext(ctx, "auth/approle/role/app/role-id")
		vmust(t, err)
		sid, err := tc.Logical().WriteWithContext(ctx, "auth/approle/role/app/secret-id", nil)
		vmust(t, err)

		e.secretData(t, ns, "approle", map[string]string{"secret-id": sid.Data["secret_id"].(string)})
		ss := &v1alpha1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"}, Spec: v1alpha1.SecretStoreSpec{
			Provider: v1alpha1.StoreProvider{Vault: &v1alpha1.VaultProvider{Server: e.bao.Addr, Namespace: "team-a",
				Auth: v1alpha1.VaultAuth{AppRole: &v1alpha1.VaultAppRoleAuth{RoleID: rid.Data["role_id"].(string),
					SecretRef: v1alpha1.SecretKeySelector{Name: "approle", Key: "secret-id"}}}}}}}
		vmust(t, e.kube.Client.Create(ctx, ss))
		e.externalSecret(t, ns, "app", func(es *v1alpha1.ExternalSecret) {
			es.Spec.Data = []v1alpha1.DataItem{{SecretKey: "password", RemoteRef: &v1alpha1.RemoteRef{Key: "app/db", Property: "password"}}}
		})
		e.waitReady(t, ns, "app", metav1.ConditionTrue, 30*time.Second)
		// The root namespace's secret/app/db holds "new-pw": the read went to team-a.
		if s := e.secret(t, ns, "app"); s == nil || string(s.Data["password"]) != "team-a-pw" {
			t.Fatalf("the namespaced store read %q, want the team-a value", s.Data["password"])
		}
	})

	t.Run("no secret value in the operator's logs", func(t *testing.T) {
		e.op.Stop(t)
		logs := e.op.Logs()
		if !strings.Contains(logs, "Starting workers") {
			t.Fatalf("the operator's logs were not captured")
		}
		for _, c := range canaries {
			if strings.Contains(logs, c) {
				t.Errorf("the operator's logs contain a secret value (%d bytes)", len(c))
			}
		}
	})
}

func boolPtr(b bool) *bool { return &b }
