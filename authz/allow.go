package authz

import (
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
)

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
	case m.Method == "prompts/get" || m.Ref == "ref/prompt":
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
		d.exchanged(tok)
		auth := tok.Authorization()
		d.credential = assertion.CredentialHash(auth)
		d.setHeader("authorization", auth)
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
