package vault

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/secretsync/secretsync/internal/provider"
)

var _ provider.Decrypter = (*Client)(nil)

// Decrypt decrypts a Transit ciphertext ("vault:v1:...") with key on mount (default
// "transit"). Errors name the mount and key only: Vault's answer may quote the
// ciphertext, and it stays out of every rendered message.
func (c *Client) Decrypt(ctx context.Context, mount, key, ciphertext string) ([]byte, error) {
	path, err := transitPath(mount, key)
	if err != nil {
		return nil, err
	}
	mount, key = mountOr(mount, defaultTransitMount), strings.Trim(key, "/")
	// A decryption issues nothing: safe to send again across a failover.
	ctx = withIdempotent(ctx)
	sec, err := c.call(ctx, func(tok string) (*api.Secret, error) {
		return c.api.Write(ctx, tok, path, map[string]any{"ciphertext": ciphertext})
	})
	if err != nil {
		return nil, fmt.Errorf("vault transit decrypt with key %q on mount %q: %w", key, mount, err)
	}
	b, err := transitPlaintext(sec)
	if err != nil {
		return nil, fmt.Errorf("vault transit decrypt with key %q on mount %q: %w", key, mount, err)
	}
	return b, nil
}

// transitPath is "<mount>/decrypt/<key>", refused before any request unless the
// mount is canonical and the key one canonical segment: a key "../../sys/x" would
// otherwise POST the ciphertext body elsewhere.
func transitPath(mount, key string) (string, error) {
	if mount != "" {
		if err := provider.CheckKey(mount); err != nil {
			return "", refuse("vault transit decrypt: mount", err)
		}
	}
	mount = mountOr(mount, defaultTransitMount)
	if strings.Contains(key, "/") {
		return "", refuse("vault transit decrypt: key", fmt.Errorf("not a single segment: %w", provider.ErrNotCanonical))
	}
	if err := provider.CheckKey(key); err != nil {
		return "", refuse("vault transit decrypt: key", err)
	}
	path, err := provider.UnderMount(mount, "decrypt/"+key)
	if err != nil {
		return "", refuse("vault transit decrypt", err)
	}
	return path, nil
}

// transitPlaintext is a decrypt answer's base64 plaintext, decoded. An answer
// without it is Vault misbehaving (ErrUnavailable), not a bad ciphertext: Vault
// answers those with a 400.
func transitPlaintext(sec *api.Secret) ([]byte, error) {
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("answer without data: %w", errEmptyResponse)
	}
	pt, ok := sec.Data["plaintext"].(string)
	if !ok {
		return nil, fmt.Errorf("no plaintext returned: %w", errBadResponse)
	}
	b, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, fmt.Errorf("plaintext is not base64: %w", errBadResponse)
	}
	return b, nil
}
