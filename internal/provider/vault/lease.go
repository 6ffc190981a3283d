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
	path, err := dynamicPath(req.Path)
	if err != nil {
		return nil, provider.Lease{}, err
	}
	var sec *api.Secret
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
	data, err := dynamicData(sec)
	if err != nil {
		return nil, provider.Lease{}, fmt.Errorf("vault dynamic secret %q: %w", path, err)
	}
	return data, leaseOf(sec), nil
}

// dynamicPath checks a dynamic secret path before any request: canonical, and below
// its first segment, the mount it is for (allowedKeys and policies are written for
// that mount; "team-a/../sys/policies/acl/x" must not reach sys/). A path that is
// only a mount names no secret.
func dynamicPath(p string) (string, error) {
	if err := provider.CheckKey(p); err != nil {
		return "", refuse("vault dynamic secret: path", err)
	}
	mount, rest, ok := strings.Cut(strings.Trim(p, "/"), "/")
	if !ok {
		return "", fmt.Errorf("vault dynamic secret: path names a mount but nothing under it: %w", errInvalid)
	}
	path, err := provider.UnderMount(mount, rest)
	if err != nil {
		return "", refuse("vault dynamic secret: path", err)
	}
	return path, nil
}

// dynamicData is a dynamic secret answer's data: strings as is, other values as
// JSON text. An answer without data is not "not found" (the engine would drop the
// Secret's keys): Vault names a missing role with an error status.
func dynamicData(sec *api.Secret) (map[string][]byte, error) {
	if sec == nil || len(sec.Data) == 0 {
		return nil, fmt.Errorf("answer without data: %w", errEmptyResponse)
	}
	data := make(map[string][]byte, len(sec.Data))
	for k, v := range sec.Data {
		if s, ok := v.(string); ok {
			data[k] = []byte(s)
			continue
		}
		b, err := toJSON(v)
		if err != nil {
			return nil, err // names no data key: they are the backend's
		}
		data[k] = b
	}
	return data, nil
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
