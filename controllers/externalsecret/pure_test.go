package externalsecret

import (
	"errors"
	"testing"

	"github.com/secretsync/secretsync/api/v1alpha1"
	"github.com/secretsync/secretsync/internal/provider"
)

func TestRender(t *testing.T) {
	data := map[string][]byte{"username": []byte("app"), "password": []byte("p@ss"), "api-key": []byte("k")}
	cases := []struct {
		name     string
		template *v1alpha1.Template
		want     map[string]string
		reason   string
	}{
		{"no template copies data", nil, map[string]string{"username": "app", "password": "p@ss", "api-key": "k"}, ""},
		{"replace keeps only templated keys", &v1alpha1.Template{Data: map[string]string{"dsn": "postgres://{{ .username }}:{{ .password }}@db/app"}},
			map[string]string{"dsn": "postgres://app:p@ss@db/app"}, ""},
		{"merge keeps fetched keys, templated win", &v1alpha1.Template{MergePolicy: v1alpha1.TemplateMerge, Data: map[string]string{"username": "{{ .username | upper }}"}},
			map[string]string{"username": "APP", "password": "p@ss", "api-key": "k"}, ""},
		{"functions from the allowlist", &v1alpha1.Template{Data: map[string]string{"x": `{{ index . "api-key" | b64enc | b64dec | quote }} {{ "a,b" | split "," | join "-" }} {{ "" | default "d" }} {{ toJson (fromJson "{\"a\":1}") }}`}},
			map[string]string{"x": `"k" a-b d {"a":1}`}, ""},
		{"missing key is InvalidTemplate", &v1alpha1.Template{Data: map[string]string{"x": "{{ .nope }}"}}, nil, v1alpha1.ReasonInvalidTemplate},
		{"env is not available", &v1alpha1.Template{Data: map[string]string{"x": `{{ env "HOME" }}`}}, nil, v1alpha1.ReasonInvalidTemplate},
		{"expandenv is not available", &v1alpha1.Template{Data: map[string]string{"x": `{{ expandenv "$HOME" }}`}}, nil, v1alpha1.ReasonInvalidTemplate},
		{"invalid key is InvalidKey", &v1alpha1.Template{Data: map[string]string{"a/b": "x"}}, nil, v1alpha1.ReasonInvalidKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := &v1alpha1.ExternalSecret{}
			es.Spec.Target.Template = c.template
			got, o := render(es, data)
			if c.reason != "" {
				if o == nil || o.reason != c.reason {
					t.Fatalf("outcome = %+v, want reason %s", o, c.reason)
				}
				return
			}
			if o != nil {
				t.Fatalf("unexpected failure: %s", o.message)
			}
			if len(got.data) != len(c.want) {
				t.Fatalf("keys = %v, want %v", got.data, c.want)
			}
			for k, v := range c.want {
				if string(got.data[k]) != v {
					t.Errorf("%s = %q, want %q", k, got.data[k], v)
				}
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	in := map[string][]byte{"/prod/app/db-user": []byte("u"), "/prod/app/sub/db-pass": []byte("p")}
	cases := []struct {
		name   string
		rules  []v1alpha1.Rewrite
		want   []string
		reason string
	}{
		{"no rule leaves invalid keys", nil, nil, v1alpha1.ReasonInvalidKey},
		{"strip prefix then slashes, in order", []v1alpha1.Rewrite{rw("^/prod/app/", ""), rw("/", "-")}, []string{"db-user", "sub-db-pass"}, ""},
		{"each rule replaces all matches", []v1alpha1.Rewrite{rw("/", "_")}, []string{"_prod_app_db-user", "_prod_app_sub_db-pass"}, ""},
		{"collision is DuplicateKey", []v1alpha1.Rewrite{rw(".*/", "")}, nil, ""},
		{"bad regexp is InvalidSpec", []v1alpha1.Rewrite{rw("(", "")}, nil, v1alpha1.ReasonInvalidSpec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, o := rewrite("spec.dataFrom[0]", in, c.rules)
			if c.reason != "" {
				if o == nil || o.reason != c.reason {
					t.Fatalf("outcome = %+v, want %s", o, c.reason)
				}
				return
			}
			if o != nil {
				if c.want == nil && o.reason == v1alpha1.ReasonDuplicateKey {
					return
				}
				if c.want == nil {
					t.Fatalf("reason %s", o.reason)
				}
				t.Fatalf("unexpected failure: %s", o.message)
			}
			if c.want == nil {
				// ".*/" strips every folder: db-user and db-pass stay distinct.
				if len(got) != 2 {
					t.Fatalf("got %v", got)
				}
				return
			}
			for _, k := range c.want {
				if _, ok := got[k]; !ok {
					t.Errorf("missing key %q in %v", k, got)
				}
			}
		})
	}
	t.Run("two sources on one key is DuplicateKey", func(t *testing.T) {
		_, o := rewrite("p", map[string][]byte{"a/x": nil, "b/x": nil}, []v1alpha1.Rewrite{rw("^[ab]/", "")})
		if o == nil || o.reason != v1alpha1.ReasonDuplicateKey {
			t.Fatalf("outcome = %+v", o)
		}
	})
}

func rw(src, dst string) v1alpha1.Rewrite {
	return v1alpha1.Rewrite{Regexp: v1alpha1.RewriteRegexp{Source: src, Target: dst}}
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name, in, strategy, want string
		fails                    bool
	}{
		{"none", "aGk=", "None", "aGk=", false},
		{"empty means none", "aGk=", "", "aGk=", false},
		{"base64", "aGk=", "Base64", "hi", false},
		{"base64 without padding", "aGk", "Base64", "hi", false},
		{"base64url", "-_8=", "Base64URL", "\xfb\xff", false},
		{"auto decodes", "aGk=", "Auto", "hi", false},
		{"auto keeps non-base64", "not base64!", "Auto", "not base64!", false},
		{"invalid base64 fails", "***", "Base64", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := provider.Decode([]byte(c.in), c.strategy)
			if c.fails {
				if err == nil {
					t.Fatalf("decoded %q, want error", got)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestProperty(t *testing.T) {
	v := []byte(`{"a":{"b.c":"x","n":1},"s":"q\"uote","arr":[1,2]}`)
	cases := []struct {
		name, path, want string
		err              error
	}{
		{"nested", `a.b\.c`, "x", nil},
		{"number as JSON text", "a.n", "1", nil},
		{"escaped string is decoded", "s", `q"uote`, nil},
		{"object as JSON", "arr", "[1,2]", nil},
		{"missing", "a.zz", "", provider.ErrNoProperty},
		{"into a non-object", "s.x", "", provider.ErrNotJSON},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := provider.Property(v, c.path)
			if !errors.Is(err, c.err) || (err == nil && string(got) != c.want) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, c.want, c.err)
			}
		})
	}
	if _, err := provider.Property([]byte("plain"), "x"); !errors.Is(err, provider.ErrNotJSON) {
		t.Fatalf("non-JSON value: %v", err)
	}
}
