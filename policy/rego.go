package policy

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
)

// DefaultQuery is the Rego query of a policy that sets none.
const DefaultQuery = "data.mcp.authz.allow"

// RegoTimeout bounds one Rego evaluation when the caller's context has no
// deadline; an evaluation cut short denies with policy_error.
const RegoTimeout = time.Second

// noMetrics spares each evaluation OPA's timers, which nothing reads.
var noMetrics = metrics.NoOp()

var defaultPackage = ast.MustParseRef("data.mcp.authz")

// NewRegoCompiler returns a Rego compiler that allows what a policy may
// use: OPA's built-ins minus those that reach outside the process (a policy
// decides from its input alone). The policy test runner (policytest)
// compiles with it, so that a test sees the policy as Compile does.
func NewRegoCompiler() *ast.Compiler {
	return ast.NewCompiler().WithCapabilities(regoCapabilities())
}

// regoCapabilities are those of NewRegoCompiler.
var regoCapabilities = sync.OnceValue(func() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	keep := c.Builtins[:0]
	for _, b := range c.Builtins {
		switch b.Name {
		case "http.send", "net.lookup_ip_addr", "opa.runtime":
			continue
		}
		keep = append(keep, b)
	}
	c.Builtins = keep
	return c
})

type regoPolicy struct {
	query rego.PreparedEvalQuery
	args  bool
}

// compileRego parses src (named filename in errors) and prepares query over
// it; query "" means DefaultQuery, with package mcp.authz and a rule allow.
func compileRego(filename, src, query string) (*regoPolicy, error) {
	mod, err := ast.ParseModuleWithOpts(filename, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("rego: %w", err)
	}
	if mod == nil {
		return nil, fmt.Errorf("rego: %s: empty module", filename)
	}
	if query == "" {
		if !mod.Package.Path.Equal(defaultPackage) {
			return nil, fmt.Errorf("rego: %s: package %s, want mcp.authz (or set query)", filename, mod.Package.Path)
		}
		if !hasRule(mod, "allow") {
			return nil, fmt.Errorf("rego: %s: no rule allow in package mcp.authz", filename)
		}
		query = DefaultQuery
	}
	compiler := NewRegoCompiler()
	if compiler.Compile(map[string]*ast.Module{filename: mod}); compiler.Failed() {
		return nil, fmt.Errorf("rego: %w", compiler.Errors)
	}
	if err := checkArgumentKeysRego(mod, compiler.Modules[filename]); err != nil {
		return nil, err
	}
	pq, err := rego.New(rego.Query(query), rego.Compiler(compiler)).PrepareForEval(context.Background())
	if err != nil {
		return nil, fmt.Errorf("rego: %w", err)
	}
	return &regoPolicy{query: pq, args: regoReadsArguments(mod)}, nil
}

func hasRule(mod *ast.Module, name string) bool {
	for _, r := range mod.Rules {
		if ref := r.Head.Ref(); len(ref) > 0 && ref[0].Value.Compare(ast.Var(name)) == 0 {
			return true
		}
	}
	return false
}

func (p *regoPolicy) readsArguments() bool { return p.args }

func (p *regoPolicy) eval(ctx context.Context, d *doc) (dec Decision) {
	defer func() {
		// The lazy input panics on a claim value that has no JSON form.
		if recover() != nil {
			dec = Decision{Reason: ReasonPolicyError}
		}
	}()
	in := d.regoValue()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, RegoTimeout)
		defer cancel()
	}
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(in), rego.EvalMetrics(noMetrics))
	if err != nil || len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return Decision{Reason: ReasonPolicyError}
	}
	return regoDecision(rs[0].Expressions[0].Value)
}

// regoDecision reads a query value: a boolean, or {"allow": bool, "reason": string}.
func regoDecision(v any) Decision {
	var (
		allow  bool
		reason string
		scopes []string
	)
	switch v := v.(type) {
	case bool:
		allow = v
	case map[string]any:
		a, ok := v["allow"].(bool)
		if !ok {
			return Decision{Reason: ReasonPolicyError}
		}
		allow = a
		if r, present := v["reason"]; present {
			s, ok := r.(string)
			if !ok || !validReason(s) {
				return Decision{Reason: ReasonPolicyError}
			}
			reason = s
		}
		if sc, present := v["scopes"]; present {
			list, ok := sc.([]any)
			if !ok || allow || len(list) == 0 {
				return Decision{Reason: ReasonPolicyError}
			}
			for _, x := range list {
				s, ok := x.(string)
				if !ok || !scopeToken(s) {
					return Decision{Reason: ReasonPolicyError}
				}
				if s != "offline_access" {
					scopes = append(scopes, s)
				}
			}
			if reason == "" {
				reason = ReasonInsufficientScope
			}
		}
	default:
		return Decision{Reason: ReasonPolicyError}
	}
	switch {
	case reason != "":
	case allow:
		reason = ReasonAllowed
	default:
		reason = ReasonToolDenied
	}
	if reason != ReasonInsufficientScope {
		scopes = nil
	}
	return Decision{Allow: allow, Reason: reason, Scopes: scopes}
}

// validReason reports whether a policy-returned reason may serve as a reason
// code (a metric label and a denial body): 1 to 64 of [A-Za-z0-9_.:-].
func validReason(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// regoValue returns d as a Rego input value, without a JSON round trip:
// lazy objects convert only the parts a policy reads, and request, identity
// and token are reused across Filter targets.
func (d *doc) regoValue() ast.Value {
	if d.regoInput != nil {
		return d.regoInput
	}
	if d.regoRequest == nil {
		d.regoRequest = ast.LazyObject(map[string]any{
			"method":  d.in.Request.Method,
			"path":    d.in.Request.Path,
			"host":    d.in.Request.Host,
			"headers": d.headers(),
		})
		d.regoIdentity = ast.LazyObject(claims(d.in.Identity))
		d.regoToken = ast.LazyObject(claims(d.in.Token))
		d.regoExchange = ast.LazyObject(d.exchangeDoc())
	}
	d.regoInput = ast.LazyObject(map[string]any{
		"request":  d.regoRequest,
		"mcp":      d.mcpDoc(),
		"identity": d.regoIdentity,
		"token":    d.regoToken,
		"exchange": d.regoExchange,
	})
	return d.regoInput
}

// regoReadsArguments reports whether mod may read input.mcp.arguments: it
// does if it imports from input, or reads input, input.mcp or a non-constant
// key of either as a value.
func regoReadsArguments(mod *ast.Module) bool {
	for _, imp := range mod.Imports {
		if ref, ok := imp.Path.Value.(ast.Ref); ok && ref.HasPrefix(ast.InputRootRef) {
			return true
		}
		if v, ok := imp.Path.Value.(ast.Var); ok && v.Equal(ast.InputRootDocument.Value) {
			return true
		}
	}
	reads := false
	var visit func(t *ast.Term) bool
	visit = func(t *ast.Term) bool {
		if reads {
			return true
		}
		switch v := t.Value.(type) {
		case ast.Var:
			reads = v.Equal(ast.InputRootDocument.Value)
		case ast.Ref:
			if len(v) > 0 && v[0].Value.Compare(ast.InputRootDocument.Value) == 0 {
				reads = inputRefReadsArguments(v)
				for _, k := range v[1:] { // keys may hold refs: walk them, not the head
					ast.WalkTerms(k, visit)
				}
				return true
			}
		}
		return reads
	}
	ast.WalkTerms(mod, visit)
	return reads
}

// inputRefReadsArguments judges one ref rooted at input.
func inputRefReadsArguments(r ast.Ref) bool {
	if len(r) < 2 {
		return true
	}
	k, ok := r[1].Value.(ast.String)
	if !ok {
		return true
	}
	if k != "mcp" {
		return false
	}
	if len(r) < 3 {
		return true
	}
	k, ok = r[2].Value.(ast.String)
	return !ok || k == "arguments"
}
