package provider

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrNotCanonical is wrapped by CheckKey: the key or path could be read differently
// by the operator's admission check and by the backend (dot segments, empty segments,
// backslashes, percent-encoding, control characters). Admission refuses these with
// CEL; CheckKey repeats the rule in the provider, before any request is built, so a
// stored object that predates the CEL rule cannot reach outside its mount either.
var ErrNotCanonical = errors.New("not a canonical key")

// CheckKey reports why key is not canonical (nil when it is). One leading and one
// trailing slash are allowed (SSM names start with "/"; a trailing slash on a folder
// does not matter); every segment between them must be non-empty and not "." or "..".
// The returned error never quotes the key: it may be read from backend content.
func CheckKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty: %w", ErrNotCanonical)
	}
	for _, r := range key {
		switch {
		case r == '\\':
			return fmt.Errorf("backslash: %w", ErrNotCanonical)
		case r == '%':
			return fmt.Errorf("percent sign: %w", ErrNotCanonical)
		case unicode.IsControl(r) || r == unicode.ReplacementChar:
			return fmt.Errorf("control or invalid character: %w", ErrNotCanonical)
		}
	}
	inner := strings.TrimPrefix(key, "/")
	inner = strings.TrimSuffix(inner, "/")
	if inner == "" {
		return fmt.Errorf("no segment: %w", ErrNotCanonical)
	}
	for _, seg := range strings.Split(inner, "/") {
		switch seg {
		case "":
			return fmt.Errorf("empty segment: %w", ErrNotCanonical)
		case ".", "..":
			return fmt.Errorf("%q segment: %w", seg, ErrNotCanonical)
		}
	}
	return nil
}

// UnderMount joins mount and rel (both canonical, slashes at their ends ignored)
// and checks the result stays under mount: the request path a provider sends must
// be a prefix-extension of the mount the field names.
func UnderMount(mount, rel string) (string, error) {
	if err := CheckKey(mount); err != nil {
		return "", fmt.Errorf("mount: %w", err)
	}
	if err := CheckKey(rel); err != nil {
		return "", err
	}
	m := strings.Trim(mount, "/")
	p := m + "/" + strings.Trim(rel, "/")
	if !strings.HasPrefix(p, m+"/") {
		return "", fmt.Errorf("outside mount: %w", ErrNotCanonical)
	}
	return p, nil
}
