package router

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// complete forwards completion/complete: a ref/prompt to the prompt's
// server with the prefix stripped from ref.name (spliced, as tools/call's
// name is), a ref/resource to the server of the template's URI, as
// resources/read finds it.
func (r *Router) complete(w http.ResponseWriter, c *call) {
	if c.msg.Ref == "ref/prompt" {
		srv, body, _, ok := r.resolveNamed(w, c)
		if ok {
			r.forward(w, c, srv, body, "")
		}
		return
	}
	srv, ok := r.resourceOwner(c, c.msg.URI)
	if !ok {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "unknown resource template")
		return
	}
	r.forward(w, c, srv, c.body, "")
}

// subscribe forwards resources/subscribe and resources/unsubscribe to the
// server owning the URI, on the caller's upstream session with it: that
// server then sends notifications/resources/updated to this session only
// (relayed while the policy still lets the caller read the URI, see
// updateAllowed).
func (r *Router) subscribe(w http.ResponseWriter, c *call) {
	srv, ok := r.resourceOwner(c, c.msg.URI)
	if !ok {
		writeError(w, http.StatusOK, c.msg.ID, -32002, "resource not found")
		return
	}
	r.forward(w, c, srv, c.body, "")
}

// setLevel passes logging/setLevel to every server that declared logging
// and the policy allows it on (fanOut),
// on the caller's session with it (opened now if it was not yet, so that the
// level holds for later calls), and answers {} once all have answered. A
// server that fails or refuses is logged and left out: a log level is best
// effort and one bad upstream must not fail the client's session. This
// replica keeps the level (per session, bounded by CacheSize) and gives it
// to the upstream sessions it opens later (a server registered after, a
// session the upstream lost); another replica does not know it, so its
// upstream sessions start at their server's default.
func (r *Router) setLevel(w http.ResponseWriter, c *call) {
	if c.msg.Params == nil {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "logging/setLevel without params")
		return
	}
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.CallTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range r.fanOut(ctx, c, c.msg.Method) {
		wg.Go(func() {
			auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
			if err != nil {
				return
			}
			up, err := r.upstreamFor(ctx, c.sess, &srv, auth)
			if err != nil || !up.Logging {
				return
			}
			h := upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version, Method: c.msg.Method}
			if _, _, err := r.up.Request(ctx, target(&srv), h, c.msg.Method, c.msg.Params); err != nil {
				r.log.Info("logging/setLevel not applied", "server", srv.Name, "error", err.Error())
			}
		})
	}
	wg.Wait()
	// Kept after the fan-out: a session opened during it got the level
	// kept before, then this one.
	r.levels.put(c.sess.key(), bytes.Clone(c.msg.Params))
	writeJSON(w, http.StatusOK, resultBody(c.msg.ID, []byte("{}")))
}

// applyLevel gives an upstream session just opened the log level its
// client session (by key) set, if any, if the server declared logging and
// if the policy allows the caller logging/setLevel on it (as fanOut decides;
// the caller's credential comes with ctx, set by post); best effort.
func (r *Router) applyLevel(ctx context.Context, session string, srv *registry.Server, auth string, up upstreamSession) {
	params, ok := r.levels.get(session)
	if !ok || !up.Logging {
		return
	}
	if r.auth != nil {
		caller, ok := ctx.Value(callerAuthKey{}).(string)
		if !ok {
			return
		}
		vis, err := r.auth.Visible(ctx, caller, []policy.Target{{Server: srv.Name, Method: "logging/setLevel"}})
		if err != nil || len(vis) != 1 || !vis[0] {
			return
		}
	}
	h := upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}
	if _, _, err := r.up.Request(ctx, target(srv), h, "logging/setLevel", params); err != nil {
		r.log.Info("logging/setLevel not applied", "server", srv.Name, "error", err.Error())
	}
}

// updateAllowed reports whether notifications/resources/updated from srv
// may reach the caller: the caller's policy still lets them read its URI.
// Only the session that subscribed receives it at all (its upstream
// session is the one that subscribed). Any failure withholds it.
func (r *Router) updateAllowed(ctx context.Context, c *call, srv *registry.Server, m *mcpparse.Message) bool {
	if m.Params == nil {
		return false
	}
	f, err := mcpparse.Fields(m.Params, r.answer, "uri")
	if err != nil || f[0].Raw == nil {
		return false
	}
	uri, err := mcpparse.String(f[0].Raw)
	if err != nil || uri == "" {
		return false
	}
	if r.auth == nil {
		return true
	}
	vis, err := r.auth.Visible(ctx, c.auth, []policy.Target{{Server: srv.Name, Resource: uri}})
	return err == nil && len(vis) == 1 && vis[0]
}

// checkParams checks a tools/call's Mcp-Param-{Name} headers against the
// arguments the tool marks with x-mcp-header in its inputSchema (from the
// caller's tools list of srv): on 2026-07-28 requests, and on any request
// that sends one. It answers 400 with -32020 and reports false on a
// mismatch; a list that cannot be had refuses the call too, as a header
// that cannot be checked is not let through.
func (r *Router) checkParams(w http.ResponseWriter, c *call, srv *registry.Server, name string) bool {
	var sent bool
	for k := range c.req.Header {
		if strings.HasPrefix(k, mcpparse.ParamHeaderPrefix) {
			sent = true
			break
		}
	}
	if !sent && c.version() < mcpparse.Version2026 {
		return true
	}
	tool, ok := r.tool(c, srv, name)
	if !ok && !sent {
		return true // an unknown tool mirrors nothing; the server answers it
	}
	if err := r.params.Check(c.req.Header, c.msg.Arguments, tool); err != nil {
		writeError(w, http.StatusBadRequest, c.msg.ID, codeHeaderMismatch, "Mcp-Param header does not match the arguments")
		return false
	}
	return true
}

// version is the protocol version of the call: the MCP-Protocol-Version
// header, else the one of params._meta, else the session's.
func (c *call) version() string {
	if v := c.req.Header.Get("Mcp-Protocol-Version"); v != "" {
		return v
	}
	if c.msg.Meta != nil {
		if f, err := mcpparse.Fields(c.msg.Meta, requestOptions, mcpparse.MetaProtocolVersion); err == nil && f[0].Raw != nil {
			if v, err := mcpparse.String(f[0].Raw); err == nil {
				return v
			}
		}
	}
	if c.sess != nil {
		return c.sess.Version
	}
	return ""
}

// tool is srv's tool name (unprefixed) as listed to the caller: from the
// list of srv's tools fetched for this caller with the credential of this
// call when authz vouched for it (the Authorization received is then srv's
// token, not the caller's), else with the one the Authorizer gives.
func (r *Router) tool(c *call, srv *registry.Server, name string) (json.RawMessage, bool) {
	ctx := c.req.Context()
	auth := c.auth
	if !c.vouched(srv) {
		a, err := r.upstreamAuth(ctx, c.auth, srv.Name)
		if err != nil {
			return json.RawMessage(`{}`), false
		}
		auth = a
	}
	if t, ok := r.cat.Tool(ctx, c.caller(), srv, auth, name); ok {
		return t, true
	}
	return json.RawMessage(`{}`), false // declares no header
}
