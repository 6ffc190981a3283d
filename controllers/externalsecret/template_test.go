package externalsecret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

const templateCanary = "CANARY-7f3a9-do-not-leak"

// templateBombData is fetched data a hostile tenant controls; values carry the canary.
func templateBombData() map[string][]byte {
	big := templateCanary + strings.Repeat("x", 64<<10-len(templateCanary))
	return map[string][]byte{
		"k":      []byte(templateCanary),
		"empty":  nil,
		"big":    []byte(big),
		"k10k":   []byte(strings.Repeat("y", 10_000)),
		"half":   []byte(strings.Repeat(templateCanary, 300<<10/len(templateCanary))),
		"a":      []byte(templateCanary + strings.Repeat("a", 1<<20)),
		"b":      []byte(templateCanary + strings.Repeat("a", 1<<20)),
		"lt":     []byte(strings.Repeat("<", 200<<10)),
		"ctl":    []byte(strings.Repeat("\x01", 300<<10)),
		"amp":    []byte(strings.Repeat("&", 100<<10)),
		"b512":   []byte(strings.Repeat("z", 512<<10)),
		"fmt":    []byte("%99999d"),
		"json":   []byte(`{"templateCanary":"` + templateCanary + `","n":[` + strings.Repeat("1,", 50_000) + `1]}`),
		"obj":    []byte(`{` + strings.Repeat(`"`+templateCanary+`":1,`, 10) + `"z":1}`),
		"canary": []byte(templateCanary),
	}
}

// reverseChain binds $v0 to $v1, $v1 to $v2, ... and only the last to a number, in
// that order, so the number reaches $v0 only by propagating back through n bindings.
func reverseChain(n int) string {
	var b strings.Builder
	for i := 0; i <= n; i++ {
		fmt.Fprintf(&b, `{{$v%d := ""}}`, i)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{{$v%d = $v%d}}`, i, i+1)
	}
	fmt.Fprintf(&b, `{{$v%d = 7}}{{range $v0}}x{{end}}`, n)
	return b.String()
}

func renderTemplate(tmpl map[string]string, data map[string][]byte) (rendered, *outcome) {
	es := &v1alpha1.ExternalSecret{}
	es.Spec.Target.Template = &v1alpha1.Template{Data: tmpl}
	return render(es, data)
}

func TestTemplateBombs(t *testing.T) {
	cases := []struct {
		name string
		tmpl string
		want string // in the message, after spec.target.template.data[t]:
	}{
		// Parse time: range over a number.
		{"range over a number literal", `{{range 1000000000}}x{{end}}`, "range over a number"},
		{"range over a number with a variable", `{{range $i := 1000000000}}x{{end}}`, "range over a number"},
		{"range over len", `{{range len .big}}x{{end}}`, "range over a number"},
		{"range over piped len", `{{range .big | len}}x{{end}}`, "range over a number"},
		{"range over parenthesised len", `{{range (len .big)}}x{{end}}`, "range over a number"},
		{"range over a variable bound to len", `{{$n := len .big}}{{range $n}}x{{end}}`, "range over a number"},
		{"range over a variable assigned len later", `{{$n := "a"}}{{$n = len .big}}{{range $n}}x{{end}}`, "range over a number"},
		{"range over a chain of variables", `{{$a := 1000000000}}{{$b := $a}}{{$c := $b}}{{range $c}}x{{end}}`, "range over a number"},
		{"range over the index of an outer range", `{{range $i, $e := split "" .big}}{{range $i}}{{end}}{{end}}`, "range over a number"},
		{"range over dot inside with len", `{{with len .big}}{{range .}}x{{end}}{{end}}`, "range over a number"},
		{"range over a variable declared in if", `{{if $n := len .big}}{{range $n}}x{{end}}{{end}}`, "range over a number"},
		{"range over or with a number", `{{range or .empty 1000000000}}x{{end}}`, "range over a number"},
		{"range over default with a number", `{{range default 1000000000 .empty}}x{{end}}`, "range over a number"},
		{"range over a number piped into or", `{{range 1000000000 | or .empty}}x{{end}}`, "range over a number"},
		{"range over a variable bound through a long reverse chain", reverseChain(5000), "range over a number"},
		// Parse time: define, template, block, call.
		{"recursive define", `{{define "r"}}{{template "r" .}}{{template "r" .}}{{end}}{{template "r" .}}`, "define, template and block are not allowed"},
		{"define replacing the template itself", `{{define "t"}}{{template "t" .}}{{template "t" .}}{{end}}`, "define, template and block are not allowed"},
		{"harmless define", `{{define "t"}}x{{end}}`, "define, template and block are not allowed"},
		{"block", `{{block "b" .}}{{.k}}{{end}}`, "define, template and block are not allowed"},
		{"template of an undefined name", `{{template "x" .}}`, "define, template and block are not allowed"},
		{"call", `{{call .k}}`, "call is not allowed"},
		// Parse time: padding.
		{"indent by a huge literal", `{{indent 1000000000 .k}}`, "padding over 1024"},
		{"nindent by a huge literal", `{{nindent 1000000000 .k}}`, "padding over 1024"},
		{"indent by a negative literal", `{{indent -1 .k}}`, "padding over 1024"},
		{"printf huge width", `{{printf "%999999999d" 1}}`, "padding over 1024"},
		{"printf huge precision", `{{printf "%.999999f" 1.0}}`, "padding over 1024"},
		{"printf width from an argument", `{{printf "%*d" 1000000000 1}}`, "padding over 1024"},
		{"printf precision from an indexed argument", `{{printf "%.[2]*[1]f" 1.0 1000000000}}`, "padding over 1024"},
		// Run time: padding that only the data knows.
		{"indent by len of the data", `{{indent (len .big) .big}}`, "padding over 1024"},
		{"printf format from the data", `{{printf .fmt 1}}`, "padding over 1024"},
		// Run time: a result over 1 MiB is refused before it is built.
		{"replace with empty old", `{{replace "" .big .big}}`, "function result over 1 MiB"},
		{"replace growing every match", `{{replace "x" .big .big}}`, "function result over 1 MiB"},
		{"indent of many lines", `{{indent 1024 (replace "x" "\n" .big)}}`, "function result over 1 MiB"},
		{"join with a big separator", `{{join .big (split "" .k10k)}}`, "function result over 1 MiB"},
		{"split into too many pieces", `{{split "" .b512}}`, "function result over 1 MiB"},
		{"toJson of html characters", `{{toJson .lt}}`, "function result over 1 MiB"},
		{"quote of control characters", `{{quote .ctl}}`, "function result over 1 MiB"},
		{"b64enc chain", `{{b64enc (b64enc (b64enc .b512))}}`, "function result over 1 MiB"},
		{"html chain", `{{html (html (html .amp))}}`, "function result over 1 MiB"},
		{"js", `{{js .lt}}`, "function result over 1 MiB"},
		{"printf width on every element", `{{printf "%1000v" (split "" .k10k)}}`, "function result over 1 MiB"},
		{"print of a big list", `{{print (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k) (split "" .k10k)}}`, "function result over 1 MiB"},
		// Run time: loops and repeated work.
		{"nested ranges over split", `{{range split "" .k10k}}{{range split "" $.k10k}}{{range split "" $.k10k}}{{end}}{{end}}{{end}}`, "template work limit reached"},
		{"range with an empty body", `{{range split "" .k10k}}{{range split "" $.k10k}}{{end}}{{end}}`, "template work limit reached"},
		{"comparing two big values in a loop", `{{range split "" .k10k}}{{if eq $.a $.b}}{{end}}{{end}}`, "template work limit reached"},
		{"ordering two big values in a loop", `{{range split "" .k10k}}{{if lt $.a $.b}}{{end}}{{end}}`, "template work limit reached"},
		{"hashing a big key in a loop", `{{range split "" .k10k}}{{index $ $.a}}{{end}}`, "template work limit reached"},
		{"fromJson in a loop", `{{range split "" .k10k}}{{$j := fromJson $.json}}{{end}}`, "template work limit reached"},
		{"building big strings in a loop", `{{range split "" .k10k}}{{$s := replace "y" "yy" $.k10k}}{{end}}`, "template work limit reached"},
		{"restarting a map range in a loop", `{{$m := fromJson .obj}}{{range split "" .k10k}}{{range split "" $.k10k}}{{range $m}}{{break}}{{end}}{{end}}{{end}}`, "template work limit reached"},
		{"many actions per iteration", `{{range split "" .k10k}}` + strings.Repeat(`{{$.empty}}`, 200) + `{{end}}`, "template work limit reached"},
		{"deeply nested ranges", strings.Repeat(`{{range $}}`, 3000) + strings.Repeat(`{{end}}`, 3000), "template work limit reached"},
		// Run time: output.
		{"output over 1 MiB", `{{.half}}{{.half}}{{.half}}{{.half}}`, "template output over 1 MiB"},
		{"output over 1 MiB in a loop", `{{range split "" .k10k}}{{$.big}}{{end}}`, "template output over 1 MiB"},
		// Errors that text/template would describe with the value.
		{"function error", `{{fromJson .canary}}`, "template failed"},
		{"comparison error", `{{eq .canary 1}}`, "template failed"},
		{"missing key", `{{.nope}}`, "template failed"},
		{"parse error", `{{.canary`, "template does not parse"},
	}
	data := templateBombData()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, o := renderTemplate(map[string]string{"t": c.tmpl}, data)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
			if o == nil {
				t.Fatal("rendered; want InvalidTemplate")
			}
			if o.reason != v1alpha1.ReasonInvalidTemplate || o.kind != terminal {
				t.Errorf("reason %s kind %d; want InvalidTemplate, terminal", o.reason, o.kind)
			}
			if want := "spec.target.template.data[t]: " + c.want; !strings.HasPrefix(o.message, want) {
				t.Errorf("message %q; want prefix %q", o.message, want)
			}
			if strings.Contains(o.message, templateCanary) {
				t.Errorf("message leaks data: %q", o.message)
			}
		})
	}
}

// The output limit is for the whole ExternalSecret, not per key.
func TestTemplateOutputLimitAcrossKeys(t *testing.T) {
	tmpl := map[string]string{"a": "{{.half}}{{.half}}", "b": "{{.half}}{{.half}}"}
	_, o := renderTemplate(tmpl, templateBombData())
	if o == nil || o.message != "spec.target.template.data[b]: template output over 1 MiB" {
		t.Fatalf("outcome %+v; want the output limit on key b", o)
	}
	got, o := renderTemplate(map[string]string{"a": "{{.half}}{{.half}}"}, templateBombData())
	if o != nil || len(got.data["a"]) != 2*len(templateBombData()["half"]) {
		t.Fatalf("600 KiB in one key: outcome %+v", o)
	}
}

// Templates a user writes keep working under the limits.
func TestTemplateOrdinaryUse(t *testing.T) {
	data := map[string][]byte{
		"user": []byte("app"), "pass": []byte("p@ss w<rd&"), "list": []byte("a,b,c"),
		"json": []byte(`{"hosts":["h1","h2"],"port":5432,"tls":{"on":true},"none":[]}`), "tls.crt": []byte("line1\nline2"),
	}
	cases := []struct{ name, tmpl, want string }{
		{"range over split with index", `{{range $i, $e := split "," .list}}{{$i}}={{$e}};{{end}}`, "0=a;1=b;2=c;"},
		{"range over the data map", `{{range $k, $v := .}}{{if hasPrefix "u" $k}}{{$k}}={{$v}}{{end}}{{end}}`, "user=app"},
		{"range over fromJson with else", `{{range (fromJson .json).hosts}}{{.}} {{else}}none{{end}}|{{range (fromJson .json).none}}x{{else}}none{{end}}`, "h1 h2 |none"},
		{"nested ranges", `{{range split "," .list}}{{$o := .}}{{range split "," $.list}}{{$o}}{{.}} {{end}}{{end}}`, "aa ab ac ba bb bc ca cb cc "},
		{"break and continue", `{{range split "," .list}}{{if eq . "b"}}{{continue}}{{end}}{{if eq . "c"}}{{break}}{{end}}{{.}}{{end}}`, "a"},
		{"len in a comparison", `{{if gt (len .list) 3}}long{{end}}{{$n := len .list}}{{if eq $n 5}} five{{end}}`, "long five"},
		{"index of a dotted key", `{{index . "tls.crt" | nindent 4}}`, "\n    line1\n    line2"},
		{"indent at the cap", `{{indent 2 .user}}|{{len (indent 1024 "x")}}`, "  app|1025"},
		{"printf with width and precision", `{{printf "%-6s|%05d|%.2f|%q|%x" .user 42 3.14159 .user .user}}`, `app   |00042|3.14|"app"|617070`},
		{"print and println", `{{print .user 1 2 "x"}}|{{println .user}}`, "app1 2x|app\n"},
		{"escapers", `{{html .pass}} {{js .pass}} {{urlquery .pass}}`, `p@ss w&lt;rd&amp; p@ss w\u003Crd\u0026 p%40ss+w%3Crd%26`},
		{"comparisons", `{{eq .user "app"}} {{eq .user "x" "app"}} {{ne .user "app"}} {{lt "a" "b"}} {{le 2 2}} {{gt 3 2}} {{ge 1 2}} {{eq (len .user) 3}}`, "true true false true true true false true"},
		{"toJson of the data", `{{toJson (fromJson .json).tls}}`, `{"on":true}`},
		{"toJson of a map", `{{toJson (fromJson .json)}}`, `{"hosts":["h1","h2"],"none":[],"port":5432,"tls":{"on":true}}`},
		{"replace, quote, squote", `{{replace "p" "P" .pass | quote}} {{squote .user}}`, `"P@ss w<rd&" 'app'`},
		{"slice and index builtins", `{{slice .user 1}} {{index (split "," .list) 2}}`, "pp c"},
		{"and, or, not, default", `{{and .user .list}} {{or "" .user}} {{not .user}} {{default "d" ""}}`, "a,b,c app false d"},
		{"with over a value", `{{with .user}}{{.}}{{end}}`, "app"},
		{"range over a variable holding a list", `{{$l := split "," .list}}{{range $l}}{{.}}{{end}}`, "abc"},
		{"empty template", ``, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, o := renderTemplate(map[string]string{"t": c.tmpl}, data)
			if o != nil {
				t.Fatalf("failed: %s", o.message)
			}
			if string(got.data["t"]) != c.want {
				t.Errorf("got %q, want %q", got.data["t"], c.want)
			}
		})
	}
}

// The charged copies of the builtins behave like text/template's own.
func TestChargedBuiltinsMatchTextTemplate(t *testing.T) {
	data := map[string]string{"s": "héllo <a&b> \"q\" \x01", "n": "", "json": `{"a":1,"b":[1,"x",null],"c":{"d":"e"}}`}
	tmpls := []string{
		`{{eq .s .s}} {{eq .s .n}} {{eq 1 1}} {{eq 1 2 1}} {{eq 1.5 1.5}} {{eq true false}} {{ne "a" "b"}}`,
		`{{lt 1 2}} {{lt "b" "a"}} {{le 1.5 1.5}} {{gt 3 2}} {{ge "a" "a"}} {{lt -1 2}}`,
		`{{eq 1 "a"}}`, `{{lt true false}}`, `{{eq}}`, `{{lt 1.5 2}}`,
		`{{index . "s"}} {{index . "missing"}} {{index .s 1}}`, `{{index .s 99}}`, `{{index .s -1}}`, `{{index 1 1}}`, `{{index . 1}}`,
		`{{print .s 1 2.5 true nil}}|{{println .s 1}}|{{print}}`,
		`{{printf "%s %q %x %X %v %d %5.2f %-4s| %U %c %T %%" .s .s .s .s .s 42 3.14159 "a" 0x1F600 65 .s}}`,
		`{{printf "%d %s" "str" 1}} {{printf "%d"}} {{printf "%!" 1}} {{printf "%[2]d %[1]s" "a" 2}} {{printf "%[5]d" 1}} {{printf "%" }}`,
		`{{html .s}}|{{js .s}}|{{urlquery .s}}|{{html .s 1 2}}|{{js}}`,
	}
	for _, text := range tmpls {
		t.Run(text, func(t *testing.T) {
			stock := template.Must(template.New("t").Funcs(template.FuncMap{}).Parse(text))
			var want bytes.Buffer
			wantErr := stock.Execute(&want, data)
			tpl, err := parseTemplate("t", text)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			b := &renderBudget{}
			var got bytes.Buffer
			gotErr := tpl.Funcs(b.funcs()).Funcs(b.internalFuncs()).Execute(&got, data)
			if (wantErr != nil) != (gotErr != nil) {
				t.Fatalf("error %v, text/template error %v", gotErr, wantErr)
			}
			if got.String() != want.String() {
				t.Errorf("got  %q\nwant %q", got.String(), want.String())
			}
		})
	}
}

func TestTitle(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"ascii words", "hello big world", "Hello Big World"},
		{"two-byte first rune", "élan vital", "Élan Vital"},
		{"no case", "日本 語", "日本 語"},
		{"title case differs from upper case", "ǆemal", "ǅemal"},
		{"already title", "Ǆ ǅ", "ǅ ǅ"},
		{"not UTF-8 is kept", "\xffabc d", "\xffabc D"},
		{"spaces collapse", "  a   b ", "A B"},
		{"empty", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := title(c.in); got != c.want {
				t.Errorf("title(%q) = %q, want %q", c.in, got, c.want)
			}
			got, o := renderTemplate(map[string]string{"t": "{{title .v}}"}, map[string][]byte{"v": []byte(c.in)})
			if o != nil || string(got.data["t"]) != c.want {
				t.Errorf("template: %q %+v", got.data["t"], o)
			}
		})
	}
}

func TestTemplateReservedMetadata(t *testing.T) {
	cases := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		field       string // "" = allowed
	}{
		{"service-account annotation", nil, map[string]string{"kubernetes.io/service-account.name": "default"}, "annotations"},
		{"kubectl annotation", nil, map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}, "annotations"},
		{"k8s.io annotation", nil, map[string]string{"k8s.io/x": "y"}, "annotations"},
		{"subdomain of k8s.io", nil, map[string]string{"a.k8s.io/x": "y"}, "annotations"},
		{"upper-case prefix", nil, map[string]string{"Kubernetes.IO/x": "y"}, "annotations"},
		{"kubernetes.io label", map[string]string{"kubernetes.io/metadata.name": "x"}, nil, "labels"},
		{"node-role label", map[string]string{"node-role.kubernetes.io/control-plane": ""}, nil, "labels"},
		{"labels are checked first", map[string]string{"service.kubernetes.io/headless": ""}, map[string]string{"kubernetes.io/x": ""}, "labels"},
		{"own prefix", map[string]string{"app.example.com/team": "a"}, map[string]string{"example.com/x": "y"}, ""},
		{"lookalike domain", nil, map[string]string{"mykubernetes.io/x": "y", "kubernetes.io.example.com/x": "y"}, ""},
		{"no prefix", map[string]string{"app": "x"}, map[string]string{"kubernetes.io": "name only"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es := &v1alpha1.ExternalSecret{}
			es.Spec.Target.Template = &v1alpha1.Template{Metadata: v1alpha1.TemplateMetadata{Labels: c.labels, Annotations: c.annotations}}
			got, o := render(es, map[string][]byte{"k": []byte("v")})
			if c.field == "" {
				if o != nil {
					t.Fatalf("refused: %s", o.message)
				}
				if !reflect.DeepEqual(got.annotations, c.annotations) || !reflect.DeepEqual(got.labels, c.labels) {
					t.Errorf("metadata not passed through: %+v", got)
				}
				return
			}
			if o == nil || o.reason != v1alpha1.ReasonInvalidTemplate || !strings.HasPrefix(o.message, "spec.target.template.metadata."+c.field+": ") {
				t.Fatalf("outcome %+v; want InvalidTemplate on spec.target.template.metadata.%s", o, c.field)
			}
		})
	}
}

func TestScanFormat(t *testing.T) {
	cases := []struct {
		format          string
		verbs, pad, mul int
		err             bool
	}{
		{"plain", 0, 0, 1, false},
		{"%d %s", 2, 0, 1, false},
		{"%%", 0, 0, 1, false},
		{"%1024d", 1, 1024, 1, false},
		{"%1025d", 0, 0, 0, true},
		{"%512.512f", 1, 1024, 1, false},
		{"%-08.3s", 1, 11, 1, false},
		{"%*d", 0, 0, 0, true},
		{"%.*d", 0, 0, 0, true},
		{"%[2]*d", 0, 0, 0, true},
		{"%99999999999999999999999d", 0, 0, 0, true},
		{"%q", 1, 0, 5, false},
		{"% #x", 1, 0, 5, false},
		{"%[1]d", 1, 0, 1, false},
		{"%", 0, 0, 1, false},
		{"%é", 1, 0, 1, false},
	}
	for _, c := range cases {
		t.Run(c.format, func(t *testing.T) {
			verbs, pad, mul, err := scanFormat(c.format)
			if (err != nil) != c.err || (err == nil && (verbs != c.verbs || pad != c.pad || mul != c.mul)) {
				t.Errorf("= %d %d %d %v; want %d %d %d err=%v", verbs, pad, mul, err, c.verbs, c.pad, c.mul, c.err)
			}
		})
	}
}

// The size estimates are exact (quote) or upper bounds (toJson, print) of what the
// function then builds.
func TestSizeEstimates(t *testing.T) {
	strs := []string{"", "abc", "\x00\x01\x7f", "é日本\U0001F600", "\xff\xfe", "<>&\"\\\n\r\t\b\f", "\u2028\u2029\u0085\ufeff\U000e0001", templateCanary}
	var values []any
	for _, s := range strs {
		if got, want := quotedLen(s), len(strconv.Quote(s)); got != want {
			t.Errorf("quotedLen(%q) = %d, want %d", s, got, want)
		}
		values = append(values, s)
	}
	var j any
	_ = json.Unmarshal([]byte(`{"a":[1,-1.5e300,"x<",null,true,{"b":{}}],"\u2028":"\ud800"}`), &j)
	values = append(values, j, []any{strs[3], 1e308, nil}, map[string]string{"k": "<v>"}, 42, nil, true)
	for _, v := range values {
		if out, _ := json.Marshal(v); jsonLen(reflect.ValueOf(v), 1<<30) < len(out) {
			t.Errorf("jsonLen(%#v) = %d < %d", v, jsonLen(reflect.ValueOf(v), 1<<30), len(out))
		}
		if n, out := printSize(reflect.ValueOf(v), printSizer, 1<<30), fmt.Sprint(v); n < len(out) {
			t.Errorf("printSize(%#v) = %d < %d", v, n, len(out))
		}
		for _, f := range []string{"%v", "%q", "%x", "% #x", "%+q", "%#v", "%10.5v", "%f", "%d", "%1024.5f"} {
			_, pad, mult, _ := scanFormat(f)
			s := fmtSizer{pad: pad, mult: mult, leaf: 34, number: 330 + pad}
			if n, out := printSize(reflect.ValueOf(v), s, 1<<30)+32, fmt.Sprintf(f, v); n < len(out) {
				t.Errorf("printf %s of %#v: estimate %d < %d", f, v, n, len(out))
			}
		}
	}
}

func TestRangeGuard(t *testing.T) {
	guard := (&renderBudget{}).internalFuncs()["_rangeable"].(func(any) (any, error))
	cases := []struct {
		name string
		v    any
		err  error
	}{
		{"list", []any{1}, nil},
		{"map", map[string]any{}, nil},
		{"nil", nil, nil},
		{"int", 1000000000, errTplRangeValue},
		{"uint", uint8(3), errTplRangeValue},
		{"float", 1.5, errTplRangeValue},
		{"string", "abc", errTplRangeValue},
		{"func", func(func(int) bool) {}, errTplRangeValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := guard(c.v); !errors.Is(err, c.err) {
				t.Errorf("err %v, want %v", err, c.err)
			}
		})
	}
}

// Template keys must be keys the API server accepts in a Secret.
func TestTemplateKeys(t *testing.T) {
	cases := []struct {
		name, key string
		ok        bool
	}{
		{"plain", "tls.crt", true},
		{"longest", strings.Repeat("k", 253), true},
		{"too long", strings.Repeat("k", 254), false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"slash", "a/b", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, o := renderTemplate(map[string]string{c.key: "x"}, nil)
			if c.ok != (o == nil) || (o != nil && o.reason != v1alpha1.ReasonInvalidKey) {
				t.Errorf("outcome %+v; want ok=%v or InvalidKey", o, c.ok)
			}
		})
	}
}
