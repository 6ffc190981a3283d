package externalsecret

import (
	"strings"
	"testing"
	"time"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/; hack/fuzz.sh runs every target.

// FuzzRender: any template over any value renders in bounded time and output, never
// panics, and fails only with InvalidTemplate or InvalidKey and a message that names
// the field, never data.
func FuzzRender(f *testing.F) {
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		data := map[string][]byte{
			"k":      []byte(value),
			"canary": []byte(templateCanary),
			"list":   []byte("a,b,c," + templateCanary),
			"json":   []byte(`{"a":[1,"` + templateCanary + `",{"b":null}],"n":1.5}`),
		}
		es := &v1alpha1.ExternalSecret{}
		es.Spec.Target.Template = &v1alpha1.Template{Data: map[string]string{"t": tmpl, "u": tmpl + tmpl}}
		start := time.Now()
		got, o := render(es, data)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("render took %v", d)
		}
		if o != nil {
			if o.reason != v1alpha1.ReasonInvalidTemplate || o.kind != terminal {
				t.Fatalf("outcome %s kind=%d; want terminal InvalidTemplate", o.reason, o.kind)
			}
			if !strings.HasPrefix(o.message, "spec.target.template.data[t]: ") && !strings.HasPrefix(o.message, "spec.target.template.data[u]: ") {
				t.Fatalf("message %q does not name the field", o.message)
			}
			if strings.Contains(o.message, templateCanary) {
				t.Fatalf("message leaks data: %q", o.message)
			}
			return
		}
		total := 0
		for _, v := range got.data {
			total += len(v)
		}
		if len(got.data) != 2 || total > maxTemplateOutput {
			t.Fatalf("%d keys, %d bytes", len(got.data), total)
		}
	})
}

// FuzzRewrite: any rule (as admission allows it) over any remote keys either renames
// every key to a valid, distinct Secret key or fails with a spec error; it never panics
// and never reports a value.
func FuzzRewrite(f *testing.F) {
	f.Fuzz(func(t *testing.T, source, target, key1, key2 string) {
		if source == "" || len(source) > 512 || len(target) > 512 { // the CRD's bounds
			return
		}
		kv := map[string][]byte{key1: []byte(templateCanary + "1"), key2: []byte(templateCanary + "2")}
		rules := []v1alpha1.Rewrite{{Regexp: v1alpha1.RewriteRegexp{Source: source, Target: target}}}
		out, o := rewrite("spec.dataFrom[0]", kv, rules)
		if o != nil {
			switch o.reason {
			case v1alpha1.ReasonInvalidSpec, v1alpha1.ReasonInvalidKey, v1alpha1.ReasonDuplicateKey:
			default:
				t.Fatalf("reason %s", o.reason)
			}
			if out != nil || o.kind != terminal || !strings.HasPrefix(o.message, "spec.dataFrom[0]") {
				t.Fatalf("outcome %+v, %d keys", o, len(out))
			}
			if strings.Contains(o.message, templateCanary) {
				t.Fatalf("message leaks a value: %q", o.message)
			}
			return
		}
		if len(out) != len(kv) {
			t.Fatalf("%d keys in, %d out", len(kv), len(out))
		}
		values := map[string]bool{}
		for k, v := range out {
			if !validKey.MatchString(k) {
				t.Fatalf("invalid key %q", k)
			}
			values[string(v)] = true
		}
		if len(values) != len(kv) {
			t.Fatalf("values lost or mixed: %v", values)
		}
	})
}
