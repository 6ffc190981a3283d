package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/secretsync/secretsync/internal/provider"
)

// leases is the dynamic-secret side of the backend: Issue hands out numbered
// credentials under a lease, Renew extends it, Revoke ends it. Controller tests use
// it to check that no lease is leaked, renewed late or revoked twice.
type leases struct {
	mu        sync.Mutex
	ttl       time.Duration
	renewable bool
	issued    int
	live      map[string]bool // lease id -> not revoked
	revokeErr error
	certs     bool // issue certificates (no lease) instead of leases
	renewals  int
	revokes   int
}

// SetLeases sets the TTL and renewability of leases issued from now on.
func (b *Backend) SetLeases(ttl time.Duration, renewable bool) {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	b.l.ttl, b.l.renewable = ttl, renewable
}

// SetCertificates makes Issue answer like Vault PKI: a certificate with a serial
// number and an expiration ttl from now, and no lease.
func (b *Backend) SetCertificates(ttl time.Duration) {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	b.l.ttl, b.l.renewable, b.l.certs = ttl, false, true
}

// FailRevoke makes Revoke return err (nil restores it); other calls still work.
func (b *Backend) FailRevoke(err error) {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	b.l.revokeErr = err
}

// LiveLeases are the ids issued and not revoked.
func (b *Backend) LiveLeases() []string {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	var out []string
	for id, live := range b.l.live {
		if live {
			out = append(out, id)
		}
	}
	return out
}

// LeaseCalls is how many Renew and Revoke calls were made.
func (b *Backend) LeaseCalls() (renewals, revokes int) {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	return b.l.renewals, b.l.revokes
}

func (c *client) Issue(_ context.Context, req provider.DynamicRequest) (map[string][]byte, provider.Lease, error) {
	if err := c.b.fail(); err != nil {
		return nil, provider.Lease{}, err
	}
	l := &c.b.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live == nil {
		l.live = map[string]bool{}
	}
	l.issued++
	id := fmt.Sprintf("%s/%d", req.Path, l.issued)
	l.live[id] = true
	ttl := l.ttl
	if ttl == 0 {
		ttl = time.Hour
	}
	if l.certs {
		serial := fmt.Sprintf("00:%02x", l.issued)
		delete(l.live, id)
		l.live[serial] = true
		data := map[string][]byte{"certificate": fmt.Appendf(nil, "cert-%d", l.issued), "private_key": fmt.Appendf(nil, "key-%d", l.issued), "serial_number": []byte(serial)}
		return data, provider.Lease{ID: serial, TTL: ttl, Certificate: true}, nil
	}
	data := map[string][]byte{"username": fmt.Appendf(nil, "user-%d", l.issued), "password": fmt.Appendf(nil, "pass-%d", l.issued)}
	return data, provider.Lease{ID: id, TTL: ttl, Renewable: l.renewable}, nil
}

func (c *client) Renew(_ context.Context, id string, increment time.Duration) (provider.Lease, error) {
	if err := c.b.fail(); err != nil {
		return provider.Lease{}, err
	}
	l := &c.b.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renewals++
	if !l.live[id] {
		return provider.Lease{}, provider.Wrap(provider.ErrNotFound, "LeaseNotFound", nil)
	}
	return provider.Lease{ID: id, TTL: increment, Renewable: l.renewable}, nil
}

func (c *client) Revoke(_ context.Context, id string) error {
	if err := c.b.fail(); err != nil {
		return err
	}
	l := &c.b.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revokes++
	if l.revokeErr != nil {
		return l.revokeErr
	}
	if !l.live[id] {
		return provider.Wrap(provider.ErrNotFound, "LeaseNotFound", nil)
	}
	l.live[id] = false
	return nil
}

var _ provider.Leaser = (*client)(nil)

// RevokeCertificate revokes a certificate by serial number.
func (c *client) RevokeCertificate(ctx context.Context, _ string, serial string) error {
	return c.Revoke(ctx, serial)
}

// Issued is how many dynamic secrets were issued.
func (b *Backend) Issued() int {
	b.l.mu.Lock()
	defer b.l.mu.Unlock()
	return b.l.issued
}

var _ provider.CertRevoker = (*client)(nil)
