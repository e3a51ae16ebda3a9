package authz

import (
	"errors"
	"net/http"

	"github.com/mcp-authz/mcp-authz/internal/origin"
)

// checkOrigin denies a request whose Origin is present and not allowed, or
// whose Host is outside AllowedHosts (DNS-rebinding protection, MCP
// Streamable HTTP): 403 with a JSON-RPC error, before the token is read.
func (s *Server) checkOrigin(r *Request) *Decision {
	o, hasOrigin := r.Headers["origin"]
	err := s.origins.Check(o, hasOrigin, r.Host)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, origin.ErrHost):
		return deny(http.StatusForbidden, ReasonHostDenied, codeForbidden)
	}
	return deny(http.StatusForbidden, ReasonOriginDenied, codeForbidden)
}
