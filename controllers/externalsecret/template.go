package externalsecret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode"
	"unicode/utf8"

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

// renderBudget is what one render has spent.
type renderBudget struct {
	out, work, steps int
}

// scan charges n bytes read or built.
func (b *renderBudget) scan(n int) error {
	if n > maxTemplateWork-b.work {
		b.work = maxTemplateWork
		return errTplWork
	}
	b.work += n
	return nil
}

// result refuses a function result of n bytes over maxFuncResult, else charges it.
func (b *renderBudget) result(n int) error {
	if n > maxFuncResult || n < 0 {
		return errTplResult
	}
	return b.scan(n)
}

// addMul is base + count*each, saturating instead of overflowing.
func addMul(base, count, each int) int {
	if each > 0 && count > (math.MaxInt-base)/each {
		return math.MaxInt
	}
	return base + count*each
}

// renderWriter fails once the render has written maxTemplateOutput bytes.
type renderWriter struct {
	buf *bytes.Buffer
	b   *renderBudget
}

func (w renderWriter) Write(p []byte) (int, error) {
	if len(p) > maxTemplateOutput-w.b.out {
		return 0, errTplOutput
	}
	w.b.out += len(p)
	return w.buf.Write(p)
}

// funcs is the fixed allowlist of pure functions, charged to b. Nothing here reads
// files, the environment, the network or other objects.
func (b *renderBudget) funcs() template.FuncMap {
	str := func(n int, f func() string) (string, error) {
		if err := b.result(n); err != nil {
			return "", err
		}
		return f(), nil
	}
	return template.FuncMap{
		"b64enc": func(s string) (string, error) {
			return str(base64.StdEncoding.EncodedLen(len(s)), func() string { return base64.StdEncoding.EncodeToString([]byte(s)) })
		},
		"b64dec": func(s string) (string, error) {
			if err := b.result(len(s)); err != nil {
				return "", err
			}
			d, err := base64.StdEncoding.DecodeString(s)
			return string(d), err
		},
		// Case mapping can turn a 2-byte rune into a 3-byte one, never more.
		"upper": func(s string) (string, error) {
			return str(len(s)+len(s)/2, func() string { return strings.ToUpper(s) })
		},
		"lower": func(s string) (string, error) {
			return str(len(s)+len(s)/2, func() string { return strings.ToLower(s) })
		},
		"title": func(s string) (string, error) { return str(len(s)+len(s)/2, func() string { return title(s) }) },
		"trim": func(s string) (string, error) {
			return strings.TrimSpace(s), b.scan(len(s))
		},
		"trimPrefix": func(prefix, s string) (string, error) {
			return strings.TrimPrefix(s, prefix), b.scan(len(prefix))
		},
		"trimSuffix": func(suffix, s string) (string, error) {
			return strings.TrimSuffix(s, suffix), b.scan(len(suffix))
		},
		"replace": func(old, new, s string) (string, error) {
			matches := utf8.RuneCountInString(s) + 1 // an empty old matches around every rune
			if old != "" {
				matches = strings.Count(s, old)
			}
			if err := b.scan(addMul(len(s), matches, 16)); err != nil { // a copy per match
				return "", err
			}
			n := addMul(len(s), matches, len(new)-len(old))
			return str(n, func() string { return strings.ReplaceAll(s, old, new) })
		},
		"quote": func(s string) (string, error) {
			if err := b.scan(len(s)); err != nil {
				return "", err
			}
			return str(quotedLen(s), func() string { return strconv.Quote(s) })
		},
		"squote": func(s string) (string, error) { return str(len(s)+2, func() string { return "'" + s + "'" }) },
		"toJson": func(v any) (string, error) {
			if err := b.result(jsonLen(reflect.ValueOf(v), maxFuncResult+1)); err != nil {
				return "", err
			}
			out, err := json.Marshal(v)
			return string(out), err
		},
		// Decoding costs ~50 times a copy of the text (a list of small numbers), and
		// the result takes up to ~12 times its size.
		"fromJson": func(s string) (any, error) {
			if err := b.scan(addMul(0, len(s), 32)); err != nil {
				return nil, err
			}
			var v any
			err := json.Unmarshal([]byte(s), &v)
			return v, err
		},
		"indent": func(n int, s string) (string, error) {
			return b.indent(n, s, "")
		},
		"nindent": func(n int, s string) (string, error) {
			return b.indent(n, s, "\n")
		},
		"default": func(def, v any) any {
			if isEmpty(v) {
				return def
			}
			return v
		},
		"join": func(sep string, l []any) (string, error) {
			n := addMul(0, max(len(l)-1, 0), len(sep))
			for _, v := range l {
				n = addMul(n, 1, printSize(reflect.ValueOf(v), printSizer, maxFuncResult+1))
				if n > maxFuncResult {
					break
				}
			}
			return str(n, func() string { return joinAny(sep, l) })
		},
		"split": func(sep, s string) ([]any, error) {
			if err := b.scan(len(s)); err != nil {
				return nil, err
			}
			n := strings.Count(s, sep) + 1
			if sep == "" {
				n = utf8.RuneCountInString(s)
			}
			if err := b.result(addMul(0, n, splitPieceCost)); err != nil {
				return nil, err
			}
			return toAny(strings.Split(s, sep)), nil
		},
		"contains": func(sub, s string) (bool, error) {
			return strings.Contains(s, sub), b.scan(len(s) + len(sub))
		},
		"hasPrefix": func(p, s string) (bool, error) { return strings.HasPrefix(s, p), b.scan(len(p)) },
		"hasSuffix": func(p, s string) (bool, error) { return strings.HasSuffix(s, p), b.scan(len(p)) },

		// Charged copies of text/template builtins.
		"call":     func(...any) (any, error) { return nil, errTplNotAllowed },
		"print":    func(args ...any) (string, error) { return b.print(fmt.Sprint, 0, args) },
		"println":  func(args ...any) (string, error) { return b.print(fmt.Sprintln, len(args)+1, args) },
		"printf":   b.printf,
		"html":     b.escaper(5, template.HTMLEscaper), // " → &#34;
		"js":       b.escaper(6, template.JSEscaper),   // < → \u003C
		"urlquery": b.escaper(3, template.URLQueryEscaper),
		"index":    b.index,
		"eq":       b.eq,
		"ne": func(a, c reflect.Value) (bool, error) {
			eq, err := b.eq(a, c)
			return !eq, err
		},
		"lt": b.lt,
		"le": func(a, c reflect.Value) (bool, error) {
			if lt, err := b.lt(a, c); lt || err != nil {
				return lt, err
			}
			return b.eq(a, c)
		},
		"gt": func(a, c reflect.Value) (bool, error) {
			if lt, err := b.lt(a, c); lt || err != nil {
				return false, err
			}
			eq, err := b.eq(a, c)
			return !eq, err
		},
		"ge": func(a, c reflect.Value) (bool, error) {
			lt, err := b.lt(a, c)
			return !lt && err == nil, err
		},
	}
}

// internalFuncs are called only by the nodes instrumentRanges adds; templates cannot name
// them (they are not in parseNames).
func (b *renderBudget) internalFuncs() template.FuncMap {
	return template.FuncMap{
		"_tick": func(weight int) (string, error) {
			if b.steps += weight; b.steps > maxRangeSteps {
				return "", errTplWork
			}
			return "", nil
		},
		"_rangeable": func(v any) (any, error) {
			switch rv := reflect.ValueOf(v); rv.Kind() {
			case reflect.Invalid, reflect.Slice, reflect.Array:
			case reflect.Map: // range sorts the keys every time it starts
				if err := b.scan(addMul(0, rv.Len(), 64)); err != nil {
					return nil, err
				}
			default:
				return nil, errTplRangeValue
			}
			return v, nil
		},
	}
}

func (b *renderBudget) indent(n int, s, prefix string) (string, error) {
	if n < 0 || n > maxPad {
		return "", errTplPad
	}
	if err := b.scan(len(s)); err != nil {
		return "", err
	}
	size := addMul(len(prefix)+len(s), strings.Count(s, "\n")+1, n)
	if err := b.result(size); err != nil {
		return "", err
	}
	pad := strings.Repeat(" ", n)
	return prefix + pad + strings.ReplaceAll(s, "\n", "\n"+pad), nil
}

func (b *renderBudget) print(f func(...any) string, extra int, args []any) (string, error) {
	n := extra
	for _, a := range args {
		n = addMul(n, 1, printSize(reflect.ValueOf(a), printSizer, maxFuncResult+1)+1)
		if n > maxFuncResult {
			break
		}
	}
	if err := b.result(n); err != nil {
		return "", err
	}
	return f(args...), nil
}

func (b *renderBudget) printf(format string, args ...any) (string, error) {
	verbs, pad, mult, err := scanFormat(format)
	if err != nil {
		return "", err
	}
	// Each verb can add its padding and an error text (%!d(string=…)); a container
	// argument applies the verb, padding included, to every element.
	n := addMul(len(format)+32, verbs, pad+32)
	s := fmtSizer{pad: pad, mult: mult, leaf: 34, number: 330 + pad}
	for _, a := range args {
		n = addMul(n, 1, printSize(reflect.ValueOf(a), s, maxFuncResult+1)+32)
		if n > maxFuncResult {
			break
		}
	}
	if err := b.result(n); err != nil {
		return "", err
	}
	return fmt.Sprintf(format, args...), nil
}

// escaper bounds an escaping builtin that turns one byte into at most mult bytes.
func (b *renderBudget) escaper(mult int, f func(...any) string) func(...any) (string, error) {
	return func(args ...any) (string, error) {
		n := 0
		for _, a := range args {
			n = addMul(n, 1, printSize(reflect.ValueOf(a), printSizer, maxFuncResult+1)+1)
		}
		if err := b.result(addMul(0, n, mult)); err != nil {
			return "", err
		}
		return f(args...), nil
	}
}

// scanFormat reads a printf format the way fmt does. It refuses a width or precision
// over maxPad or taken from an argument (*), and reports the number of verbs, the
// largest width+precision, and how many bytes one argument byte can become (5 for
// %q, %x, %X, %U and the # flag: "% #x" writes "0x41 " per byte).
func scanFormat(f string) (verbs, pad, mult int, err error) {
	mult = 1
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		for i++; i < len(f) && strings.IndexByte("+-# 0", f[i]) >= 0; i++ {
			if f[i] == '#' {
				mult = 5
			}
		}
		var w, p int
		i = skipArgIndex(f, i)
		if w, i, err = formatNum(f, i); err != nil {
			return 0, 0, 0, err
		}
		if i < len(f) && f[i] == '.' {
			i = skipArgIndex(f, i+1)
			if p, i, err = formatNum(f, i); err != nil {
				return 0, 0, 0, err
			}
		}
		i = skipArgIndex(f, i)
		if i >= len(f) {
			break // %!(NOVERB)
		}
		verb, size := utf8.DecodeRuneInString(f[i:])
		i += size - 1
		if verb == '%' {
			continue
		}
		verbs++
		pad = max(pad, w+p)
		if strings.ContainsRune("qxXU", verb) {
			mult = 5
		}
	}
	return verbs, pad, mult, nil
}

func formatNum(f string, i int) (n, next int, err error) {
	if i < len(f) && f[i] == '*' {
		return 0, i, errTplPad
	}
	for ; i < len(f) && '0' <= f[i] && f[i] <= '9'; i++ {
		if n = n*10 + int(f[i]-'0'); n > maxPad {
			return 0, i, errTplPad
		}
	}
	return n, i, nil
}

func skipArgIndex(f string, i int) int {
	if i < len(f) && f[i] == '[' {
		if j := strings.IndexByte(f[i:], ']'); j > 0 {
			return i + j + 1
		}
	}
	return i
}

// fmtSizer bounds what fmt writes for a value: a string leaf is at most mult bytes per
// byte plus leaf, a number at most number bytes (%f of 1e308 is 316 digits), and
// every leaf and container gets pad.
type fmtSizer struct{ pad, mult, leaf, number int }

// printSizer bounds fmt.Sprint / %v without padding.
var printSizer = fmtSizer{mult: 1, leaf: 2, number: 32}

// printSize is an upper bound on what fmt prints for v; it stops counting past limit.
func printSize(v reflect.Value, s fmtSizer, limit int) int {
	if v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 5 + s.pad + s.leaf // <nil>
		}
		return printSize(v.Elem(), s, limit)
	}
	switch v.Kind() {
	case reflect.Invalid:
		return 5 + s.pad + s.leaf
	case reflect.String:
		return addMul(s.leaf+s.pad, v.Len(), s.mult)
	case reflect.Slice, reflect.Array:
		n := 2 + s.pad
		for i := 0; i < v.Len() && n <= limit; i++ {
			n = addMul(n, 1, printSize(v.Index(i), s, limit)+1)
		}
		return n
	case reflect.Map:
		n := 5 + s.pad
		for it := v.MapRange(); it.Next() && n <= limit; {
			n = addMul(n, 1, printSize(it.Key(), s, limit)+printSize(it.Value(), s, limit)+2)
		}
		return n
	case reflect.Bool:
		return 5 + s.pad + s.leaf
	}
	return s.number + s.pad
}

// jsonLen is an upper bound on the length of json.Marshal(v); it stops past limit.
func jsonLen(v reflect.Value, limit int) int {
	if v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return 4
		}
		return jsonLen(v.Elem(), limit)
	}
	switch v.Kind() {
	case reflect.Invalid:
		return 4
	case reflect.String:
		return jsonStringLen(v.String())
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return base64.StdEncoding.EncodedLen(v.Len()) + 2
		}
		n := 2
		for i := 0; i < v.Len() && n <= limit; i++ {
			n = addMul(n, 1, jsonLen(v.Index(i), limit)+1)
		}
		return n
	case reflect.Map:
		n := 2
		for it := v.MapRange(); it.Next() && n <= limit; {
			k := 32
			if it.Key().Kind() == reflect.String {
				k = jsonStringLen(it.Key().String())
			}
			n = addMul(n, 1, k+jsonLen(it.Value(), limit)+2)
		}
		return n
	}
	return 32 // numbers and bools; anything else fails to marshal
}

// jsonStringLen is the length of s as a JSON string with HTML escaping (json.Marshal).
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
			n += 2
		case r < ' ' || r == '<' || r == '>' || r == '&', r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// quotedLen is the length of strconv.Quote(s).
func quotedLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 4 // \xff
		case r == '"' || r == '\\':
			n += 2
		case strconv.IsPrint(r):
			n += size
		case r == '\a' || r == '\b' || r == '\f' || r == '\n' || r == '\r' || r == '\t' || r == '\v':
			n += 2
		case r < ' ' || r == 0x7f:
			n += 4 // \x1b
		case r < 0x10000:
			n += 6 // \u0085
		default:
			n += 10 // \U000e0001
		}
		i += size
	}
	return n
}

// title upper-cases (title-cases: ǆ → ǅ) the first rune of every word.
func title(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		r, size := utf8.DecodeRuneInString(w)
		if r == utf8.RuneError && size <= 1 {
			continue // not UTF-8: keep the bytes as they are
		}
		words[i] = string(unicode.ToTitle(r)) + w[size:]
	}
	return strings.Join(words, " ")
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

// The comparisons and index below are text/template's (Go, BSD licence), charged for
// the bytes they compare or hash: the builtins are O(len) per call and uncounted, so
// a loop comparing two 1 MiB values would burn CPU without writing anything.

type cmpKind int

const (
	cmpInvalid cmpKind = iota
	cmpBool
	cmpComplex
	cmpInt
	cmpFloat
	cmpString
	cmpUint
)

func cmpKindOf(v reflect.Value) cmpKind {
	switch v.Kind() {
	case reflect.Bool:
		return cmpBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return cmpInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return cmpUint
	case reflect.Float32, reflect.Float64:
		return cmpFloat
	case reflect.Complex64, reflect.Complex128:
		return cmpComplex
	case reflect.String:
		return cmpString
	}
	return cmpInvalid
}

func tplIndirect(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Interface {
		return v
	}
	if v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}

func isNilValue(v reflect.Value) bool {
	if !v.IsValid() {
		return true
	}
	switch v.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice:
		return v.IsNil()
	}
	return false
}

func (b *renderBudget) eq(arg1 reflect.Value, arg2 ...reflect.Value) (bool, error) {
	arg1 = tplIndirect(arg1)
	if len(arg2) == 0 {
		return false, errors.New("missing argument for comparison")
	}
	k1 := cmpKindOf(arg1)
	for _, arg := range arg2 {
		arg = tplIndirect(arg)
		k2 := cmpKindOf(arg)
		truth := false
		switch {
		case k1 == cmpInt && k2 == cmpUint:
			truth = arg1.Int() >= 0 && uint64(arg1.Int()) == arg.Uint()
		case k1 == cmpUint && k2 == cmpInt:
			truth = arg.Int() >= 0 && arg1.Uint() == uint64(arg.Int())
		case k1 != k2:
			if arg1.IsValid() && arg.IsValid() {
				return false, fmt.Errorf("incompatible types for comparison: %v and %v", arg1.Type(), arg.Type())
			}
		case k1 == cmpBool:
			truth = arg1.Bool() == arg.Bool()
		case k1 == cmpComplex:
			truth = arg1.Complex() == arg.Complex()
		case k1 == cmpFloat:
			truth = arg1.Float() == arg.Float()
		case k1 == cmpInt:
			truth = arg1.Int() == arg.Int()
		case k1 == cmpUint:
			truth = arg1.Uint() == arg.Uint()
		case k1 == cmpString:
			if arg1.Len() == arg.Len() {
				if err := b.scan(arg1.Len()); err != nil {
					return false, err
				}
			}
			truth = arg1.String() == arg.String()
		default:
			if arg1.Kind() != arg.Kind() && arg1.IsValid() && arg.IsValid() {
				return false, fmt.Errorf("non-comparable types %v and %v", arg1.Type(), arg.Type())
			}
			if isNilValue(arg1) || isNilValue(arg) {
				truth = isNilValue(arg) == isNilValue(arg1)
			} else {
				if !arg.Type().Comparable() {
					return false, fmt.Errorf("non-comparable type %v", arg.Type())
				}
				truth = arg1.Interface() == arg.Interface()
			}
		}
		if truth {
			return true, nil
		}
	}
	return false, nil
}

func (b *renderBudget) lt(arg1, arg2 reflect.Value) (bool, error) {
	arg1, arg2 = tplIndirect(arg1), tplIndirect(arg2)
	k1, k2 := cmpKindOf(arg1), cmpKindOf(arg2)
	switch {
	case k1 == cmpInvalid || k2 == cmpInvalid:
		return false, errors.New("invalid type for comparison")
	case k1 == cmpInt && k2 == cmpUint:
		return arg1.Int() < 0 || uint64(arg1.Int()) < arg2.Uint(), nil
	case k1 == cmpUint && k2 == cmpInt:
		return arg2.Int() >= 0 && arg1.Uint() < uint64(arg2.Int()), nil
	case k1 != k2:
		return false, fmt.Errorf("incompatible types for comparison: %v and %v", arg1.Type(), arg2.Type())
	case k1 == cmpFloat:
		return arg1.Float() < arg2.Float(), nil
	case k1 == cmpInt:
		return arg1.Int() < arg2.Int(), nil
	case k1 == cmpUint:
		return arg1.Uint() < arg2.Uint(), nil
	case k1 == cmpString:
		if err := b.scan(min(arg1.Len(), arg2.Len())); err != nil {
			return false, err
		}
		return arg1.String() < arg2.String(), nil
	}
	return false, errors.New("invalid type for comparison")
}

func (b *renderBudget) index(item reflect.Value, indexes ...reflect.Value) (reflect.Value, error) {
	for _, ix := range indexes {
		item, ix = tplIndirect(item), tplIndirect(ix)
		for item.Kind() == reflect.Pointer && !item.IsNil() {
			item = item.Elem()
		}
		switch item.Kind() {
		case reflect.Array, reflect.Slice, reflect.String:
			var x int64
			switch cmpKindOf(ix) {
			case cmpInt:
				x = ix.Int()
			case cmpUint:
				x = int64(min(ix.Uint(), math.MaxInt64))
			default:
				return reflect.Value{}, errors.New("cannot index a list or string with that type")
			}
			if x < 0 || x >= int64(item.Len()) {
				return reflect.Value{}, fmt.Errorf("index out of range: %d", x)
			}
			item = item.Index(int(x))
		case reflect.Map:
			key, err := indexKey(ix, item.Type().Key())
			if err != nil {
				return reflect.Value{}, err
			}
			if key.Kind() == reflect.String {
				if err := b.scan(key.Len()); err != nil { // hashed
					return reflect.Value{}, err
				}
			}
			if x := item.MapIndex(key); x.IsValid() {
				item = x
			} else {
				item = reflect.Zero(item.Type().Elem())
			}
		case reflect.Invalid:
			return reflect.Value{}, errors.New("index of nil")
		default:
			return reflect.Value{}, fmt.Errorf("can't index item of type %s", item.Type())
		}
	}
	return item, nil
}

func indexKey(v reflect.Value, t reflect.Type) (reflect.Value, error) {
	switch {
	case !v.IsValid():
		if isNilValue(reflect.Zero(t)) || t.Kind() == reflect.Interface {
			return reflect.Zero(t), nil
		}
	case v.Type().AssignableTo(t):
		return v, nil
	case cmpKindOf(v) == cmpInt || cmpKindOf(v) == cmpUint:
		if k := reflect.Zero(t); (cmpKindOf(k) == cmpInt || cmpKindOf(k) == cmpUint) && v.Type().ConvertibleTo(t) {
			return v.Convert(t), nil
		}
	}
	return reflect.Value{}, fmt.Errorf("map key has the wrong type; want %s", t)
}

// Parse-time rules. Range over a number is refused when the parse tree shows that the
// range's value can be one: a number literal; len; and, or and default when an
// argument or the piped value can be one; a variable when any binding of that name
// (scopes ignored) can be one, or when it is the first of a range's two variables
// (the index); dot inside a with whose value can be one. Nothing else in the
// allowlist returns an integer (fromJson numbers are float64, which range refuses),
// and the _rangeable guard refuses at run time whatever these rules miss.

var (
	errTplDefine      = errors.New("define, template and block are not allowed")
	errTplRangeNumber = errors.New("range over a number (a literal, len, or a variable or dot bound to one) is not allowed")
	errTplCall        = errors.New("call is not allowed")
)

// checkTemplateTree applies the parse-time rules to a parsed template. It is linear
// in the size of the tree: a hostile template must not make the check itself slow.
func checkTemplateTree(root *parse.ListNode) error {
	if err := visitTemplate(root, checkTemplateNode); err != nil {
		return err
	}
	var a intAnalysis
	a.walk(root, "")
	ints := a.solve()
	for _, r := range a.ranges {
		if r.canBeInt(ints) {
			return errTplRangeNumber
		}
	}
	return nil
}

func checkTemplateNode(n parse.Node) error {
	switch x := n.(type) {
	case *parse.TemplateNode:
		return errTplDefine
	case *parse.CommandNode:
		id, ok := x.Args[0].(*parse.IdentifierNode)
		if !ok {
			return nil
		}
		switch {
		case id.Ident == "call":
			return errTplCall
		case len(x.Args) < 2:
		case id.Ident == "printf":
			if s, ok := x.Args[1].(*parse.StringNode); ok {
				if _, _, _, err := scanFormat(s.Text); err != nil {
					return errTplPad
				}
			}
		case id.Ident == "indent" || id.Ident == "nindent":
			if num, ok := x.Args[1].(*parse.NumberNode); ok && !(num.IsInt && num.Int64 >= 0 && num.Int64 <= maxPad) {
				return errTplPad
			}
		}
	}
	return nil
}

// intValue says when a pipeline's value can be a number: always (base), or when one of
// the variables in deps can be one. Dot inside a with is the variable ".N".
type intValue struct {
	base bool
	deps []string
}

func (v intValue) canBeInt(ints map[string]bool) bool {
	if v.base {
		return true
	}
	for _, d := range v.deps {
		if ints[d] {
			return true
		}
	}
	return false
}

type intBinding struct {
	names []string
	value intValue
}

type intAnalysis struct {
	bindings []intBinding
	ranges   []intValue
	withs    int
}

// walk records the bindings and range values below n; dot names the variable dot is
// bound to ("" where dot cannot be a number).
func (a *intAnalysis) walk(n parse.Node, dot string) {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return
	}
	bind := func(p *parse.PipeNode) intValue {
		v := pipeValue(p, dot)
		if len(p.Decl) > 0 {
			names := make([]string, 0, len(p.Decl))
			for _, d := range p.Decl {
				names = append(names, d.Ident[0])
			}
			a.bindings = append(a.bindings, intBinding{names, v})
		}
		return v
	}
	switch x := n.(type) {
	case *parse.ListNode:
		for _, k := range x.Nodes {
			a.walk(k, dot)
		}
	case *parse.ActionNode:
		bind(x.Pipe)
	case *parse.IfNode:
		bind(x.Pipe)
		a.walk(x.List, dot)
		a.walk(x.ElseList, dot)
	case *parse.WithNode:
		a.withs++
		inner := "." + strconv.Itoa(a.withs)
		a.bindings = append(a.bindings, intBinding{[]string{inner}, bind(x.Pipe)})
		a.walk(x.List, inner)
		a.walk(x.ElseList, dot)
	case *parse.RangeNode:
		a.ranges = append(a.ranges, pipeValue(x.Pipe, dot))
		if len(x.Pipe.Decl) > 1 {
			a.bindings = append(a.bindings, intBinding{x.Pipe.Decl[0].Ident[:1], intValue{base: true}})
		}
		a.walk(x.List, "") // dot is an element: a list or map holds no integers
		a.walk(x.ElseList, dot)
	}
}

// solve returns the variables that can hold a number: those with a base binding, and
// by propagation those bound to a pipeline that depends on one.
func (a *intAnalysis) solve() map[string]bool {
	ints := map[string]bool{}
	dependents := map[string][]int{}
	var queue []string
	mark := func(names []string) {
		for _, n := range names {
			if !ints[n] {
				ints[n] = true
				queue = append(queue, n)
			}
		}
	}
	for i, b := range a.bindings {
		for _, d := range b.value.deps {
			dependents[d] = append(dependents[d], i)
		}
		if b.value.base {
			mark(b.names)
		}
	}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, i := range dependents[v] {
			mark(a.bindings[i].names)
		}
		delete(dependents, v)
	}
	return ints
}

func pipeValue(p *parse.PipeNode, dot string) intValue {
	var piped intValue
	if p == nil {
		return piped
	}
	for _, c := range p.Cmds {
		piped = cmdValue(c, piped, dot)
	}
	return piped
}

func cmdValue(c *parse.CommandNode, piped intValue, dot string) intValue {
	if len(c.Args) == 0 {
		return intValue{}
	}
	id, ok := c.Args[0].(*parse.IdentifierNode)
	if !ok {
		return argValue(c.Args[0], dot)
	}
	switch id.Ident {
	case "len":
		return intValue{base: true}
	case "and", "or", "default": // return one of their arguments
		v := piped
		for _, arg := range c.Args[1:] {
			av := argValue(arg, dot)
			v.base = v.base || av.base
			v.deps = append(v.deps, av.deps...)
		}
		return v
	}
	return intValue{}
}

func argValue(n parse.Node, dot string) intValue {
	switch x := n.(type) {
	case *parse.NumberNode:
		return intValue{base: true}
	case *parse.DotNode:
		if dot != "" {
			return intValue{deps: []string{dot}}
		}
	case *parse.VariableNode:
		if len(x.Ident) == 1 {
			return intValue{deps: x.Ident[:1]}
		}
	case *parse.PipeNode:
		return pipeValue(x, dot)
	}
	return intValue{}
}

// children lists the nodes directly below n.
func children(n parse.Node) []parse.Node {
	switch x := n.(type) {
	case *parse.ListNode:
		return x.Nodes
	case *parse.ActionNode:
		return []parse.Node{x.Pipe}
	case *parse.TemplateNode:
		return []parse.Node{x.Pipe}
	case *parse.PipeNode:
		out := make([]parse.Node, 0, len(x.Cmds))
		for _, c := range x.Cmds {
			out = append(out, c)
		}
		return out
	case *parse.CommandNode:
		return x.Args
	case *parse.ChainNode:
		return []parse.Node{x.Node}
	case *parse.IfNode:
		return []parse.Node{x.Pipe, x.List, x.ElseList}
	case *parse.WithNode:
		return []parse.Node{x.Pipe, x.List, x.ElseList}
	case *parse.RangeNode:
		return []parse.Node{x.Pipe, x.List, x.ElseList}
	}
	return nil
}

// visitTemplate calls f on n and every node below it.
func visitTemplate(n parse.Node, f func(parse.Node) error) error {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return nil
	}
	if err := f(n); err != nil {
		return err
	}
	for _, k := range children(n) {
		if err := visitTemplate(k, f); err != nil {
			return err
		}
	}
	return nil
}

// instrumentRanges adds to every range below n the _rangeable guard (last command of
// its pipeline) and, at the start of its body, {{_tick N}} where N is the number of
// nodes in the body plus two. It returns the number of nodes in n (before instrumenting).
func instrumentRanges(n parse.Node) int {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return 0
	}
	r, isRange := n.(*parse.RangeNode)
	count, body := 1, 0
	for _, k := range children(n) {
		c := instrumentRanges(k)
		if isRange && k == parse.Node(r.List) {
			body = c
		}
		count += c
	}
	if !isRange {
		return count
	}
	call := func(name string, args ...parse.Node) *parse.CommandNode {
		return &parse.CommandNode{NodeType: parse.NodeCommand, Pos: r.Pos,
			Args: append([]parse.Node{parse.NewIdentifier(name).SetPos(r.Pos)}, args...)}
	}
	r.Pipe.Cmds = append(r.Pipe.Cmds, call("_rangeable"))
	weight := body + 2 // an iteration costs about two nodes even when its body is empty
	num := &parse.NumberNode{NodeType: parse.NodeNumber, Pos: r.Pos, IsInt: true, Int64: int64(weight), Text: strconv.Itoa(weight)}
	tick := &parse.ActionNode{NodeType: parse.NodeAction, Pos: r.Pos, Line: r.Line,
		Pipe: &parse.PipeNode{NodeType: parse.NodePipe, Pos: r.Pos, Line: r.Line, Cmds: []*parse.CommandNode{call("_tick", num)}}}
	if r.List == nil {
		r.List = &parse.ListNode{NodeType: parse.NodeList, Pos: r.Pos}
	}
	r.List.Nodes = append([]parse.Node{tick}, r.List.Nodes...)
	return count
}

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
