package authz

import (
	"context"
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/challenge"
	"github.com/mcp-authz/mcp-authz/internal/resourcemeta"
)

// authenticate validates the caller's bearer token when identity is on.
func (s *Server) authenticate(ctx context.Context, c *call) *Decision {
	if s.verify == nil {
		return nil
	}
	if _, q, ok := strings.Cut(c.req.Path, "?"); ok && identity.TokenInQuery(q) {
		return s.unauthorized(&c.req, ReasonTokenInQuery, true)
	}
	raw, err := identity.BearerToken(c.req.Headers["authorization"])
	if err != nil {
		reason, _ := identityReason(err)
		return s.unauthorized(&c.req, reason, reason != ReasonTokenMissing)
	}
	id, err := s.verify.Verify(ctx, raw)
	if err != nil {
		reason, status := identityReason(err)
		if status != http.StatusUnauthorized {
			return deny(status, reason, rpcCode(status))
		}
		return s.unauthorized(&c.req, reason, true)
	}
	c.caller, c.raw = id, raw
	return nil
}

// unauthorized is a 401 with the RFC 9728 challenge.
func (s *Server) unauthorized(r *Request, reason string, invalid bool) *Decision {
	d := deny(http.StatusUnauthorized, reason, codeUnauthorized)
	d.Challenge = challenge.Unauthorized(s.metadataURL(r), s.cfg.Scopes, invalid)
	return d
}

// metadataURL is the protected-resource metadata URL of the resource the
// request is for: the configured one, else the path-suffixed well-known URL
// of RFC 9728 section 3.1.
func (s *Server) metadataURL(r *Request) string {
	if s.cfg.ResourceMetadataURL != "" {
		return s.cfg.ResourceMetadataURL
	}
	return resourcemeta.URL(r.Scheme, r.Host, r.Path)
}
