package vault

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/internal/provider"
)

var _ provider.Leaser = (*Client)(nil)

// Issue reads (GET) or writes (POST) a dynamic secret path such as
// database/creds/<role>. Data strings are returned as is, other values as JSON text.
func (c *Client) Issue(ctx context.Context, req provider.DynamicRequest) (map[string][]byte, provider.Lease, error) {
	path := strings.Trim(req.Path, "/")
	if path == "" {
		return nil, provider.Lease{}, fmt.Errorf("vault dynamic secret: path is empty: %w", errInvalid)
	}
	var sec *api.Secret
	var err error
	switch strings.ToUpper(req.Method) {
	case "", http.MethodGet:
		sec, err = c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Read(ctx, tok, path, nil) })
	case http.MethodPost:
		body := make(map[string]any, len(req.Parameters))
		for k, v := range req.Parameters {
			body[k] = v
		}
		sec, err = c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Write(ctx, tok, path, body) })
	default:
		return nil, provider.Lease{}, fmt.Errorf("vault dynamic secret %q: method %q is not GET or POST: %w", path, req.Method, errInvalid)
	}
	if err != nil {
		return nil, provider.Lease{}, fmt.Errorf("vault dynamic secret %q: %w", path, err)
	}
	if sec == nil || len(sec.Data) == 0 {
		return nil, provider.Lease{}, fmt.Errorf("vault dynamic secret %q: no data returned: %w", path, errNotFound)
	}
	data := make(map[string][]byte, len(sec.Data))
	for k, v := range sec.Data {
		if s, ok := v.(string); ok {
			data[k] = []byte(s)
			continue
		}
		b, err := toJSON(v)
		if err != nil {
			return nil, provider.Lease{}, fmt.Errorf("vault dynamic secret %q: key %q: %w", path, k, err)
		}
		data[k] = b
	}
	return data, leaseOf(sec), nil
}

// Renew extends a lease through sys/leases/renew. A lease Vault no longer knows
// (expired, revoked) is ErrNotFound, so the engine issues a new secret.
func (c *Client) Renew(ctx context.Context, leaseID string, increment time.Duration) (provider.Lease, error) {
	body := map[string]any{"lease_id": leaseID}
	if increment > 0 {
		body["increment"] = int64(increment / time.Second)
	}
	sec, err := c.call(ctx, func(tok string) (*api.Secret, error) { return c.api.Write(ctx, tok, "sys/leases/renew", body) })
	if err != nil {
		return provider.Lease{}, fmt.Errorf("vault renew lease %q: %w", leaseID, leaseError(err))
	}
	if sec == nil {
		return provider.Lease{}, fmt.Errorf("vault renew lease %q: empty response: %w", leaseID, errUnavailable)
	}
	l := leaseOf(sec)
	if l.ID == "" {
		l.ID = leaseID
	}
	return l, nil
}

// Revoke revokes a lease now (Vault drops e.g. the database role).
func (c *Client) Revoke(ctx context.Context, leaseID string) error {
	_, err := c.call(ctx, func(tok string) (*api.Secret, error) {
		return c.api.Write(ctx, tok, "sys/leases/revoke", map[string]any{"lease_id": leaseID})
	})
	if err != nil {
		return fmt.Errorf("vault revoke lease %q: %w", leaseID, leaseError(err))
	}
	return nil
}

func leaseOf(sec *api.Secret) provider.Lease {
	return provider.Lease{ID: sec.LeaseID, TTL: time.Duration(sec.LeaseDuration) * time.Second, Renewable: sec.Renewable}
}

// leaseError turns Vault's 400 "lease not found"/"invalid lease" into ErrNotFound.
func leaseError(err error) error {
	if statusOf(err) == http.StatusBadRequest {
		msg := vaultErrors(err)
		if strings.Contains(msg, "not found") || strings.Contains(msg, "invalid lease") || strings.Contains(msg, "expired") {
			return wrap(provider.ErrNotFound, "400", err)
		}
	}
	return classify(err)
}
