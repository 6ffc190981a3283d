package vault

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/internal/provider"
)

func TestLeaseOrCertificate(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name     string
		sec      *api.Secret
		want     provider.Lease
		wantSpec bool // refused as not a dynamic secret
	}{
		{"database lease", &api.Secret{LeaseID: "database/creds/app/x", LeaseDuration: 3600, Renewable: true},
			provider.Lease{ID: "database/creds/app/x", TTL: time.Hour, Renewable: true}, false},
		{"PKI certificate (json.Number)", &api.Secret{Data: map[string]any{"serial_number": "1a:2b", "expiration": json.Number("1800000020")}},
			provider.Lease{ID: "1a:2b", TTL: 20 * time.Second, Certificate: true}, false},
		{"PKI certificate (float)", &api.Secret{Data: map[string]any{"serial_number": "1a:2b", "expiration": float64(1_800_000_060)}},
			provider.Lease{ID: "1a:2b", TTL: time.Minute, Certificate: true}, false},
		{"neither lease nor certificate", &api.Secret{Data: map[string]any{"value": "x"}}, provider.Lease{}, true},
		{"serial without expiration", &api.Secret{Data: map[string]any{"serial_number": "1a"}}, provider.Lease{}, true},
		{"expired on issue", &api.Secret{Data: map[string]any{"serial_number": "1a", "expiration": json.Number("1700000000")}}, provider.Lease{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := leaseOrCertificate(c.sec, now)
			if c.want == (provider.Lease{}) {
				if err == nil {
					t.Fatalf("= %+v, want an error", got)
				}
				if errors.Is(err, provider.ErrSpec) != c.wantSpec {
					t.Fatalf("err %v: ErrSpec = %v, want %v", err, errors.Is(err, provider.ErrSpec), c.wantSpec)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}
