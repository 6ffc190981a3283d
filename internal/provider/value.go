package provider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNoProperty and ErrNotJSON are returned by Property.
var (
	ErrNoProperty = errors.New("no such property")
	ErrNotJSON    = errors.New("value is not a JSON object")
)

// Property walks a dotted path (`a.b`; a literal dot is `\.`) into a JSON value.
// Strings come back decoded (escapes resolved); other JSON values as their JSON text.
func Property(value []byte, path string) ([]byte, error) {
	var cur any
	if err := decodeJSON(value, &cur); err != nil {
		return nil, ErrNotJSON
	}
	for _, part := range splitPath(path) {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, ErrNotJSON
		}
		next, ok := obj[part]
		if !ok {
			return nil, ErrNoProperty
		}
		cur = next
	}
	return jsonValue(cur)
}

// Map turns a JSON object into Secret data: strings as is, everything else JSON text.
func Map(value []byte) (map[string][]byte, error) {
	var obj map[string]any
	if err := decodeJSON(value, &obj); err != nil || obj == nil {
		return nil, ErrNotJSON
	}
	out := make(map[string][]byte, len(obj))
	for k, v := range obj {
		b, err := jsonValue(v)
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, nil
}

// decodeJSON decodes exactly one JSON value, numbers kept as written. Anything after
// it but white space is an error: `{"a":1} {"a":2}` or `{"a":1}garbage` is not a JSON
// object, and reading only its first part would sync half of an unparseable value.
func decodeJSON(value []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrNotJSON
	}
	return nil
}

func jsonValue(v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		return []byte(s), nil
	}
	return json.Marshal(v)
}

func splitPath(path string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(path); i++ {
		switch {
		case path[i] == '\\' && i+1 < len(path) && path[i+1] == '.':
			cur.WriteByte('.')
			i++
		case path[i] == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(path[i])
		}
	}
	return append(parts, cur.String())
}

// ErrDecode is returned by Decode when a value is not valid for the strategy.
var ErrDecode = errors.New("value does not decode")

// Decode applies a decodingStrategy (None, Base64, Base64URL, Auto). Auto tries
// standard then URL base64 and keeps the value as is when neither decodes.
func Decode(value []byte, strategy string) ([]byte, error) {
	switch strategy {
	case "", "None":
		return value, nil
	case "Base64":
		return decodeWith(base64.StdEncoding, base64.RawStdEncoding, value)
	case "Base64URL":
		return decodeWith(base64.URLEncoding, base64.RawURLEncoding, value)
	case "Auto":
		if b, err := decodeWith(base64.StdEncoding, base64.RawStdEncoding, value); err == nil {
			return b, nil
		}
		if b, err := decodeWith(base64.URLEncoding, base64.RawURLEncoding, value); err == nil {
			return b, nil
		}
		return value, nil
	}
	return nil, fmt.Errorf("unknown decodingStrategy %q", strategy)
}

func decodeWith(padded, raw *base64.Encoding, v []byte) ([]byte, error) {
	s := strings.TrimSpace(string(v))
	if b, err := padded.DecodeString(s); err == nil {
		return b, nil
	}
	if b, err := raw.DecodeString(s); err == nil {
		return b, nil
	}
	return nil, ErrDecode
}
