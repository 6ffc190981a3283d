package externalsecret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"
)

// The template function allowlist and the budget every function charges.

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
	m := b.textFuncs()
	for _, more := range []template.FuncMap{b.dataFuncs(), b.builtinFuncs()} {
		for k, f := range more {
			m[k] = f
		}
	}
	return m
}

// str charges a result of n bytes, then builds it.
func (b *renderBudget) str(n int, f func() string) (string, error) {
	if err := b.result(n); err != nil {
		return "", err
	}
	return f(), nil
}

// textFuncs work on strings.
func (b *renderBudget) textFuncs() template.FuncMap {
	str := b.str
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
		"contains": func(sub, s string) (bool, error) {
			return strings.Contains(s, sub), b.scan(len(s) + len(sub))
		},
		"hasPrefix": func(p, s string) (bool, error) { return strings.HasPrefix(s, p), b.scan(len(p)) },
		"hasSuffix": func(p, s string) (bool, error) { return strings.HasSuffix(s, p), b.scan(len(p)) },
	}
}

// dataFuncs convert between text and structured values.
func (b *renderBudget) dataFuncs() template.FuncMap {
	str := b.str
	return template.FuncMap{
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
	}
}

// builtinFuncs are charged copies of text/template's builtins.
func (b *renderBudget) builtinFuncs() template.FuncMap {
	return template.FuncMap{
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
