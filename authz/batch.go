package authz

import (
	"context"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// batch answers a JSON-RPC batch (MCP 2025-03-26 only, when allowed): every
// element is decided on its own and the strictest answer wins. The elements
// may target one server at most, since one request carries one token.
func (s *Server) batch(ctx context.Context, c *call, msgs []mcpparse.Message) *verdict {
	var worst, ok *verdict
	for i := range msgs {
		v := s.decide(ctx, c, &msgs[i])
		switch {
		case v.status != 0:
			if worst == nil || severity(v.status) > severity(worst.status) {
				worst = v
			}
		case v.server != "":
			if ok != nil && ok.server != "" && ok.server != v.server {
				d := deny(http.StatusBadRequest, ReasonBatchRejected, -32600)
				d.detail = "batch targets more than one server"
				return d
			}
			ok = v
		case ok == nil:
			ok = v
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
