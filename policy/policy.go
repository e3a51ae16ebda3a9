// Package policy evaluates tool-access policies written in Rego or CEL.
package policy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
)

// Reason codes of a Decision. A Rego policy may return its own reason instead.
const (
	ReasonAllowed     = "allowed"      // every applicable policy allowed
	ReasonToolDenied  = "tool_denied"  // a policy evaluated to false
	ReasonPolicyError = "policy_error" // a policy failed to evaluate: denied
	ReasonNoPolicy    = "no_policy"    // no policy applies: Config.Default decided
	// ReasonInsufficientScope is a denial that more scopes would turn
	// into an allow (step-up): Decision.Scopes names them.
	ReasonInsufficientScope = "insufficient_scope"
)

// Policy is one named rule, written in exactly one of CEL, Rego or a file.
type Policy struct {
	// Name identifies the policy in decisions, logs and errors. Required and unique.
	Name string `yaml:"name" json:"name"`
	// Servers lists the server names (namespace/name) the policy applies to. Empty,
	// or a list holding "*", means every request, including those that target no
	// server (initialize, tools/list, ping, notifications: mcp.server is "").
	Servers []string `yaml:"servers,omitempty" json:"servers,omitempty"`
	// CEL is an inline CEL expression of type bool.
	CEL string `yaml:"cel,omitempty" json:"cel,omitempty"`
	// Rego is an inline Rego v1 module.
	Rego string `yaml:"rego,omitempty" json:"rego,omitempty"`
	// File is a ".rego" or ".cel" file holding the policy, relative to Config.BaseDir.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// Query is the Rego query whose value decides; "" means data.mcp.authz.allow,
	// in which case the module must be package mcp.authz with a rule allow. Its
	// value is a boolean or an object {"allow": bool, "reason": string}.
	// Rego only.
	Query string `yaml:"query,omitempty" json:"query,omitempty"`
	// StepUpScopes, when set, makes a denial by this policy a step-up:
	// reason insufficient_scope, and a 403 whose WWW-Authenticate asks for
	// these scopes. Write the check that a token carries them as a policy
	// of its own. (A Rego policy may instead return {"allow": false,
	// "reason": "insufficient_scope", "scopes": [...]}.) offline_access is
	// refused: it is never asked for.
	StepUpScopes []string `yaml:"stepUpScopes,omitempty" json:"stepUpScopes,omitempty"`
}

// Config is a set of policies and what to do when none applies.
type Config struct {
	// Policies are evaluated in order; every one that applies must allow.
	Policies []Policy `yaml:"policies,omitempty" json:"policies,omitempty"`
	// Default decides requests no policy applies to: "deny" (the zero value) or "allow".
	Default string `yaml:"defaultPolicy,omitempty" json:"defaultPolicy,omitempty"`
	// BaseDir is the directory Policy.File is relative to; "" means the working directory.
	BaseDir string `yaml:"baseDir,omitempty" json:"baseDir,omitempty"`
}

// Files returns the paths of the policy files c reads, joined to BaseDir, for
// a watcher that recompiles when one changes.
func (c Config) Files() []string {
	var out []string
	for _, p := range c.Policies {
		if p.File != "" {
			out = append(out, c.path(p.File))
		}
	}
	return out
}

// path resolves a policy file name against BaseDir.
func (c Config) path(file string) string {
	if filepath.IsAbs(file) || c.BaseDir == "" {
		return file
	}
	return filepath.Join(c.BaseDir, file)
}

// Decision is the outcome of evaluating the policies for one input.
type Decision struct {
	Allow bool
	// Reason is a short code for logs, metric labels and denial bodies.
	Reason string
	// Policy names the policy that decided: the one that denied, or the last one
	// that allowed; "" when Config.Default decided.
	Policy string
	// Scopes are the scopes a denial with ReasonInsufficientScope asks for
	// (step-up); nil otherwise.
	Scopes []string
}

// evaluator is one compiled policy.
type evaluator interface {
	// eval decides for one input document.
	eval(ctx context.Context, d *doc) Decision
	// readsArguments reports whether the policy may read mcp.arguments.
	readsArguments() bool
}

type compiled struct {
	name   string
	stepUp []string // Policy.StepUpScopes
	evaluator
}

// Set is a compiled, immutable set of policies, safe for concurrent use.
type Set struct {
	global     []compiled            // policies for every request
	byServer   map[string][]compiled // global and named policies, in config order
	allowEmpty bool                  // Config.Default is "allow"
	version    uint64                // see Version
}

// setVersions numbers the Sets compiled in the process.
var setVersions atomic.Uint64

// Version identifies s among the Sets of the process: every Compile gives
// its Set a number greater than any before it, so a cache keyed by the
// Version of the Set in force sees every reload. A nil Set has Version 0.
func (s *Set) Version() uint64 {
	if s == nil {
		return 0
	}
	return s.version
}

// Compile validates and compiles every policy of c once. Errors name the
// policy and the file and line of the fault.
func Compile(c Config) (*Set, error) {
	s := &Set{byServer: map[string][]compiled{}}
	switch c.Default {
	case "", "deny":
	case "allow":
		s.allowEmpty = true
	default:
		return nil, fmt.Errorf("policy: compile: defaultPolicy %q: want deny or allow", c.Default)
	}
	seen := map[string]bool{}
	var named []string
	for i, p := range c.Policies {
		if p.Name == "" {
			return nil, fmt.Errorf("policy: compile: policy %d: name is required", i)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("policy: compile %q: duplicate name", p.Name)
		}
		seen[p.Name] = true
		ev, err := compileOne(c, p)
		if err != nil {
			return nil, fmt.Errorf("policy: compile %q: %w", p.Name, err)
		}
		if err := checkScopes(p.StepUpScopes); err != nil {
			return nil, fmt.Errorf("policy: compile %q: stepUpScopes: %w", p.Name, err)
		}
		cp := compiled{name: p.Name, evaluator: ev, stepUp: slices.Clone(p.StepUpScopes)}
		global, servers, err := scope(p.Servers)
		if err != nil {
			return nil, fmt.Errorf("policy: compile %q: %w", p.Name, err)
		}
		if global {
			s.global = append(s.global, cp)
			for _, name := range named {
				s.byServer[name] = append(s.byServer[name], cp)
			}
			continue
		}
		for _, name := range servers {
			if _, ok := s.byServer[name]; !ok {
				s.byServer[name] = append([]compiled(nil), s.global...)
				named = append(named, name)
			}
			s.byServer[name] = append(s.byServer[name], cp)
		}
	}
	s.version = setVersions.Add(1)
	return s, nil
}

// scope reads a Servers list: global, or the distinct names it holds.
func scope(servers []string) (global bool, names []string, err error) {
	if len(servers) == 0 {
		return true, nil, nil
	}
	seen := map[string]bool{}
	for _, s := range servers {
		switch {
		case s == "*":
			global = true
		case strings.TrimSpace(s) == "":
			return false, nil, errors.New("servers: empty name")
		case !seen[s]:
			seen[s] = true
			names = append(names, s)
		}
	}
	if global {
		return true, nil, nil
	}
	return false, names, nil
}

// compileOne compiles the one source p names.
func compileOne(c Config, p Policy) (evaluator, error) {
	n := 0
	for _, s := range []string{p.CEL, p.Rego, p.File} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("want exactly one of cel, rego or file")
	}
	switch {
	case p.CEL != "":
		if p.Query != "" {
			return nil, errors.New("query applies to rego only")
		}
		return compileCEL(p.Name+".cel", p.CEL)
	case p.Rego != "":
		return compileRego(p.Name+".rego", p.Rego, p.Query)
	}
	path := c.path(p.File)
	switch filepath.Ext(path) {
	case ".cel", ".rego":
	default:
		return nil, fmt.Errorf("file %s: want a .cel or .rego file", p.File)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	if filepath.Ext(path) == ".rego" {
		return compileRego(p.File, string(src), p.Query)
	}
	if p.Query != "" {
		return nil, errors.New("query applies to rego only")
	}
	return compileCEL(p.File, string(src))
}

// applicable returns the policies that apply to requests for server.
func (s *Set) applicable(server string) []compiled {
	if server != "" {
		if ps, ok := s.byServer[server]; ok {
			return ps
		}
	}
	return s.global
}

// Decide evaluates every policy that applies to in (in config order) and
// allows only if they all allow; the first deny decides. A nil Set denies
// with reason no_policy.
func (s *Set) Decide(ctx context.Context, in *Input) Decision {
	if s == nil || in == nil {
		return Decision{Reason: ReasonNoPolicy}
	}
	ps := s.applicable(in.MCP.Server)
	if len(ps) == 0 {
		return Decision{Allow: s.allowEmpty, Reason: ReasonNoPolicy}
	}
	d := newDoc(in)
	return decide(ctx, ps, d)
}

// decide runs ps over d: all must allow. A done ctx, and arguments a
// policy reads but that are too large or invalid, deny with policy_error.
func decide(ctx context.Context, ps []compiled, d *doc) Decision {
	var last Decision
	if ctx.Err() != nil {
		return Decision{Reason: ReasonPolicyError, Policy: ps[0].name}
	}
	for _, p := range ps {
		dec := Decision{Reason: ReasonPolicyError}
		if p.readsArguments() {
			d.decodeArguments()
		}
		if !p.readsArguments() || d.argsErr == nil {
			dec = p.eval(ctx, d)
		}
		dec.Policy = p.name
		if !dec.Allow {
			if len(p.stepUp) > 0 && dec.Reason != ReasonPolicyError {
				dec.Reason, dec.Scopes = ReasonInsufficientScope, p.stepUp
			}
			if dec.Reason != ReasonInsufficientScope {
				dec.Scopes = nil
			}
			return dec
		}
		last = dec
	}
	return last
}

// Target is one entry of a list the router shows, named as the method that
// uses it names it: exactly one of Tool, Prompt and Resource is set.
type Target struct {
	Server   string // namespace/name of the server
	Tool     string // unprefixed tool name: evaluated as tools/call
	Prompt   string // unprefixed prompt name: evaluated as prompts/get
	Resource string // a resource's uri, or a template's uriTemplate: evaluated as resources/read
	// Method is a method that targets Server alone, with no tool, prompt
	// or resource: logging/setLevel and notifications/roots/list_changed,
	// which the router passes to every server of a session. Evaluated as
	// that method with mcp.server only. Set with none of the above.
	Method string
}

// method is the MCP method a caller would use t with; "" when t names
// none or more than one entry.
func (t *Target) method() string {
	if t.Method != "" {
		if t.Tool != "" || t.Prompt != "" || t.Resource != "" {
			return ""
		}
		switch t.Method {
		case "tools/call", "prompts/get", "resources/read":
			return "" // each needs its entry
		}
		return t.Method
	}
	switch {
	case t.Tool != "" && t.Prompt == "" && t.Resource == "":
		return "tools/call"
	case t.Prompt != "" && t.Tool == "" && t.Resource == "":
		return "prompts/get"
	case t.Resource != "" && t.Tool == "" && t.Prompt == "":
		return "resources/read"
	}
	return ""
}

// Filter reports, for each target, whether the caller of in may use it: can
// see if and only if can use. Each target is evaluated as the request that
// uses it, with in's request, identity and token and no arguments:
//   - a tool as tools/call: mcp.tool.name the tool, mcp.tool.target the server;
//   - a prompt as prompts/get: mcp.prompt.name the prompt;
//   - a resource as resources/read: mcp.resource.uri its uri. A resource
//     template is evaluated the same way with its uriTemplate as
//     mcp.resource.uri (e.g. "file:///notes/{name}"), so a policy on URI
//     prefixes shows the templates under an allowed prefix, and one that
//     matches exact URIs hides them; each read is decided on its own uri.
//
// mcp.method is that method and mcp.server the target's server in every
// case. A target naming none or more than one entry, and every target of a
// nil Set, is not allowed.
func (s *Set) Filter(ctx context.Context, in *Input, targets []Target) []bool {
	out := make([]bool, len(targets))
	if s == nil || in == nil {
		return out
	}
	base := *in
	base.MCP = MCP{}
	d := newDoc(&base)
	d.reused = true
	for i := range targets {
		t := &targets[i]
		method := t.method()
		if method == "" {
			continue
		}
		ps := s.applicable(t.Server)
		if len(ps) == 0 {
			out[i] = s.allowEmpty
			continue
		}
		d.setTarget(t, method)
		out[i] = decide(ctx, ps, d).Allow
	}
	return out
}

// targetDoc is Filter's mcp document, updated in place for each target: no
// evaluation keeps it.
type targetDoc struct {
	tool     Tool
	prompt   Prompt
	resource Resource
	method   string            // of m; "" before the first target
	m        map[string]any    // the mcp document
	entry    map[string]string // m's tool, prompt or resource
}

// setTarget makes d the request (method) that uses t, keeping request,
// identity and token.
func (d *doc) setTarget(t *Target, method string) {
	td := &d.target
	mcp := &d.in.MCP
	mcp.Method, mcp.Server = method, t.Server
	mcp.Tool, mcp.Prompt, mcp.Resource = nil, nil, nil
	if td.method != method {
		td.method = method
		td.entry = map[string]string{}
		td.m = map[string]any{"method": method, "server": t.Server}
		switch method {
		case "tools/call":
			td.m["tool"] = td.entry
		case "prompts/get":
			td.m["prompt"] = td.entry
		case "resources/read":
			td.m["resource"] = td.entry
		}
	} else if td.m["server"] != t.Server {
		td.m["server"] = t.Server
	}
	switch method {
	case "tools/call":
		td.tool = Tool{Name: t.Tool, Target: t.Server}
		mcp.Tool = &td.tool
		td.entry["name"], td.entry["target"] = t.Tool, t.Server
	case "prompts/get":
		td.prompt = Prompt{Name: t.Prompt}
		mcp.Prompt = &td.prompt
		td.entry["name"] = t.Prompt
	case "resources/read":
		td.resource = Resource{URI: t.Resource}
		mcp.Resource = &td.resource
		td.entry["uri"] = t.Resource
	}
	d.mcp, d.regoInput = td.m, nil
}

// checkScopes refuses scopes that are not RFC 6749 scope tokens, and
// offline_access, which is never asked for.
func checkScopes(scopes []string) error {
	for _, sc := range scopes {
		if sc == "offline_access" {
			return errors.New("offline_access is never asked for")
		}
		if !scopeToken(sc) {
			return fmt.Errorf("%q is not an RFC 6749 scope token", sc)
		}
	}
	return nil
}

// scopeToken reports whether s is 1 to 128 of RFC 6749's NQCHAR (%x21 /
// %x23-5B / %x5D-7E).
func scopeToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
