package authz

import (
	"context"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// batch answers a JSON-RPC batch (MCP 2025-03-26 only, when allowed): every
// element is decided on its own and the strictest answer wins. The elements
// may target one server at most, since one request carries one token.
func (s *Server) batch(ctx context.Context, c *call, msgs []mcpparse.Message) *Decision {
	var worst, ok *Decision
	for i := range msgs {
		d := s.decideMessage(ctx, c, &msgs[i])
		switch {
		case !d.Allow:
			if worst == nil || severity(d.Status) > severity(worst.Status) {
				worst = d
			}
		case d.server != "":
			if ok != nil && ok.server != "" && ok.server != d.server {
				d := deny(http.StatusBadRequest, ReasonBatchRejected, -32600)
				d.detail = "batch targets more than one server"
				return d
			}
			ok = d
		case ok == nil:
			ok = d
		}
	}
	if worst != nil {
		return worst
	}
	return ok
}

// severity orders denials for a batch: a malformed request outranks an
// unauthenticated one, which outranks a refusal, which outranks an outage.
func severity(status int) int {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return 4
	case http.StatusUnauthorized:
		return 3
	case http.StatusForbidden:
		return 2
	default:
		return 1
	}
}
