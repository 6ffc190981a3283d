package provider

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSafeMessage(t *testing.T) {
	const canary = "s3cr3t-canary"
	raw := errors.New("response body: " + canary)
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"wrapped provider error keeps our context", fmt.Errorf("spec.data[0]: key %q: %w", "db", Wrap(ErrNotFound, "ResourceNotFoundException", raw)), `spec.data[0]: key "db": not found (ResourceNotFoundException)`},
		{"bare provider error", Wrap(ErrThrottled, "", raw), "throttled"},
		{"raw backend error", raw, "backend error"},
		{"raw error wrapping a sentinel", fmt.Errorf("%w: %v", ErrAuth, raw), "authentication failed"}, //nolint:errorlint // models a backend error that wraps only the sentinel and quotes raw as text
		{"our credential lookup keeps names", fmt.Errorf("secret ns/name: %w", ErrCredentials), "secret ns/name: credentials not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := SafeMessage(c.err)
			if got != c.want {
				t.Errorf("SafeMessage = %q, want %q", got, c.want)
			}
			if strings.Contains(got, canary) {
				t.Errorf("canary leaked: %q", got)
			}
		})
	}
}
