package convert

import (
	"fmt"
	"sort"
	"strings"
)

// node walks one object of an ESO manifest. Every field is taken out of the map
// when it is mapped (take*) or reported (drop: a warning; unsupported: an error);
// done() reports every field left over as unsupported, so nothing is ever dropped
// silently.
type node struct {
	m    map[string]any
	path string
	r    *report
}

// report collects what a conversion could not carry over, by field path.
type report struct {
	warnings []string // dropped: no effect here
	errors   []string // unsupported: behaviour cannot be reproduced

	checkTemplate TemplateChecker
}

func (r *report) warn(path, format string, a ...any) {
	r.warnings = append(r.warnings, path+": "+fmt.Sprintf(format, a...))
}

func (r *report) fail(path, format string, a ...any) {
	r.errors = append(r.errors, path+": "+fmt.Sprintf(format, a...))
}

func (n node) at(k string) string {
	if n.path == "" || strings.HasSuffix(n.path, ": ") {
		return n.path + k
	}
	return n.path + "." + k
}

func (n node) has(k string) bool { _, ok := n.m[k]; return ok }

// take removes and returns a raw field.
func (n node) take(k string) (any, bool) {
	v, ok := n.m[k]
	delete(n.m, k)
	return v, ok
}

// str takes a scalar as a string ("" when absent).
func (n node) str(k string) string {
	v, ok := n.take(k)
	if !ok || v == nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case bool, float64, int64, int:
		return fmt.Sprint(v)
	}
	n.r.fail(n.at(k), "expected a string")
	return ""
}

// child takes an object field (ok=false when absent or not an object).
func (n node) child(k string) (node, bool) {
	// A missing child still carries the report and path: a caller that ignores ok
	// gets a node whose reads are empty, not a nil report.
	miss := node{path: n.at(k), r: n.r}
	v, ok := n.take(k)
	if !ok || v == nil {
		return miss, false
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		n.r.fail(n.at(k), "expected an object")
		return miss, false
	}
	return node{m: m, path: n.at(k), r: n.r}, true
}

// list takes a list of objects.
func (n node) list(k string) []node {
	v, ok := n.take(k)
	if !ok || v == nil {
		return nil
	}
	items, isList := v.([]any)
	if !isList {
		n.r.fail(n.at(k), "expected a list")
		return nil
	}
	var out []node
	for i, it := range items {
		m, isMap := it.(map[string]any)
		if !isMap {
			n.r.fail(fmt.Sprintf("%s[%d]", n.at(k), i), "expected an object")
			continue
		}
		out = append(out, node{m: m, path: fmt.Sprintf("%s[%d]", n.at(k), i), r: n.r})
	}
	return out
}

// drop takes a field that has no effect here, with a warning when present.
func (n node) drop(k, why string) {
	if _, ok := n.take(k); ok {
		n.r.warn(n.at(k), "dropped: %s", why)
	}
}

// unsupported takes a field whose behaviour secretsync cannot reproduce.
func (n node) unsupported(k, why string) {
	if _, ok := n.take(k); ok {
		n.r.fail(n.at(k), "unsupported: %s", why)
	}
}

// done reports every field not taken.
func (n node) done() {
	if n.m == nil {
		return
	}
	keys := make([]string, 0, len(n.m))
	for k := range n.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n.r.fail(n.at(k), "unsupported: no equivalent field in secretsync")
	}
	clear(n.m)
}

// set puts v into out when it is not empty.
func set(out map[string]any, k string, v any) {
	switch v := v.(type) {
	case string:
		if v == "" {
			return
		}
	case map[string]any:
		if len(v) == 0 {
			return
		}
	case []any:
		if len(v) == 0 {
			return
		}
	case nil:
		return
	}
	out[k] = v
}

// copyScalar maps a string field under the same name.
func copyScalar(n node, out map[string]any, keys ...string) {
	for _, k := range keys {
		if n.has(k) {
			if v, _ := n.take(k); v != nil {
				if s, ok := v.(string); ok {
					set(out, k, s)
				} else {
					out[k] = v
				}
			}
		}
	}
}

// stringMap takes a map of strings.
func (n node) stringMap(k string) map[string]any {
	c, ok := n.child(k)
	if !ok {
		return nil
	}
	out := map[string]any{}
	for key, v := range c.m {
		s, isStr := v.(string)
		if !isStr {
			n.r.fail(c.at(key), "expected a string")
			continue
		}
		out[key] = s
	}
	clear(c.m)
	return out
}

// stringList takes a list of strings.
func (n node) stringList(k string) []any {
	v, ok := n.take(k)
	if !ok || v == nil {
		return nil
	}
	items, isList := v.([]any)
	if !isList {
		n.r.fail(n.at(k), "expected a list")
		return nil
	}
	for i, it := range items {
		if _, isStr := it.(string); !isStr {
			n.r.fail(fmt.Sprintf("%s[%d]", n.at(k), i), "expected a string")
			return nil
		}
	}
	return items
}
