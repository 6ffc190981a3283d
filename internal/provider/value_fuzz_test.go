package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// Seed corpora are in testdata/fuzz/<FuzzName>/; hack/fuzz.sh runs every target.

// valueDecodeOne decodes b as one JSON value, numbers as written, as Property and
// Map must.
func valueDecodeOne(b []byte) (any, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() || dec.InputOffset() != int64(len(bytes.TrimRight(b, " \t\r\n"))) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func TestValueJSONIsOneValue(t *testing.T) {
	cases := []struct {
		name, value string
		ok          bool
	}{
		{"object", `{"a":"x"}`, true},
		{"white space around", " \n{\"a\":\"x\"}\r\n\t ", true},
		{"second object", `{"a":"x"}{"a":"y"}`, false},
		{"garbage after", `{"a":"x"} trailing`, false},
		{"stray brace", `{"a":"x"}}`, false},
		{"not JSON", `a=x`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, perr := Property([]byte(c.value), "a")
			_, merr := Map([]byte(c.value))
			if (perr == nil) != c.ok || (merr == nil) != c.ok {
				t.Errorf("Property: %v, Map: %v; want ok=%v", perr, merr, c.ok)
			}
			if !c.ok && (!errors.Is(perr, ErrNotJSON) || !errors.Is(merr, ErrNotJSON)) {
				t.Errorf("errors %v, %v; want ErrNotJSON", perr, merr)
			}
		})
	}
}

// valueIsSubValue reports whether out is what Property returns for some node of the
// decoded tree v: a string node as its text, any other node as its JSON.
func valueIsSubValue(v any, out []byte) bool {
	if s, ok := v.(string); ok && s == string(out) {
		return true
	}
	if b, err := json.Marshal(v); err == nil && bytes.Equal(b, out) {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for _, c := range x {
			if valueIsSubValue(c, out) {
				return true
			}
		}
	case []any:
		for _, c := range x {
			if valueIsSubValue(c, out) {
				return true
			}
		}
	}
	return false
}

// FuzzProperty: never panics, fails only with ErrNotJSON or ErrNoProperty, and what it
// returns is a node of the input (no bytes from anywhere else).
func FuzzProperty(f *testing.F) {
	f.Fuzz(func(t *testing.T, value []byte, path string) {
		out, err := Property(value, path)
		if err != nil {
			if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrNoProperty) {
				t.Fatalf("error %v", err)
			}
			return
		}
		root, derr := valueDecodeOne(value)
		if derr != nil {
			t.Fatalf("Property succeeded on a value that does not decode: %v", derr)
		}
		if _, ok := root.(map[string]any); !ok {
			t.Fatalf("Property succeeded on a non-object %T", root)
		}
		if !valueIsSubValue(root, out) {
			t.Fatalf("result %q is not a sub-value of the input", out)
		}
	})
}

// FuzzMap: never panics; on success every top-level key is kept, strings as their
// text and other values as their JSON.
func FuzzMap(f *testing.F) {
	f.Fuzz(func(t *testing.T, value []byte) {
		m, err := Map(value)
		if err != nil {
			if !errors.Is(err, ErrNotJSON) {
				t.Fatalf("error %v", err)
			}
			return
		}
		root, derr := valueDecodeOne(value)
		obj, ok := root.(map[string]any)
		if derr != nil || !ok {
			t.Fatalf("Map succeeded on %T, %v", root, derr)
		}
		if len(m) != len(obj) {
			t.Fatalf("%d keys, want %d", len(m), len(obj))
		}
		for k, v := range obj {
			want, _ := json.Marshal(v)
			if s, ok := v.(string); ok {
				want = []byte(s)
			}
			if !bytes.Equal(m[k], want) {
				t.Fatalf("key %q = %q, want %q", k, m[k], want)
			}
		}
	})
}

// FuzzDecode: never panics; None keeps the bytes, Base64 and Base64URL only shrink
// or fail with ErrDecode, Auto never fails, anything else is an error.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, value []byte, strategy string) {
		out, err := Decode(value, strategy)
		switch strategy {
		case "", "None":
			if err != nil || !bytes.Equal(out, value) {
				t.Fatalf("None changed the value: %q, %v", out, err)
			}
		case "Base64", "Base64URL":
			if err != nil && !errors.Is(err, ErrDecode) {
				t.Fatalf("error %v", err)
			}
			if err == nil && len(out) > len(value) {
				t.Fatalf("decoded %d bytes from %d", len(out), len(value))
			}
		case "Auto":
			if err != nil {
				t.Fatalf("Auto failed: %v", err)
			}
			if !bytes.Equal(out, value) && len(out) > len(value) {
				t.Fatalf("Auto grew the value: %d bytes from %d", len(out), len(value))
			}
		default:
			if err == nil {
				t.Fatalf("unknown strategy %q accepted", strategy)
			}
		}
	})
}
