package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// MaxArgumentBytes bounds the mcp.arguments a policy can read. Arguments are
// decoded only when a policy that applies may read them (it names
// mcp.arguments, or reads input.mcp or the whole input as a value); larger
// arguments are not decoded and such a policy denies with policy_error, so
// huge arguments never blow up evaluation time.
const MaxArgumentBytes = 64 << 10

// Input is the document every policy evaluates, the same for Rego (input) and
// CEL (the variables request, mcp, identity and token; jwt is identity).
type Input struct {
	Request  Request        `json:"request"`
	MCP      MCP            `json:"mcp"`
	Identity map[string]any `json:"identity"` // claims of the validated caller token
	Token    map[string]any `json:"token"`    // claims of the exchanged token; empty when none
	// Exchange is how the token was made; nil (an empty object to
	// policies) when none was.
	Exchange *Exchange `json:"exchange,omitempty"`
}

// Exchange describes the making of the upstream token, never a token.
type Exchange struct {
	// Profile is the exchange profile ("default" for the top-level keys).
	Profile string `json:"profile"`
	// Target is the server's target the token is for ("" for none).
	Target string `json:"target"`
	// Steps are the profile's token-endpoint calls, in order; empty for a
	// static credential.
	Steps []ExchangeStep `json:"steps"`
}

// ExchangeStep is one token-endpoint call of a profile.
type ExchangeStep struct {
	// Grant is "token-exchange" or "jwt-bearer".
	Grant string `json:"grant"`
	// Endpoint is the token URL.
	Endpoint string `json:"endpoint"`
}

// Request is the HTTP request that carried the MCP message.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Host   string `json:"host"`
	// Headers are lower-case header names to values. Policies never see
	// authorization, cookie, proxy-authorization, any x-mcp-* header,
	// mcp-method, mcp-name or mcp-param-*, even if set here: they read the
	// method, server, tool, prompt, resource and arguments under mcp.
	Headers map[string]string `json:"headers"`
}

// MCP is the MCP message; Tool, Prompt, Resource and Task are set for the methods that name one.
type MCP struct {
	Method    string          `json:"method"`
	Server    string          `json:"server"` // namespace/name of the target server; "" for none
	Tool      *Tool           `json:"tool,omitempty"`
	Prompt    *Prompt         `json:"prompt,omitempty"`
	Resource  *Resource       `json:"resource,omitempty"`
	Task      *Task           `json:"task,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"` // of tools/call and prompts/get
}

// Task is the task a task request (tasks/get, tasks/update, tasks/cancel,
// tasks/result) is about: the server running it, the tool whose call created
// it and the method asked of it. Tool is "" where authz cannot know it (a
// server's own task id, authz attached to the server's route).
type Task struct {
	Server string `json:"server"`
	Tool   string `json:"tool"` // unprefixed
	Method string `json:"method"`
}

// Tool is the tool of a tools/call, as agentgateway's CEL names it.
type Tool struct {
	Name   string `json:"name"`   // unprefixed
	Target string `json:"target"` // the server
}

// Prompt is the prompt of a prompts/get.
type Prompt struct {
	Name string `json:"name"`
}

// Resource is the resource of resources/read, subscribe and unsubscribe.
type Resource struct {
	URI string `json:"uri"`
}

// ParseInput decodes a JSON input document (as policy eval and policy test
// read them), rejecting unknown keys; a tool without target gets mcp.server.
func ParseInput(data []byte) (*Input, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in Input
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("policy: input: %w", err)
	}
	if dec.More() {
		return nil, errors.New("policy: input: trailing data")
	}
	if in.MCP.Tool != nil && in.MCP.Tool.Target == "" {
		in.MCP.Tool.Target = in.MCP.Server
	}
	return &in, nil
}

// secretHeader reports whether a header must never reach a policy: a
// secret, or a header whose trusted value a policy reads under mcp instead.
// Client-sent x-mcp-* headers are the client's choice (Kuadrant's
// mcp-gateway sets them after its checks; a policy ported from there would
// read spoofed values here). Mcp-Method, Mcp-Name and Mcp-Param-* (MCP
// 2026-07-28) mirror the body: they may be base64-encoded, carry the
// advertised (prefixed) name, be absent for older clients, and Mcp-Param-*
// are not checked against the body before policy.
func secretHeader(name string) bool {
	switch strings.ToLower(name) {
	case "authorization", "cookie", "proxy-authorization", "mcp-method", "mcp-name":
		return true
	}
	return hasPrefixFold(name, "x-mcp-") || hasPrefixFold(name, "mcp-param-")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

var errArgumentsTooLarge = errors.New("arguments larger than the policy bound")

// doc is one input document, converted for each engine on first use.
type doc struct {
	in *Input
	// reused marks a doc evaluated many times (Filter): worth converting
	// identity and token to engine values in full, once.
	reused bool
	// Filter's target, updated in place for each one (see setTarget).
	target targetDoc

	argsDone bool
	args     any // decoded mcp.arguments; nil when absent
	argsErr  error

	mcp map[string]any // the mcp document, built on first use

	// CEL: native values the activation hands out.
	celRequest, celIdentity, celToken any

	// Rego: the parts reused across Filter targets, and the whole input.
	celExchange any

	regoRequest, regoIdentity, regoToken, regoExchange ast.Value
	regoInput                                          ast.Value
}

func newDoc(in *Input) *doc {
	return &doc{in: in}
}

// decodeArguments decodes mcp.arguments once, within MaxArgumentBytes.
func (d *doc) decodeArguments() {
	if d.argsDone {
		return
	}
	d.argsDone = true
	raw := d.in.MCP.Arguments
	switch {
	case len(raw) == 0:
	case len(raw) > MaxArgumentBytes:
		d.argsErr = errArgumentsTooLarge
	default:
		if err := json.Unmarshal(raw, &d.args); err != nil {
			d.argsErr = err
		} else {
			d.args, d.argsErr = foldKeys(d.args)
		}
	}
	d.mcp, d.regoInput = nil, nil
}

// headers returns the request headers policies may see.
func (d *doc) headers() map[string]string {
	h := d.in.Request.Headers
	for k := range h {
		if secretHeader(k) {
			clean := make(map[string]string, len(h))
			for k, v := range h {
				if !secretHeader(k) {
					clean[k] = v
				}
			}
			return clean
		}
	}
	if h == nil {
		return map[string]string{}
	}
	return h
}

// mcpDoc returns the mcp document, built on first use.
func (d *doc) mcpDoc() map[string]any {
	if d.mcp == nil {
		d.mcp = d.mcpMap()
	}
	return d.mcp
}

// mcpMap is the mcp document as native values. Absent tool, prompt,
// resource and arguments are absent keys (CEL has() and Rego undefined).
func (d *doc) mcpMap() map[string]any {
	m := d.in.MCP
	n := 2
	for _, set := range []bool{m.Tool != nil, m.Prompt != nil, m.Resource != nil, m.Task != nil, d.args != nil} {
		if set {
			n++
		}
	}
	out := make(map[string]any, n)
	out["method"] = m.Method
	out["server"] = m.Server
	if m.Tool != nil {
		out["tool"] = map[string]string{"name": m.Tool.Name, "target": m.Tool.Target}
	}
	if m.Prompt != nil {
		out["prompt"] = map[string]string{"name": m.Prompt.Name}
	}
	if m.Resource != nil {
		out["resource"] = map[string]string{"uri": m.Resource.URI}
	}
	if m.Task != nil {
		out["task"] = map[string]string{"server": m.Task.Server, "tool": m.Task.Tool, "method": m.Task.Method}
	}
	if d.argsDone && d.argsErr == nil && d.args != nil {
		out["arguments"] = d.args
	}
	return out
}

// claims returns c, or an empty map for nil.
func claims(c map[string]any) map[string]any {
	if c == nil {
		return map[string]any{}
	}
	return c
}

// exchangeDoc is the exchange document as native values; empty when none.
func (d *doc) exchangeDoc() map[string]any {
	e := d.in.Exchange
	if e == nil {
		return map[string]any{}
	}
	steps := make([]any, len(e.Steps))
	for i, s := range e.Steps {
		steps[i] = map[string]any{"grant": s.Grant, "endpoint": s.Endpoint}
	}
	return map[string]any{"profile": e.Profile, "target": e.Target, "steps": steps}
}
