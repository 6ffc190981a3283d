package externalsecret

import (
	"errors"
	"reflect"
	"strconv"
	"text/template/parse"
)

// Static checks of a parsed template: allowed nodes, integer analysis, range instrumentation.

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
			if num, ok := x.Args[1].(*parse.NumberNode); ok && (!num.IsInt || num.Int64 < 0 || num.Int64 > maxPad) {
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
