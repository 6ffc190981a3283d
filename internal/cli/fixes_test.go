package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestEveryReasonHasAFix parses api/v1alpha1 for every Reason constant, so a reason
// added there without a fix line here fails.
func TestEveryReasonHasAFix(t *testing.T) {
	files, _ := filepath.Glob("../../api/v1alpha1/*.go")
	fset := token.NewFileSet()
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(x ast.Node) bool {
			vs, ok := x.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				n++
				if fixFor(v) == "" {
					t.Errorf("%s (%q) in %s has no fix line in fixes", name.Name, v, filepath.Base(f))
				}
			}
			return true
		})
	}
	if n < 20 {
		t.Fatalf("found only %d reasons", n)
	}
}
