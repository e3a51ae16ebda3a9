package forward

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/session"
)

// Call is one client request the router is serving.
type Call struct {
	Req    *http.Request
	Claims assertion.Claims
	Body   []byte
	Msg    mcpparse.Message // the body, decoded once
	Sess   *session.Record
	// Auth is the Authorization header received: the caller's own token,
	// or, when Claims.Credential names it, the token authz obtained for
	// Claims.Server. Only the latter is ever sent upstream.
	Auth string
	// Tool is the definition of the tool a tools/call calls, as the
	// router read it from the caller's list for this call (its check of
	// the client's Mcp-Param headers); nil when it did not read it.
	Tool json.RawMessage
	task *taskRef // the task of a task request, opened (tasks.go)
	// input is what a forwarded call keeps for input requests (mrtr.go).
	input callInput
	// upID is the id the request went upstream with when it is not the
	// client's (ownID); nil: Msg.ID.
	upID json.RawMessage
}

// upstreamID is the id c's request went upstream with: the upstream's
// answer is matched by it, and the client answered with msg.ID.
func (c *Call) upstreamID() json.RawMessage {
	if c.upID != nil {
		return c.upID
	}
	return c.Msg.ID
}

// Version is the protocol version of the call: the MCP-Protocol-Version
// header, else the one of params._meta, else the session's.
func (c *Call) Version() string {
	if v := c.Req.Header.Get("Mcp-Protocol-Version"); v != "" {
		return v
	}
	if c.Msg.Meta != nil {
		if f, err := mcpparse.Fields(c.Msg.Meta, RequestOptions, mcpparse.MetaProtocolVersion); err == nil && f[0].Raw != nil {
			if v, err := mcpparse.String(f[0].Raw); err == nil {
				return v
			}
		}
	}
	if c.Sess != nil {
		return c.Sess.Version
	}
	return ""
}

// SentParams reports whether the client sent any Mcp-Param header.
func (c *Call) SentParams() bool {
	for k := range c.Req.Header {
		if strings.HasPrefix(k, mcpparse.ParamHeaderPrefix) {
			return true
		}
	}
	return false
}

// ChecksParams reports whether the client's Mcp-Param headers of a
// tools/call are checked against its tool's definition (SEP-2243): on a
// 2026-07-28 request, and on any that sends one. The router checks them
// before forwarding, and again when it reads the definition anew for a
// call the server refused (paramHeaders).
func (c *Call) ChecksParams() bool {
	return c.SentParams() || c.Version() >= mcpparse.Version2026
}

// Caller is c's authorization context, as the catalog keys lists by it,
// with its session.
func (c *Call) Caller() catalog.Caller {
	return catalog.Caller{Issuer: c.Claims.Issuer, Subject: c.Claims.Subject, Expiry: c.Claims.CallerExpiry, Authorization: c.Auth, Session: c.Sess}
}
