package provider

import (
	"errors"
	"strings"
)

// Error is how backends report failures: Kind is one of the sentinels, Code a short
// backend error code (e.g. "ResourceNotFoundException", "403") and Err the raw cause.
// The raw cause may quote request or response bodies and therefore secret values: it
// is kept for errors.Is/As only and never rendered by SafeMessage.
type Error struct {
	Kind error
	Code string
	Err  error
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + " (" + e.Code + ")"
}
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Wrap builds an *Error; kind is a sentinel of this package.
func Wrap(kind error, code string, cause error) error {
	return &Error{Kind: kind, Code: code, Err: cause}
}

// SafeMessage renders err for places that reach users or logs (conditions, events,
// logs). It keeps our own context (field paths, key names) that wrapped an *Error and
// drops the backend's raw text below it. An error without an *Error is rendered as
// its sentinel only (ErrCredentials, which our own Kubernetes lookups produce with
// names and no values, is kept whole): a raw backend error may quote anything.
func SafeMessage(err error) string {
	if err == nil {
		return ""
	}
	var pe *Error
	if !errors.As(err, &pe) {
		//nolint:errorlint // kind is a bare sentinel (Classify's result), compared by identity
		switch kind := Classify(err); kind {
		case ErrCredentials:
			return err.Error()
		case nil:
			return "backend error"
		default:
			return kind.Error()
		}
	}
	safe := pe.Error()
	// Our context is the text before the *Error's rendering, which fmt.Errorf("...: %w")
	// placed in front of it.
	full := err.Error()
	if i := strings.LastIndex(full, safe); i >= 0 {
		return full[:i] + safe
	}
	return safe
}

// Classify maps err to the sentinel it wraps (nil when none).
func Classify(err error) error {
	for _, s := range []error{ErrNotAllowed, ErrNotFound, ErrAccessDenied, ErrAuth, ErrThrottled, ErrUnavailable, ErrInvalid, ErrCredentials} {
		if errors.Is(err, s) {
			return s
		}
	}
	return nil
}
