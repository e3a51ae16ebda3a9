package router

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// statelessVersions are the revisions the router serves without sessions
// (SEP-2575, SEP-2567), newest first.
var statelessVersions = []string{upstream.Stateless}

// supportedVersions is every revision the router serves, newest first: what
// server/discover and -32022 list. The router bridges generations both ways
// (see forward.Forwarder.UpstreamFor), so no registered server narrows it.
var supportedVersions = slices.Concat(statelessVersions, session.Versions)

// codeUnsupportedVersion is UnsupportedProtocolVersionError (2026-07-28).
const codeUnsupportedVersion = -32022

// statelessRequest serves c when it is a request of the stateless revision:
// its params._meta names a protocol version, or it is server/discover
// without a session. It reports whether it did (answered, refused or
// served); requests it leaves go on to the session path.
//
// Such a request needs no session and nothing shared: the caller is the
// assertion's issuer and subject, the client's capabilities come with the
// request, and every replica serves it alike. Where a server speaks only an
// earlier revision, the router holds an upstream session for the caller
// (per caller, server and client capabilities: see session.NewStateless).
func (r *Router) statelessRequest(w http.ResponseWriter, c *forward.Call) bool {
	m := &c.Msg
	if m.Kind != mcpparse.KindRequest {
		return false
	}
	var version string
	var caps, info json.RawMessage
	if m.Meta != nil {
		f, err := mcpparse.Fields(m.Meta, forward.RequestOptions, upstream.MetaVersion, upstream.MetaCapabilities, upstream.MetaClientInfo)
		if err != nil {
			forward.WriteError(w, http.StatusBadRequest, m.ID, forward.CodeInvalidParams, "invalid params._meta")
			return true
		}
		if f[0].Raw != nil {
			if version, err = mcpparse.String(f[0].Raw); err != nil || version == "" {
				forward.WriteError(w, http.StatusBadRequest, m.ID, forward.CodeInvalidParams, "invalid _meta "+upstream.MetaVersion)
				return true
			}
		}
		caps, info = nullable(f[1].Raw), nullable(f[2].Raw)
	}
	sid := c.Req.Header.Get("Mcp-Session-Id")
	switch {
	case version == "" && m.Method == "server/discover" && sid == "":
		// A probe without a version: answered, whatever the client speaks.
		r.discover(w, c)
		return true
	case version == "" && sid == "" && c.Req.Header.Get("Mcp-Protocol-Version") >= upstream.Stateless:
		forward.WriteError(w, http.StatusBadRequest, m.ID, forward.CodeInvalidParams, "missing _meta "+upstream.MetaVersion)
		return true
	case version == "":
		return false // a request of a session, or a 2025 initialize
	}
	if m.Method == "initialize" && !slices.Contains(statelessVersions, version) {
		return false // an initialize that names a session revision in _meta too
	}
	// From here on, Mcp-Session-Id is ignored (streamable HTTP, 2026-07-28).
	if !slices.Contains(statelessVersions, version) {
		unsupportedVersion(w, m.ID, version)
		return true
	}
	if !statelessHeaders(c.Req.Header, m, version) {
		forward.WriteError(w, http.StatusBadRequest, m.ID, forward.CodeHeaderMismatch, "MCP-Protocol-Version, Mcp-Method or Mcp-Name missing or not matching the body")
		return true
	}
	if len(caps)+len(info) > maxClientInit {
		forward.WriteError(w, http.StatusBadRequest, m.ID, forward.CodeInvalidParams, "invalid params._meta: "+clientInitTooLarge)
		return true
	}
	c.Sess = session.NewStateless(c.Claims.Issuer, c.Claims.Subject, version, r.now(), caps, info)
	switch m.Method {
	case "server/discover":
		r.discover(w, c)
	case "initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe":
		// Removed in 2026-07-28 (sessions, ping and the log level are gone;
		// subscriptions/listen replaces subscribe): not served statelessly.
		forward.WriteError(w, http.StatusNotFound, m.ID, forward.CodeNoMethod, "method not found")
	default:
		r.dispatch(w, c)
	}
	return true
}

// noMethodStatus is the HTTP status of the -32601 answer to a method the
// router does not serve: 404 for a stateless request (streamable HTTP,
// 2026-07-28: a JSON-RPC error body tells it from a legacy server's 404),
// 200 in a session, as 2025 revisions answer every JSON-RPC error.
func noMethodStatus(c *forward.Call) int {
	if c.Sess != nil && c.Sess.Stateless() {
		return http.StatusNotFound
	}
	return http.StatusOK
}

// statelessHeaders checks the headers a stateless request MUST carry:
// MCP-Protocol-Version equal to its _meta version, Mcp-Method, and Mcp-Name
// for the methods that name something (their equality with the body is
// checked by mirrorsBody, before).
func statelessHeaders(h http.Header, m *mcpparse.Message, version string) bool {
	if h.Get("MCP-Protocol-Version") != version || h.Get("Mcp-Method") == "" {
		return false
	}
	switch m.Method {
	case "tools/call", "prompts/get", "resources/read":
		return h.Get("Mcp-Name") != ""
	}
	return true
}

// unsupportedVersion answers 400 with UnsupportedProtocolVersionError,
// listing the versions the router serves.
func unsupportedVersion(w http.ResponseWriter, id json.RawMessage, requested string) {
	data, _ := json.Marshal(struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested"`
	}{supportedVersions, requested})
	e := append([]byte(`{"code":`+strconv.Itoa(codeUnsupportedVersion)+`,"message":"Unsupported protocol version","data":`), data...)
	e = append(e, '}')
	forward.WriteJSON(w, http.StatusBadRequest, forward.AnswerBody(id, nil, e))
}

// discoverCapabilities is what server/discover answers: what the router
// itself serves of every server (lists aggregated, calls routed, their
// changes and resource updates merged by subscriptions/listen, tasks).
const discoverCapabilities = `{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"listChanged":true,"subscribe":true},"extensions":{"io.modelcontextprotocol/tasks":{}}}`

// discover answers server/discover: the versions the router serves, its
// capabilities and identity. It is the same for every caller (public).
func (r *Router) discover(w http.ResponseWriter, c *forward.Call) {
	res, _ := json.Marshal(struct {
		ResultType        string          `json:"resultType"`
		SupportedVersions []string        `json:"supportedVersions"`
		Capabilities      json.RawMessage `json:"capabilities"`
		Meta              map[string]any  `json:"_meta"`
		TTL               int64           `json:"ttlMs"`
		Scope             string          `json:"cacheScope"`
	}{
		ResultType:        "complete",
		SupportedVersions: supportedVersions,
		Capabilities:      json.RawMessage(discoverCapabilities),
		Meta:              map[string]any{"io.modelcontextprotocol/serverInfo": map[string]string{"name": "mcp-authz", "version": "1"}},
		TTL:               r.cfg.ListRefresh.Milliseconds(),
		Scope:             "public",
	})
	forward.WriteJSON(w, http.StatusOK, forward.ResultBody(c.Msg.ID, res))
}
