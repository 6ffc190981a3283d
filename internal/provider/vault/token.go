package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/internal/provider"
)

// errClosed is returned by calls on a closed Client.
var errClosed = fmt.Errorf("vault client is closed: %w", errUnavailable)

// token returns the current token, logging in when there is none or it is about to
// expire. Concurrent callers wait for one login.
func (c *Client) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", errClosed
	}
	if c.cur.token != "" && !c.expiringLocked() {
		return c.cur.token, nil
	}
	return c.loginLocked(ctx)
}

// relogin logs in again unless another caller already replaced the rejected token.
func (c *Client) relogin(ctx context.Context, rejected string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return "", errClosed
	}
	if c.cur.token != rejected && c.cur.token != "" {
		return c.cur.token, nil
	}
	return c.loginLocked(ctx)
}

// expiringLocked: a token within the last tenth of its TTL (at most 30s) is treated
// as expired, so no call starts with a token that dies in flight.
func (c *Client) expiringLocked() bool {
	if c.expires.IsZero() || !c.cur.owned {
		// A user's token cannot be replaced by logging in: it is renewed (if it
		// can be) and otherwise used until Vault refuses it.
		return false
	}
	margin := min(c.cur.ttl/10, 30*time.Second)
	return !c.clock.Now().Before(c.expires.Add(-margin))
}

func (c *Client) loginLocked(ctx context.Context) (string, error) {
	info, err := c.auth.login(ctx, c.api)
	if err != nil {
		return "", err
	}
	c.gen++
	c.cur = info
	c.expires = time.Time{}
	if info.ttl > 0 {
		c.expires = c.clock.Now().Add(info.ttl)
	}
	if info.owned {
		c.logins.Add(1)
		if c.onLogin != nil {
			c.onLogin(c.auth.method())
		}
	}
	switch {
	case info.renewable && info.ttl > 0:
		go c.renewLoop(c.gen, info)
	case !info.owned:
		go c.watchUserToken(c.gen, info)
	}
	return info.token, nil
}

// minRenewTTL: below this a renewal is not worth it; the token is left to expire and
// the next call logs in.
const minRenewTTL = 3 * time.Second

// renewLoop renews the token of login gen at two thirds of its TTL until the client
// logs in again, is closed, or Vault stops extending the token (max TTL reached).
// A failed renewal (Vault unreachable beyond the call's own failover retries) is
// tried again at two thirds of the time left, so it is retried until the token's
// TTL would run out. A user's token (tokenSecretRef) is renewed the same way.
// tokenLog: renewals run in the background, outside any reconcile's logger.
var tokenLog = log.Log.WithName("vault-token")

func (c *Client) renewLoop(gen uint64, info tokenInfo) {
	ttl := info.ttl
	for {
		if ttl < minRenewTTL {
			return
		}
		select {
		case <-c.bg.Done():
			return
		case <-c.clock.After(ttl * 2 / 3):
		}
		c.mu.Lock()
		stale := c.gen != gen || c.closed
		c.mu.Unlock()
		if stale {
			return
		}
		ctx, cancel := context.WithTimeout(c.bg, 30*time.Second)
		sec, err := c.api.Write(ctx, info.token, "auth/token/renew-self", map[string]any{"increment": int64(info.increment / time.Second)})
		cancel()
		c.mu.Lock()
		if c.gen != gen || c.closed {
			c.mu.Unlock()
			return
		}
		switch {
		case err != nil && statusOf(err) == http.StatusForbidden:
			// Revoked or expired: drop it; the next call logs in.
			tokenLog.V(1).Info("token renewal refused; the next call logs in")
			c.cur.token = ""
			c.mu.Unlock()
			return
		case err != nil:
			// Vault unreachable: try again within the time left.
			ttl = c.expires.Sub(c.clock.Now())
			tokenLog.V(1).Info("token renewal failed; retrying within its TTL", "error", provider.SafeMessage(err), "left", ttl.String())
		case sec == nil || sec.Auth == nil:
			c.mu.Unlock()
			return
		default:
			ttl = time.Duration(sec.Auth.LeaseDuration) * time.Second
			c.expires = c.clock.Now().Add(ttl)
			tokenLog.V(1).Info("token renewed", "ttl", ttl.String(), "renewable", sec.Auth.Renewable)
			if !sec.Auth.Renewable {
				ttl = 0
			}
		}
		c.mu.Unlock()
	}
}

// userTokenRecheck is how long a user token's lookup waits after Vault could not
// answer it.
const userTokenRecheck = time.Minute

// watchUserToken looks a user's token (tokenSecretRef) up in the background and,
// if it is renewable and expires, renews it like a login's token. In the background
// so that the user's token works from the first call whatever its policy allows: a
// lookup Vault refuses (no lookup-self in the policy, a token already gone) leaves
// the token unrenewed, and the calls tell whether it works.
func (c *Client) watchUserToken(gen uint64, info tokenInfo) {
	for {
		ctx, cancel := context.WithTimeout(c.bg, 30*time.Second)
		sec, err := c.api.Read(ctx, info.token, "auth/token/lookup-self", nil)
		cancel()
		switch code := statusOf(err); {
		case err == nil:
			if l, ok := userTokenLife(sec); ok {
				c.mu.Lock()
				fresh := c.gen == gen && !c.closed
				if fresh {
					c.expires = c.clock.Now().Add(l.ttl)
				}
				c.mu.Unlock()
				if fresh {
					info.ttl, info.increment, info.renewable = l.ttl, l.increment, true
					c.renewLoop(gen, info)
				}
			}
			return
		case code >= 400 && code < 500 && code != http.StatusTooManyRequests:
			return
		}
		select {
		case <-c.bg.Done():
			return
		case <-c.clock.After(userTokenRecheck):
		}
	}
}

// userTokenLife is a lookup-self answer's TTL left and creation TTL (what a
// renewal asks for), when the token is renewable and expires.
func userTokenLife(sec *api.Secret) (tokenInfo, bool) {
	if sec == nil {
		return tokenInfo{}, false
	}
	ttl, err := sec.TokenTTL()
	renewable, _ := sec.TokenIsRenewable()
	if err != nil || !renewable || ttl <= 0 {
		return tokenInfo{}, false
	}
	l := tokenInfo{ttl: ttl, increment: ttl}
	if created, ok := sec.Data["creation_ttl"].(json.Number); ok {
		// Bounded so that the Duration cannot overflow into a negative increment.
		if n, err := created.Int64(); err == nil && n > 0 && n < int64(math.MaxInt64/time.Second) {
			l.increment = time.Duration(n) * time.Second
		}
	}
	return l, true
}

// Close stops renewal and revokes the token if this client logged in for it. A
// token from tokenSecretRef belongs to the user and is left alone.
func (c *Client) Close(ctx context.Context) error {
	c.cancel()
	c.mu.Lock()
	info := c.cur
	already := c.closed
	c.closed = true
	c.cur = tokenInfo{}
	c.gen++
	c.mu.Unlock()
	if already || !info.owned || info.token == "" {
		return nil
	}
	_, err := c.api.Write(ctx, info.token, "auth/token/revoke-self", nil)
	if err != nil && statusOf(err) != http.StatusForbidden { // 403: already gone
		return fmt.Errorf("vault revoke token: %w", classify(err))
	}
	return nil
}

var _ provider.Client = (*Client)(nil)
