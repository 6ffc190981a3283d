package externalsecret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/template"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// templateFuncs is the fixed allowlist of pure functions. Nothing here reads files,
// the environment, the network or other objects.
var templateFuncs = template.FuncMap{
	"b64enc":     func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"b64dec":     func(s string) (string, error) { b, err := base64.StdEncoding.DecodeString(s); return string(b), err },
	"upper":      strings.ToUpper,
	"lower":      strings.ToLower,
	"title":      title,
	"trim":       strings.TrimSpace,
	"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
	"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
	"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	"quote":      func(s string) string { return fmt.Sprintf("%q", s) },
	"squote":     func(s string) string { return "'" + s + "'" },
	"toJson":     toJSON,
	"fromJson":   fromJSON,
	"indent":     func(n int, s string) string { return indent(n, s) },
	"nindent":    func(n int, s string) string { return "\n" + indent(n, s) },
	"default": func(def, v any) any {
		if isEmpty(v) {
			return def
		}
		return v
	},
	"join":      func(sep string, l []any) string { return joinAny(sep, l) },
	"split":     func(sep, s string) []any { return toAny(strings.Split(s, sep)) },
	"contains":  func(sub, s string) bool { return strings.Contains(s, sub) },
	"hasPrefix": func(p, s string) bool { return strings.HasPrefix(s, p) },
	"hasSuffix": func(p, s string) bool { return strings.HasSuffix(s, p) },
}

func title(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func fromJSON(s string) (any, error) {
	var v any
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	case bool:
		return !x
	}
	return false
}

func joinAny(sep string, l []any) string {
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, sep)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// rendered is the target Secret's desired content.
type rendered struct {
	data        map[string][]byte
	secretType  string
	labels      map[string]string
	annotations map[string]string
}

// render applies the template (if any) to the fetched data. Template errors name the
// key whose template failed, never data: text/template errors can quote values, so
// only the template's key and a fixed description are reported.
func render(es *v1alpha1.ExternalSecret, data map[string][]byte) (rendered, *outcome) {
	t := es.Spec.Target.Template
	if t == nil {
		return rendered{data: data}, nil
	}
	out := rendered{secretType: t.Type, labels: t.Metadata.Labels, annotations: t.Metadata.Annotations, data: map[string][]byte{}}
	if t.MergePolicy == v1alpha1.TemplateMerge || len(t.Data) == 0 {
		for k, v := range data {
			out.data[k] = v
		}
	}
	input := make(map[string]string, len(data))
	for k, v := range data {
		input[k] = string(v)
	}
	keys := make([]string, 0, len(t.Data))
	for k := range t.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !validKey.MatchString(k) {
			o := fail(v1alpha1.ReasonInvalidKey, false, "spec.target.template.data: key %q is not a valid Secret key", k)
			return rendered{}, &o
		}
		tpl, err := template.New(k).Option("missingkey=error").Funcs(templateFuncs).Parse(t.Data[k])
		if err != nil {
			o := fail(v1alpha1.ReasonInvalidTemplate, false, "spec.target.template.data[%s]: template does not parse", k)
			return rendered{}, &o
		}
		var buf bytes.Buffer
		if err := tpl.Execute(&buf, input); err != nil {
			o := fail(v1alpha1.ReasonInvalidTemplate, false, "spec.target.template.data[%s]: template failed (a missing key or a function error)", k)
			return rendered{}, &o
		}
		out.data[k] = buf.Bytes()
	}
	return out, nil
}
