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
	mount = mountOr(mount, defaultTransitMount)
	key = strings.Trim(key, "/")
	if key == "" {
		return nil, fmt.Errorf("vault transit decrypt: key is empty: %w", errInvalid)
	}
	path := mount + "/decrypt/" + key
	sec, err := c.call(ctx, func(tok string) (*api.Secret, error) {
		return c.api.Write(ctx, tok, path, map[string]any{"ciphertext": ciphertext})
	})
	if err != nil {
		return nil, fmt.Errorf("vault transit decrypt with key %q on mount %q: %w", key, mount, err)
	}
	var pt string
	if sec != nil {
		pt, _ = sec.Data["plaintext"].(string)
	}
	if sec == nil || sec.Data["plaintext"] == nil {
		return nil, fmt.Errorf("vault transit decrypt with key %q on mount %q: no plaintext returned: %w", key, mount, errInvalid)
	}
	b, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, fmt.Errorf("vault transit decrypt with key %q on mount %q: plaintext is not base64: %w", key, mount, errInvalid)
	}
	return b, nil
}
