package authz

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// decideMessage answers one message.
func (s *Server) decideMessage(ctx context.Context, c *call, m *mcpparse.Message) *Decision {
	if m.Kind == mcpparse.KindRequest && mcpparse.TaskMethod(m.Method) {
		return s.decideTask(ctx, c, m)
	}
	srv, name, ok := s.target(c, m)
	if !ok {
		return forbidden(m, "", "no such server").about(m, nil, m.Name)
	}
	// The token goes to the server the request reaches: the route's when
	// attached, whatever the message, else the targeted one.
	upstream := srv
	if c.attached {
		upstream = c.route
	}
	tok, d := s.upstreamToken(ctx, c, upstream, m)
	if d != nil {
		d.ID = m.ID
		if d.Reason == ReasonToolDenied {
			d.Reason = deniedReason(m.Method)
		}
		return d.about(m, upstream, name)
	}
	if m.Kind == mcpparse.KindRequest && targeted(m.Method) {
		pd := s.policy.Decide(ctx, s.input(c, m, srv, name, tok))
		if !pd.Allow {
			return s.policyDenial(c, m, pd, tok).about(m, srv, name)
		}
	}
	if m.Kind == mcpparse.KindRequest && m.Method == "subscriptions/listen" {
		if d := s.decideListen(ctx, c, m); d != nil {
			return d
		}
	}
	return s.allowMessage(c, m, srv, name, tok)
}

// policyDenial is the 403 of a policy's no to m.
func (s *Server) policyDenial(c *call, m *mcpparse.Message, pd policy.Decision, tok *exchange.Token) *Decision {
	reason, detail := pd.Reason, pd.Policy
	var cause string
	switch reason {
	case policy.ReasonToolDenied:
		// A policy said no: named after what was asked for.
		reason = ""
	case policy.ReasonNoPolicy:
		// Not "no policy for this server": that would tell a
		// caller which servers exist.
		reason, detail = "", "no policy applies"
	case policy.ReasonPolicyError:
		// Nor "policy_error": a policy that fails on a token
		// without roles for a server (resource_access[server])
		// would tell the caller that the server exists.
		reason, cause = "", policy.ReasonPolicyError
	}
	d := forbidden(m, reason, detail)
	d.cause = cause
	s.stepUp(d, &c.req, pd)
	d.exchanged(tok)
	return d
}

// noServer notes, for the decision log, a route that names no registered
// server.
func (d *Decision) noServer() *Decision {
	d.detail = "route names no registered server"
	return d
}

// about records, for the decision log, what a denied message was for.
func (d *Decision) about(m *mcpparse.Message, srv *registry.Server, name string) *Decision {
	d.method, d.name = m.Method, name
	if name == "" {
		d.name = m.URI
	}
	if srv != nil {
		d.server = srv.Name
	}
	return d
}

// forbidden is a 403 for m; an empty reason is the denial of what m asks
// for (deniedReason).
func forbidden(m *mcpparse.Message, reason, detail string) *Decision {
	if reason == "" {
		reason = deniedReason(m.Method)
	}
	d := deny(http.StatusForbidden, reason, codeForbidden)
	d.ID, d.detail = m.ID, detail
	return d
}

// input is the policy input document of one message.
func (s *Server) input(c *call, m *mcpparse.Message, srv *registry.Server, name string, tok *exchange.Token) *policy.Input {
	// With a profile's token, one allocation holds the input and its
	// exchange document.
	var in *policy.Input
	var x *exchangeDoc
	if tok != nil && tok.Profile != "" {
		doc := &struct {
			in policy.Input
			x  exchangeDoc
		}{}
		in, x = &doc.in, &doc.x
	} else {
		in = new(policy.Input)
	}
	*in = policy.Input{
		Request: policy.Request{
			Method:  c.req.Method,
			Path:    c.req.Path,
			Host:    c.req.Host,
			Headers: c.req.Headers,
		},
		MCP: policy.MCP{Method: m.Method, Arguments: m.Arguments},
	}
	if srv != nil {
		in.MCP.Server = srv.Name
	}
	// completion/complete is decided like the get or read it leads to: a
	// ref/prompt sets mcp.prompt, a ref/resource mcp.resource (the
	// template's URI, as resources/templates/list entries are decided).
	switch {
	case m.Method == "tools/call":
		in.MCP.Tool = &policy.Tool{Name: name, Target: in.MCP.Server}
	case m.Method == "prompts/get" || m.Ref == "ref/prompt":
		in.MCP.Prompt = &policy.Prompt{Name: name}
	case m.URI != "":
		in.MCP.Resource = &policy.Resource{URI: m.URI}
	}
	if c.caller != nil {
		in.Identity = c.caller.Claims
	}
	if tok != nil {
		in.Token = tok.Claims
		in.Exchange = x.fill(tok)
	}
	return in
}

// checkMirrorHeaders enforces the headers that mirror the body (MCP
// 2026-07-28, mcpparse.CheckMirror): MCP-Protocol-Version agrees with
// params._meta; Mcp-Method and Mcp-Name agree with the body when sent, and
// are sent on 2026-07-28 requests. authz has no tool schema, so of the
// Mcp-Param-{Name} headers of a tools/call it checks what it can: one that
// names a top-level argument (ignoring case) must equal it; one naming
// nothing is left to the router, which knows which arguments the tool
// mirrors.
func checkMirrorHeaders(h map[string]string, m *mcpparse.Message) *Decision {
	method, hasMethod := h["mcp-method"]
	name, hasName := h["mcp-name"]
	err := mcpparse.CheckMirror(mcpparse.Mirror{
		Version: h["mcp-protocol-version"],
		Method:  method, HasMethod: hasMethod,
		Name: name, HasName: hasName,
	}, m)
	if err == nil && m.Method == "tools/call" {
		for k, v := range h {
			x, ok := strings.CutPrefix(k, "mcp-param-")
			if !ok {
				continue
			}
			if arg, ok := mcpparse.Argument(m.Arguments, x); ok {
				if err = mcpparse.CheckParam(v, true, arg); err != nil {
					break
				}
			}
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mcpparse.ErrHeaderMismatch):
		return mismatch(m)
	}
	d := deny(http.StatusBadRequest, ReasonInvalidRequest, mcpparse.Code(err))
	d.ID = m.ID
	return d
}
