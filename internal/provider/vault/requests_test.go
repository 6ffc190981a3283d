package vault

import "testing"

func TestOperation(t *testing.T) {
	tests := []struct {
		name, method, path string
		list               bool
		want               string
	}{
		{"KV v2 read", "GET", "/v1/secret/data/team-a/db", false, "read"},
		{"KV list", "GET", "/v1/secret/metadata/team-a/", true, "list"},
		{"LIST verb", "LIST", "/v1/secret/metadata/team-a", false, "list"},
		{"AppRole login", "PUT", "/v1/auth/approle-team-a/login", false, "login"},
		{"nested auth mount login", "POST", "/v1/auth/k8s/cluster-1/login", false, "login"},
		{"a KV key named login is a read", "GET", "/v1/auth/approle/login", false, "read"},
		{"token lookup", "GET", "/v1/auth/token/lookup-self", false, "token_lookup"},
		{"token renew", "PUT", "/v1/auth/token/renew-self", false, "token_renew"},
		{"token revoke", "PUT", "/v1/auth/token/revoke-self", false, "token_revoke"},
		{"lease renew", "PUT", "/v1/sys/leases/renew", false, "lease_renew"},
		{"lease revoke", "PUT", "/v1/sys/leases/revoke", false, "lease_revoke"},
		{"lease lookup", "PUT", "/v1/sys/leases/lookup", false, "lease_lookup"},
		{"mount probe", "GET", "/v1/sys/internal/ui/mounts/secret", false, "mount_lookup"},
		{"transit decrypt", "PUT", "/v1/transit/decrypt/app", false, "transit_decrypt"},
		{"transit decrypt on another mount", "PUT", "/v1/team-a-transit/decrypt/app", false, "transit_decrypt"},
		{"dynamic secret read", "GET", "/v1/database/creds/app", false, "read"},
		{"dynamic secret write", "PUT", "/v1/aws/sts/app", false, "write"},
		{"delete", "DELETE", "/v1/secret/data/x", false, "delete"},
		{"unknown method", "PATCH", "/v1/secret/data/x", false, "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := operation(tc.method, tc.path, tc.list); got != tc.want {
				t.Fatalf("operation(%s %s) = %q, want %q", tc.method, tc.path, got, tc.want)
			}
		})
	}
}
