package vault

import (
	"context"
	"encoding/json"
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
	lease, err := leaseOrCertificate(sec, time.Now())
	if err != nil {
		return nil, provider.Lease{}, fmt.Errorf("vault dynamic secret %q: %w", path, err)
	}
	return data, lease, nil
}

// leaseOrCertificate: a lease when the answer has one; otherwise a certificate when
// the answer has a serial number and an expiration (unix seconds), as PKI's issue and
// sign do. An answer with neither is refused: with no end time the operator would
// have to re-issue at once and forever.
func leaseOrCertificate(sec *api.Secret, now time.Time) (provider.Lease, error) {
	if sec.LeaseID != "" || sec.LeaseDuration > 0 {
		return leaseOf(sec), nil
	}
	serial, _ := sec.Data["serial_number"].(string)
	exp, ok := unixSeconds(sec.Data["expiration"])
	if serial == "" || !ok {
		// Not a dynamic secret: fix the spec (InvalidSpec), do not retry the write.
		return provider.Lease{}, fmt.Errorf("answer has neither a lease nor a certificate serial_number and expiration: %w", provider.Wrap(provider.ErrInvalid, "NoLease", provider.ErrSpec))
	}
	ttl := time.Unix(exp, 0).Sub(now)
	if ttl <= 0 {
		return provider.Lease{}, fmt.Errorf("certificate %s expired on issue: %w", serial, errInvalid)
	}
	return provider.Lease{ID: serial, TTL: ttl, Certificate: true}, nil
}

// unixSeconds reads a JSON number (json.Number with UseNumber, or float64).
func unixSeconds(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil && i > 0
	case float64:
		return int64(n), n > 0
	}
	return 0, false
}

var _ provider.CertRevoker = (*Client)(nil)

// RevokeCertificate revokes a certificate issued from path (e.g. pki/issue/web) by
// its serial number, through the same mount: <mount>/revoke.
func (c *Client) RevokeCertificate(ctx context.Context, path, serial string) error {
	p, err := dynamicPath(path)
	if err != nil {
		return err
	}
	mount, _, _ := strings.Cut(p, "/")
	_, err = c.call(ctx, func(tok string) (*api.Secret, error) {
		return c.api.Write(ctx, tok, mount+"/revoke", map[string]any{"serial_number": serial})
	})
	if err != nil {
		return fmt.Errorf("vault revoke certificate %q: %w", serial, leaseError(err))
	}
	return nil
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
