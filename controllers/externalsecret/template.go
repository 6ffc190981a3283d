package externalsecret

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/secretsync/secretsync/api/v1alpha1"
)

// A tenant writes the template and often the data too, so nothing a template does may
// hang a worker or exhaust memory (api.md "Bounded work"). Three layers:
//
//  1. checkTemplateTree refuses, before anything runs, what is unbounded whatever the data:
//     define/template/block, call, range over a number, printf padding over maxPad or
//     taken from an argument (*), indent/nindent by a literal over maxPad.
//  2. Every function that builds a string computes the result's size first and refuses
//     one over maxFuncResult before allocating; every function that scans or builds
//     charges those bytes to the render's work budget. The builtins that cost O(len)
//     unseen (eq, ne, lt, le, gt, ge, index, print, printf, println, html, js, urlquery)
//     are replaced by charged copies.
//  3. instrumentRanges adds to every range a guard (refuses numbers, charges the sort of a
//     map) and a tick per iteration that charges the size of the body (a body of 10,000
//     empty actions costs time without a byte of output); output goes through a writer
//     that fails past maxTemplateOutput for the whole ExternalSecret.
//
// What runs once is bounded by the template's own size; what runs in a loop is
// bounded by maxRangeSteps.
//
// Every limit is per render (one ExternalSecret, all its keys) and ends in
// InvalidTemplate.
const (
	maxTemplateOutput = 1 << 20   // bytes written, all keys together (a Secret holds 1 MiB)
	maxFuncResult     = 1 << 20   // one function result, checked before it is built
	maxTemplateWork   = 64 << 20  // bytes scanned or built by functions
	maxRangeSteps     = 1_000_000 // range iterations, each weighted by the nodes in its body
	maxPad            = 1024      // indent/nindent n, printf width and precision
	splitPieceCost    = 48        // bytes one piece of split costs ([]string, []any, boxed string)
)

var (
	errTplOutput     = errors.New("template output over 1 MiB")
	errTplResult     = errors.New("function result over 1 MiB")
	errTplWork       = errors.New("template work limit reached")
	errTplPad        = errors.New("padding over 1024")
	errTplRangeValue = errors.New("range over a value that is not a list or a map")
	errTplNotAllowed = errors.New("function not allowed")
)

// parseNames are the function names a template may use: the allowlist and the
// builtins that cost O(1) (and, or, not, len, slice).
var parseNames = func() map[string]any {
	names := map[string]any{"and": true, "or": true, "not": true, "len": true, "slice": true}
	for name := range (&renderBudget{}).funcs() {
		names[name] = true
	}
	return names
}()

// parseTemplate parses one key's template and applies the parse-time rules. The
// parse package is used directly so that a define is seen even when it replaces the
// (otherwise empty) template itself. The error is a fixed description, never
// template text or data.
func parseTemplate(key, text string) (*template.Template, error) {
	tree, trees := parse.New(key), map[string]*parse.Tree{}
	if _, err := tree.Parse(text, "", "", trees, parseNames); err != nil {
		return nil, errors.New("template does not parse")
	}
	if len(trees) != 1 || trees[key] != tree {
		return nil, errTplDefine
	}
	if err := checkTemplateTree(tree.Root); err != nil {
		return nil, err
	}
	instrumentRanges(tree.Root)
	tpl, err := template.New(key).Option("missingkey=error").AddParseTree(key, tree)
	if err != nil {
		return nil, errors.New("template does not parse")
	}
	return tpl, nil
}

// execFailure describes an execution error without quoting it: text/template errors
// can contain values.
func execFailure(err error) string {
	for _, e := range []error{errTplOutput, errTplResult, errTplWork, errTplPad, errTplRangeValue, errTplNotAllowed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "template failed (a missing key or a function error)"
}

// reservedKey reports whether a label or annotation key has a prefix Kubernetes
// reserves for itself: kubernetes.io, k8s.io or a subdomain of either. Templates may
// set neither (api.md "Merge targets"): kubernetes.io/service-account.name would bind a
// token to a ServiceAccount, kubectl.kubernetes.io/last-applied-configuration would
// mislead kubectl apply; labels like node-role.kubernetes.io/* and
// service.kubernetes.io/* are read by controllers just the same.
func reservedKey(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	if !ok {
		return false
	}
	prefix = strings.ToLower(prefix)
	for _, d := range []string{"kubernetes.io", "k8s.io"} {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return true
		}
	}
	return false
}

func checkMetadata(m v1alpha1.TemplateMetadata) *outcome {
	for _, f := range []struct {
		field string
		keys  map[string]string
	}{{"labels", m.Labels}, {"annotations", m.Annotations}} {
		keys := make([]string, 0, len(f.keys))
		for k := range f.keys {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if reservedKey(k) {
				o := failTerminal(v1alpha1.ReasonInvalidTemplate, "spec.target.template.metadata.%s: key %q has a prefix reserved for Kubernetes (kubernetes.io, k8s.io)", f.field, k)
				return &o
			}
		}
	}
	return nil
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
	if o := checkMetadata(t.Metadata); o != nil {
		return rendered{}, o
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
	b := &renderBudget{}
	funcs, internal := b.funcs(), b.internalFuncs()
	for _, k := range keys {
		if !validKey.MatchString(k) || len(validation.IsConfigMapKey(k)) > 0 { // also ., .., over 253
			o := failTerminal(v1alpha1.ReasonInvalidKey, "spec.target.template.data: key %q is not a valid Secret key", k)
			return rendered{}, &o
		}
		tpl, err := parseTemplate(k, t.Data[k])
		if err != nil {
			o := failTerminal(v1alpha1.ReasonInvalidTemplate, "spec.target.template.data[%s]: %v", k, err)
			return rendered{}, &o
		}
		var buf bytes.Buffer
		if err := tpl.Funcs(funcs).Funcs(internal).Execute(renderWriter{&buf, b}, input); err != nil {
			o := failTerminal(v1alpha1.ReasonInvalidTemplate, "spec.target.template.data[%s]: %s", k, execFailure(err))
			return rendered{}, &o
		}
		out.data[k] = buf.Bytes()
	}
	return out, nil
}
