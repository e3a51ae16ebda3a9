package policy

import (
	"fmt"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// Argument keys reach policies folded (mcpparse.FoldKey: lower case, with
// Unicode simple folding), at every depth: an MCP server decoding arguments
// with Go's encoding/json reads "PATH", "Path" or "pAth" as a struct field
// path, so a rule on mcp.arguments.path must see them all. Two keys of one
// object that fold to one are refused by mcpparse before any policy runs
// (and deny with policy_error if they reach Decide another way). A policy
// that names a key not in folded form would never match: the compiler
// refuses it (checkArgumentKeysRego, checkArgumentKeysCEL).

// foldKeys returns v, decoded JSON, with every object key folded. Objects
// whose keys are all folded already are kept; a key that folds onto another
// of its object is an error.
func foldKeys(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		folded := true
		for k := range v {
			if mcpparse.FoldKey(k) != k {
				folded = false
				break
			}
		}
		if folded {
			for k, e := range v {
				switch e.(type) {
				case map[string]any, []any:
					f, err := foldKeys(e)
					if err != nil {
						return nil, err
					}
					v[k] = f
				}
			}
			return v, nil
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			fk := mcpparse.FoldKey(k)
			if _, dup := out[fk]; dup {
				return nil, fmt.Errorf("arguments: two keys fold to %.40q", fk)
			}
			f, err := foldKeys(e)
			if err != nil {
				return nil, err
			}
			out[fk] = f
		}
		return out, nil
	case []any:
		for i, e := range v {
			switch e.(type) {
			case map[string]any, []any:
				f, err := foldKeys(e)
				if err != nil {
					return nil, err
				}
				v[i] = f
			}
		}
	}
	return v, nil
}

// errKeyNotFolded is the compile error of a policy naming an argument key
// that is not in folded form.
func errKeyNotFolded(where, key string) error {
	return fmt.Errorf("%s: argument key %q never matches: policies see argument keys folded to lower case, write %q",
		where, key, mcpparse.FoldKey(key))
}

var argumentsRef = ast.MustParseRef("input.mcp.arguments")

// checkArgumentKeysRego refuses a module that names an argument key not in
// folded form: a constant key of a ref under input.mcp.arguments in the
// compiled module (imports resolved), or the constant key of object.get on
// such a ref in the parsed one (the compiler moves call arguments into
// local variables).
func checkArgumentKeysRego(parsed, compiled *ast.Module) error {
	var err error
	check := func(t *ast.Term) {
		if s, ok := t.Value.(ast.String); ok && err == nil && mcpparse.FoldKey(string(s)) != string(s) {
			where := "rego"
			if t.Location != nil {
				where = fmt.Sprintf("rego: %s:%d", t.Location.File, t.Location.Row)
			}
			err = errKeyNotFolded(where, string(s))
		}
	}
	objectGet := func(op ast.Ref, args []*ast.Term) {
		if len(args) < 2 || op.Compare(ast.ObjectGet.Ref()) != 0 {
			return
		}
		if r, ok := args[0].Value.(ast.Ref); ok && r.HasPrefix(argumentsRef) {
			check(args[1])
			if a, ok := args[1].Value.(*ast.Array); ok {
				a.Foreach(check)
			}
		}
	}
	ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.Expr:
			if x.IsCall() {
				objectGet(x.Operator(), x.Operands())
			}
		case ast.Call:
			if len(x) == 0 {
				return false
			}
			if op, ok := x[0].Value.(ast.Ref); ok {
				objectGet(op, x[1:])
			}
		}
		return err != nil
	}).Walk(parsed)
	ast.WalkRefs(compiled, func(r ast.Ref) bool {
		if r.HasPrefix(argumentsRef) {
			for _, k := range r[len(argumentsRef):] {
				check(k)
			}
		}
		return err != nil
	})
	return err
}

// checkArgumentKeysCEL refuses an expression that names an argument key not
// in folded form: a field selected (has() included) or a constant index of
// mcp.arguments or of anything under it, or a constant in "key" in one.
func checkArgumentKeysCEL(name string, a *celast.AST) error {
	var err error
	check := func(id int64, key string) {
		if err == nil && mcpparse.FoldKey(key) != key {
			loc := a.SourceInfo().GetStartLocation(id)
			err = errKeyNotFolded(fmt.Sprintf("cel: %s:%d:%d", name, loc.Line(), loc.Column()+1), key)
		}
	}
	celast.PreOrderVisit(celast.NavigateAST(a), celast.NewExprVisitor(func(e celast.Expr) {
		switch e.Kind() {
		case celast.SelectKind:
			if s := e.AsSelect(); underArguments(s.Operand()) {
				check(e.ID(), s.FieldName())
			}
		case celast.CallKind:
			c := e.AsCall()
			args := c.Args()
			if len(args) != 2 {
				return
			}
			switch c.FunctionName() {
			case operators.Index, operators.OptIndex, operators.OptSelect:
				if k, ok := stringLiteral(args[1]); ok && underArguments(args[0]) {
					check(args[1].ID(), k)
				}
			case operators.In:
				if k, ok := stringLiteral(args[0]); ok && underArguments(args[1]) {
					check(args[0].ID(), k)
				}
			}
		}
	}))
	return err
}

// underArguments reports whether e is mcp.arguments or reads a part of it.
func underArguments(e celast.Expr) bool {
	for {
		var operand celast.Expr
		var key string
		switch e.Kind() {
		case celast.SelectKind:
			operand, key = e.AsSelect().Operand(), e.AsSelect().FieldName()
		case celast.CallKind:
			c := e.AsCall()
			switch c.FunctionName() {
			case operators.Index, operators.OptIndex, operators.OptSelect:
			default:
				return false
			}
			if len(c.Args()) != 2 {
				return false
			}
			operand = c.Args()[0]
			key, _ = stringLiteral(c.Args()[1])
		default:
			return false
		}
		if operand.Kind() == celast.IdentKind && operand.AsIdent() == "mcp" {
			return key == "arguments"
		}
		e = operand
	}
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}
