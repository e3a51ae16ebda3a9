package policy

import (
	"context"
	"fmt"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// CELCostLimit bounds the runtime cost of one CEL evaluation (cel-go cost
// units, about one per operation and per element visited); an evaluation that
// exceeds it denies with policy_error.
const CELCostLimit = 100_000

// celEnv declares the input document; it is built once and shared.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	doc := cel.MapType(cel.StringType, cel.DynType)
	return cel.NewEnv(
		cel.Variable("request", doc),
		cel.Variable("mcp", doc),
		cel.Variable("identity", doc),
		cel.Variable("jwt", doc),
		cel.Variable("token", doc),
		cel.Variable("exchange", doc),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(64<<10),
		ext.Strings(),
		ext.Lists(ext.ListsMaxRangeSize(4096)),
		ext.Sets(),
		ext.Bindings(),
	)
})

type celPolicy struct {
	prg  cel.Program
	args bool
}

// compileCEL checks src (named name in errors) as a bool expression over the input document.
func compileCEL(name, src string) (*celPolicy, error) {
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("cel environment: %w", err)
	}
	a, iss := env.CompileSource(common.NewStringSource(src, name))
	if iss.Err() != nil {
		return nil, fmt.Errorf("cel: %w", iss.Err())
	}
	if t := a.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("cel: expression has type %s, want bool (compare explicitly, e.g. x == true)", t)
	}
	if err := checkArgumentKeysCEL(name, a.NativeRep()); err != nil {
		return nil, err
	}
	prg, err := env.Program(a, cel.CostLimit(CELCostLimit))
	if err != nil {
		return nil, fmt.Errorf("cel: %w", err)
	}
	return &celPolicy{prg: prg, args: celReadsArguments(a.NativeRep())}, nil
}

func (p *celPolicy) readsArguments() bool { return p.args }

func (p *celPolicy) eval(_ context.Context, d *doc) Decision {
	out, _, err := p.prg.Eval(d.activation())
	if err != nil {
		return Decision{Reason: ReasonPolicyError}
	}
	if b, ok := out.(types.Bool); ok && bool(b) {
		return Decision{Allow: true, Reason: ReasonAllowed}
	} else if ok {
		return Decision{Reason: ReasonToolDenied}
	}
	return Decision{Reason: ReasonPolicyError}
}

// activation returns d as CEL variables.
func (d *doc) activation() *celActivation {
	return (*celActivation)(d)
}

// celActivation resolves the CEL variables of a doc, each built on first use.
type celActivation doc

func (a *celActivation) ResolveName(name string) (any, bool) {
	d := (*doc)(a)
	switch name {
	case "request":
		if d.celRequest == nil {
			d.celRequest = map[string]any{
				"method":  d.in.Request.Method,
				"path":    d.in.Request.Path,
				"host":    d.in.Request.Host,
				"headers": d.headers(),
			}
		}
		return d.celRequest, true
	case "mcp":
		return d.mcpDoc(), true
	case "identity", "jwt":
		if d.celIdentity == nil {
			d.celIdentity = d.celClaims(d.in.Identity)
		}
		return d.celIdentity, true
	case "token":
		if d.celToken == nil {
			d.celToken = d.celClaims(d.in.Token)
		}
		return d.celToken, true
	case "exchange":
		if d.celExchange == nil {
			d.celExchange = celValue(d.exchangeDoc())
		}
		return d.celExchange, true
	}
	return nil, false
}

// celClaims returns c as a CEL variable: converted in full when d is reused.
func (d *doc) celClaims(c map[string]any) any {
	if d.reused {
		return celValue(claims(c))
	}
	return claims(c)
}

func (a *celActivation) Parent() interpreter.Activation { return nil }

// celValue converts v to CEL values all at once, so that evaluations which
// share it (Filter) do not each convert the elements they visit.
func celValue(v any) ref.Val {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[ref.Val]ref.Val, len(v))
		for k, e := range v {
			m[types.String(k)] = celValue(e)
		}
		return types.NewRefValMap(types.DefaultTypeAdapter, m)
	case []any:
		l := make([]ref.Val, len(v))
		for i, e := range v {
			l[i] = celValue(e)
		}
		return types.NewRefValList(types.DefaultTypeAdapter, l)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// celReadsArguments reports whether the expression may read mcp.arguments:
// it does unless every use of mcp selects a field other than arguments.
func celReadsArguments(a *celast.AST) bool {
	reads := false
	celast.PreOrderVisit(celast.NavigateAST(a), celast.NewExprVisitor(func(e celast.Expr) {
		if reads || e.Kind() != celast.IdentKind || e.AsIdent() != "mcp" {
			return
		}
		nav, ok := e.(celast.NavigableExpr)
		if !ok {
			reads = true
			return
		}
		parent, ok := nav.Parent()
		if !ok {
			reads = true
			return
		}
		reads = !selectsOtherField(parent, e.ID())
	}))
	return reads
}

// selectsOtherField reports whether parent reads one constant field of its
// operand (the expression with id child), and that field is not arguments.
func selectsOtherField(parent celast.Expr, child int64) bool {
	switch parent.Kind() {
	case celast.SelectKind:
		return parent.AsSelect().FieldName() != "arguments"
	case celast.CallKind:
		c := parent.AsCall()
		switch c.FunctionName() {
		case operators.Index, operators.OptIndex, operators.OptSelect:
		default:
			return false
		}
		args := c.Args()
		if len(args) != 2 || args[0].ID() != child || args[1].Kind() != celast.LiteralKind {
			return false
		}
		s, ok := args[1].AsLiteral().(types.String)
		return ok && string(s) != "arguments"
	}
	return false
}
