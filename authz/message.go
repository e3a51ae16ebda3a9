package authz

import (
	"context"
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// targeted reports whether a method names one tool, prompt or resource of one
// server, and so is exchanged for and decided by policy.
func targeted(method string) bool {
	switch method {
	case "tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe":
		return true
	}
	return false
}

// target finds the server a message is for and the name it has there.
// ok is false when a targeted message names no registered server, or when
// the route it came on names none.
func (s *Server) target(c *call, m *mcpparse.Message) (srv *registry.Server, name string, ok bool) {
	if c.attached && c.route == nil {
		return nil, "", false
	}
	if m.Kind != mcpparse.KindRequest || !targeted(m.Method) {
		return nil, "", true
	}
	if c.attached {
		return c.route, m.Name, true
	}
	snap := c.snap
	if m.URI != "" {
		srv, found := snap.ResolveURI(m.URI)
		// A resource no registration claims is routed by the router, which
		// knows it from the lists; it cannot get a token of its own.
		return srv, "", found || s.xchg == nil
	}
	srv, name, found := snap.Resolve(m.Name)
	return srv, name, found
}

// routeServer is the server of a per-route attachment: named by the context
// extension, or registered for the request's host. attached is false when
// authz sits in front of the router.
func routeServer(snap *registry.Snapshot, r *Request) (srv *registry.Server, attached bool) {
	if name, ok := r.ContextExtensions[ContextExtensionServer]; ok {
		srv, _ := snap.Server(name)
		return srv, true
	}
	if srv, ok := snap.ByHost(r.Host); ok {
		return srv, true
	}
	return nil, false
}

// decideMessage answers one message.
func (s *Server) decideMessage(ctx context.Context, c *call, m *mcpparse.Message) *Decision {
	srv, name, ok := s.target(c, m)
	if !ok {
		return forbidden(m, ReasonToolDenied, "no such server").about(m, nil, m.Name)
	}
	// The token goes to the server the request reaches: the route's when
	// attached, whatever the message, else the targeted one.
	upstream := srv
	if c.attached {
		upstream = c.route
	}
	tok, d := s.upstreamToken(ctx, c, upstream)
	if d != nil {
		d.ID = m.ID
		return d.about(m, upstream, name)
	}
	if m.Kind == mcpparse.KindRequest && targeted(m.Method) {
		pd := s.policy.Decide(ctx, s.input(c, m, srv, name, tok))
		if !pd.Allow {
			reason, detail := pd.Reason, pd.Policy
			var cause string
			switch reason {
			case policy.ReasonNoPolicy:
				// Not "no policy for this server": that would tell a
				// caller which servers exist.
				reason, detail = ReasonToolDenied, "no policy applies"
			case policy.ReasonPolicyError:
				// Nor "policy_error": a policy that fails on a token
				// without roles for a server (resource_access[server])
				// would tell the caller that the server exists.
				reason, cause = ReasonToolDenied, policy.ReasonPolicyError
			}
			d := forbidden(m, reason, detail)
			d.cause = cause
			return d.about(m, srv, name)
		}
	}
	return s.allowMessage(c, m, srv, name, tok)
}

// upstreamToken exchanges the caller's token for srv's audience when
// exchange and identity are on and srv is not nil; else it returns nil.
func (s *Server) upstreamToken(ctx context.Context, c *call, srv *registry.Server) (*exchange.Token, *Decision) {
	if srv == nil || s.xchg == nil || c.caller == nil {
		return nil, nil
	}
	tok, err := s.xchg.Exchange(ctx, exchangeRequest(c.raw, c.caller, srv))
	if err != nil {
		return nil, exchangeDenial(err)
	}
	return tok, nil
}

func exchangeRequest(raw string, id *identity.Identity, srv *registry.Server) exchange.Request {
	return exchange.Request{
		SubjectToken:    raw,
		SubjectExpiry:   id.Expiry,
		SubjectAudience: id.Audience,
		Audience:        srv.Audience,
		Scopes:          srv.Scopes,
	}
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

func forbidden(m *mcpparse.Message, reason, detail string) *Decision {
	if reason == "" {
		reason = ReasonToolDenied
	}
	d := deny(http.StatusForbidden, reason, codeForbidden)
	d.ID, d.detail = m.ID, detail
	return d
}

// input is the policy input document of one message.
func (s *Server) input(c *call, m *mcpparse.Message, srv *registry.Server, name string, tok *exchange.Token) *policy.Input {
	in := &policy.Input{
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
	switch m.Method {
	case "tools/call":
		in.MCP.Tool = &policy.Tool{Name: name, Target: in.MCP.Server}
	case "prompts/get":
		in.MCP.Prompt = &policy.Prompt{Name: name}
	default:
		if m.URI != "" {
			in.MCP.Resource = &policy.Resource{URI: m.URI}
		}
	}
	if c.caller != nil {
		in.Identity = c.caller.Claims
	}
	if tok != nil {
		in.Token = tok.Claims
	}
	return in
}

// allowMessage is the OK answer for one message: the x-mcp-* headers, the
// exchanged token and the assertion for the router.
func (s *Server) allowMessage(c *call, m *mcpparse.Message, srv *registry.Server, name string, tok *exchange.Token) *Decision {
	d := s.allow(c, tok)
	d.method = m.Method
	if m.Method != "" {
		d.setHeader(HeaderMethod, m.Method)
	}
	if srv != nil {
		d.server = srv.Name
		d.setHeader(HeaderServerName, srv.Name)
	}
	switch {
	case m.Method == "tools/call":
		d.name = name
		d.setHeader(HeaderToolName, name)
	case m.Method == "prompts/get":
		d.name = name
		d.setHeader(HeaderPromptName, name)
	case m.URI != "":
		d.name = m.URI
		d.setHeader(HeaderResourceURI, m.URI)
	}
	return d
}

// allow is an OK answer that carries the caller's identity on, and the
// Authorization of ContextExtensionServer's rule: the token for the server
// when there is one (exchanged, or the caller's own only when its audience
// is that server alone: exchange's SkipWhenAudienceMatches); else, attached
// to a route, none; else (in front of the router) the client's header stays.
func (s *Server) allow(c *call, tok *exchange.Token) *Decision {
	d := &Decision{Allow: true, Reason: ReasonAllowed}
	if c.caller != nil {
		d.issuer, d.subject, d.expiry = c.caller.Issuer, c.caller.Subject, c.caller.Expiry
	}
	switch {
	case tok != nil:
		d.credential = assertion.CredentialHash("Bearer " + tok.AccessToken)
		d.setHeader("authorization", "Bearer "+tok.AccessToken)
	case c.attached:
		d.Remove = append(d.Remove, "authorization")
	}
	return d
}

// finish adds the router assertion and lists the client-sent x-mcp-* headers
// that the answer does not set itself. Envoy applies an OK answer's headers
// before its headers_to_remove, so a header authz sets must not be removed.
func (s *Server) finish(c *call, d *Decision) {
	if s.signer != nil {
		a, err := s.signer.Sign(assertion.Claims{
			Method:       d.method,
			Server:       d.server,
			Tool:         d.name,
			Issuer:       d.issuer,
			Subject:      d.subject,
			CallerExpiry: d.expiry,
			Credential:   d.credential,
			BodyHash:     assertion.BodyHash(c.req.Body),
			IssuedAt:     s.now(),
		})
		if err != nil {
			*d = *deny(http.StatusInternalServerError, ReasonInternal, -32603)
			return
		}
		d.Assertion = a
	}
	for k := range c.req.Headers {
		if !strings.HasPrefix(k, "x-mcp-") || d.sets(k) || (k == assertion.Header && d.Assertion != "") {
			continue
		}
		d.Remove = append(d.Remove, k)
	}
}
