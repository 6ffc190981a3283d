package e2e

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/secretsync/secretsync/internal/testenv"
)

// TestCRDValidation applies invalid manifests to the real kube-apiserver and checks
// each is rejected at admission with a message naming the field.
func TestCRDValidation(t *testing.T) {
	kube := testenv.StartKube(t)
	ns := kube.Namespace(t, nil)
	const esHead = "apiVersion: secretsync.dev/v1alpha1\nkind: ExternalSecret\nmetadata: {name: bad}\nspec:\n  secretStoreRef: {name: s}\n"
	const ssHead = "apiVersion: secretsync.dev/v1alpha1\nkind: SecretStore\nmetadata: {name: bad}\nspec:\n"
	const cssHead = "apiVersion: secretsync.dev/v1alpha1\nkind: ClusterSecretStore\nmetadata: {name: bad}\nspec:\n"
	vaultToken := "    vault: {server: 'http://127.0.0.1:8200', auth: {tokenSecretRef: {name: t, key: token}}}\n"
	cases := []struct {
		name, manifest, want string
	}{
		{"two providers at once", ssHead + "  provider:\n" + vaultToken + "    aws: {service: SecretsManager, region: eu-west-1}\n", "spec.provider"},
		{"no provider", ssHead + "  provider: {}\n", "spec.provider"},
		{"vault store with no auth method", ssHead + "  provider:\n    vault: {server: 'http://127.0.0.1:8200', auth: {}}\n", "spec.provider.vault.auth"},
		{"vault store with two auth methods", ssHead + "  provider:\n    vault: {server: 'http://127.0.0.1:8200', auth: {tokenSecretRef: {name: t, key: k}, jwt: {role: r, secretRef: {name: j, key: k}}}}\n", "spec.provider.vault.auth"},
		{"unknown aws service", ssHead + "  provider:\n    aws: {service: S3, region: eu-west-1}\n", "spec.provider.aws.service"},
		{"externalID without role", ssHead + "  provider:\n    aws: {service: SecretsManager, region: eu-west-1, externalID: x}\n", "spec.provider.aws.externalID"},
		{"namespace on a SecretStore reference", ssHead + "  provider:\n    vault: {server: 'http://127.0.0.1:8200', auth: {tokenSecretRef: {name: t, key: token, namespace: other}}}\n", "namespace"},
		{"conditions on a namespaced SecretStore", ssHead + "  provider:\n" + vaultToken + "  conditions: [{namespaces: [a]}]\n", "spec.conditions"},
		{"ClusterSecretStore secret ref without namespace", cssHead + "  provider:\n" + vaultToken, "namespace"},
		{"ClusterSecretStore condition admitting nothing", cssHead + "  provider:\n    vault: {server: 'http://127.0.0.1:8200', auth: {tokenSecretRef: {name: t, key: token, namespace: ops}}}\n  conditions: [{allowedKeys: ['^a/']}]\n", "spec.conditions"},
		{"remoteRef and decrypt together", esHead + "  data: [{secretKey: k, remoteRef: {key: a}, decrypt: {key: app, ciphertext: 'vault:v1:x'}}]\n", "spec.data[]"},
		{"neither remoteRef nor decrypt", esHead + "  data: [{secretKey: k}]\n", "spec.data[]"},
		{"bad refreshInterval", esHead + "  refreshInterval: 1 hour\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.refreshInterval"},
		{"negative refreshInterval", esHead + "  refreshInterval: -5m\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.refreshInterval"},
		{"refreshInterval below one second", esHead + "  refreshInterval: 500ms\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.refreshInterval"},
		{"service-account-token template type", esHead + "  target: {template: {type: kubernetes.io/service-account-token}}\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.target.template.type"},
		{"empty secretKey", esHead + "  data: [{secretKey: '', remoteRef: {key: a}}]\n", "secretKey"},
		{"invalid secretKey", esHead + "  data: [{secretKey: 'a/b', remoteRef: {key: a}}]\n", "secretKey"},
		{"unknown creationPolicy", esHead + "  target: {creationPolicy: Adopt}\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.target.creationPolicy"},
		{"deletionPolicy Delete without creationPolicy Owner", esHead + "  target: {creationPolicy: Orphan, deletionPolicy: Delete}\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.target.deletionPolicy"},
		{"invalid target name", esHead + "  target: {name: Not_Valid}\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.target.name"},
		{"two dataFrom kinds in one entry", esHead + "  dataFrom: [{extract: {key: a}, find: {path: /p}}]\n", "spec.dataFrom[]"},
		{"no data at all", esHead, "spec"},
		{"unknown decodingStrategy", esHead + "  data: [{secretKey: k, remoteRef: {key: a, decodingStrategy: Hex}}]\n", "decodingStrategy"},
		{"traversal in remoteRef.key", esHead + "  data: [{secretKey: k, remoteRef: {key: team-a/../team-b/db}}]\n", "remoteRef.key"},
		{"dot segment in remoteRef.key", esHead + "  data: [{secretKey: k, remoteRef: {key: team-a/./db}}]\n", "remoteRef.key"},
		{"empty segment in remoteRef.key", esHead + "  data: [{secretKey: k, remoteRef: {key: 'team-a//db'}}]\n", "remoteRef.key"},
		{"backslash in remoteRef.key", esHead + "  data: [{secretKey: k, remoteRef: {key: 'team-a\\..\\db'}}]\n", "remoteRef.key"},
		{"percent-encoded dots in remoteRef.key", esHead + "  data: [{secretKey: k, remoteRef: {key: team-a/%2e%2e/db}}]\n", "remoteRef.key"},
		{"control character in remoteRef.key", esHead + "  data: [{secretKey: k, remoteRef: {key: \"team-a/\\tdb\"}}]\n", "remoteRef.key"},
		{"traversal in extract.key", esHead + "  dataFrom: [{extract: {key: ../team-b/db}}]\n", "extract.key"},
		{"traversal in find.path", esHead + "  dataFrom: [{find: {path: team-a/..}}]\n", "find.path"},
		{"traversal in dynamic.path", esHead + "  dataFrom: [{dynamic: {path: team-a/../sys/policies/acl/x, method: POST}}]\n", "dynamic.path"},
		{"traversal in decrypt.mount", esHead + "  data: [{secretKey: k, decrypt: {mount: team-a/../transit, key: app, ciphertext: 'vault:v1:x'}}]\n", "decrypt.mount"},
		{"slash in decrypt.key", esHead + "  data: [{secretKey: k, decrypt: {key: a/b, ciphertext: 'vault:v1:x'}}]\n", "decrypt.key"},
		{"bootstrap token template type", esHead + "  target: {template: {type: bootstrap.kubernetes.io/token}}\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.target.template.type"},
		{"unknown store kind", "apiVersion: secretsync.dev/v1alpha1\nkind: ExternalSecret\nmetadata: {name: bad}\nspec:\n  secretStoreRef: {name: s, kind: Vault}\n  data: [{secretKey: k, remoteRef: {key: a}}]\n", "spec.secretStoreRef.kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(c.manifest), &u.Object); err != nil {
				t.Fatalf("test manifest: %v", err)
			}
			if u.GetKind() != "ClusterSecretStore" {
				u.SetNamespace(ns)
			}
			err := kube.Client.Create(context.Background(), u)
			if err == nil {
				_ = kube.Client.Delete(context.Background(), u)
				t.Fatalf("accepted, want rejection naming %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("rejected without naming %q: %v", c.want, err)
			}
		})
	}
	t.Run("a valid ExternalSecret with refreshInterval 0 is accepted", func(t *testing.T) {
		u := &unstructured.Unstructured{}
		// SSM names start with a slash and a find path may end with one: both canonical.
		_ = yaml.Unmarshal([]byte(strings.Replace(esHead, "name: bad", "name: good", 1)+"  refreshInterval: '0'\n  data: [{secretKey: k, remoteRef: {key: /team-a/db.v2}}]\n  dataFrom: [{find: {path: /team-a/app/}}]\n"), &u.Object)
		u.SetNamespace(ns)
		if err := kube.Client.Create(context.Background(), u); err != nil {
			t.Fatalf("rejected: %v", err)
		}
	})
}
