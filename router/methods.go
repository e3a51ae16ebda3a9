package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// complete forwards completion/complete: a ref/prompt to the prompt's
// server with the prefix stripped from ref.name (spliced, as tools/call's
// name is), a ref/resource to the server of the template's URI, as
// resources/read finds it.
func (r *Router) complete(w http.ResponseWriter, c *forward.Call) {
	if c.Msg.Ref == "ref/prompt" {
		srv, body, _, ok := r.resolveNamed(w, c)
		if ok {
			r.fwd.Forward(w, c, srv, body, "")
		}
		return
	}
	srv, ok := r.resourceOwner(c, c.Msg.URI)
	if !ok {
		forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInvalidParams, "unknown resource template")
		return
	}
	r.fwd.Forward(w, c, srv, c.Body, "")
}

// subscribe forwards resources/subscribe and resources/unsubscribe to the
// server owning the URI, on the caller's upstream session with it: that
// server then sends notifications/resources/updated to this session only
// (relayed while the policy still lets the caller read the URI, see
// updateAllowed).
func (r *Router) subscribe(w http.ResponseWriter, c *forward.Call) {
	srv, ok := r.resourceOwner(c, c.Msg.URI)
	if !ok {
		forward.WriteError(w, http.StatusOK, c.Msg.ID, -32002, "resource not found")
		return
	}
	r.fwd.Forward(w, c, srv, c.Body, "")
}

// setLevel passes logging/setLevel to every server that declared logging
// and the policy allows it on (Forwarder.FanOut),
// on the caller's session with it (opened now if it was not yet, so that the
// level holds for later calls), and answers {} once all have answered. A
// server that fails or refuses is logged and left out: a log level is best
// effort and one bad upstream must not fail the client's session. This
// replica keeps the level (per session, bounded by CacheSize) and gives it
// to the upstream sessions it opens later (a server registered after, a
// session the upstream lost); another replica does not know it, so its
// upstream sessions start at their server's default.
func (r *Router) setLevel(w http.ResponseWriter, c *forward.Call) {
	if c.Msg.Params == nil {
		forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInvalidParams, "logging/setLevel without params")
		return
	}
	ctx, cancel := context.WithTimeout(c.Req.Context(), r.cfg.CallTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range r.fwd.FanOut(ctx, c, c.Msg.Method) {
		wg.Go(func() {
			auth, err := r.fwd.UpstreamAuth(ctx, c.Auth, srv.Name)
			if err != nil {
				return
			}
			up, err := r.fwd.UpstreamFor(ctx, c.Sess, &srv, auth)
			if err != nil || !up.Logging {
				return
			}
			h := upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version, Method: c.Msg.Method}
			if _, _, err := r.up.Request(ctx, pool.Target(&srv), h, c.Msg.Method, c.Msg.Params); err != nil {
				r.log.Info("logging/setLevel not applied", "server", srv.Name, "error", err.Error())
			}
		})
	}
	wg.Wait()
	// Kept after the fan-out: a session opened during it got the level
	// kept before, then this one.
	r.levels.Put(c.Sess.Key(), bytes.Clone(c.Msg.Params))
	forward.WriteJSON(w, http.StatusOK, forward.ResultBody(c.Msg.ID, []byte("{}")))
}

// callerAuthKey is the context key of the caller's Authorization value, for
// applyLevel: set on a POST of a session that set a log level, and on every
// GET stream (a level may be set while it is open).
type callerAuthKey struct{}

// upstreamOpened counts an upstream session just opened and gives it the log level
// its client session set, before any other request has it.
func (r *Router) upstreamOpened(ctx context.Context, o *pool.Owner, srv *registry.Server, auth string, up upstream.Session) {
	r.metrics.upstreamSessions.Inc()
	r.applyLevel(ctx, o.Key, srv, auth, up)
}

// applyLevel gives an upstream session just opened the log level its
// client session (by key) set, if any, if the server declared logging and
// if the policy allows the caller logging/setLevel on it (as Forwarder.FanOut decides;
// the caller's credential comes with ctx, set by post and get); best effort.
func (r *Router) applyLevel(ctx context.Context, session string, srv *registry.Server, auth string, up upstream.Session) {
	params, ok := r.levels.Get(session)
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
	if _, _, err := r.up.Request(ctx, pool.Target(srv), h, "logging/setLevel", params); err != nil {
		r.log.Info("logging/setLevel not applied", "server", srv.Name, "error", err.Error())
	}
}

// checkParams checks a tools/call's Mcp-Param-{Name} headers against the
// arguments the tool marks with x-mcp-header in its inputSchema (from the
// caller's tools list of srv): on 2026-07-28 requests, and on any request
// that sends one (Call.ChecksParams). The definition is the one the
// catalog holds for this caller, stale or not (catalog.Definition); when
// the headers do not match a stale one it is read anew and checked once
// more, so that a client that listed the tools since is not refused for
// the router's older copy. It answers 400 with -32020 and reports false on
// a mismatch; a list that cannot be had refuses the call too, as a header
// that cannot be checked is not let through. A definition whose marks
// cannot be honoured (catalog.ErrToolDefinition) is the server's failure,
// answered as forward answers it.
func (r *Router) checkParams(w http.ResponseWriter, c *forward.Call, srv *registry.Server, name string) bool {
	if !c.ChecksParams() {
		return true
	}
	sent := c.SentParams()
	tool, stale, ok := r.tool(c, srv, name, false)
	err := r.params.Check(c.Req.Header, c.Msg.Arguments, tool)
	if stale && (err != nil || !ok && sent) {
		tool, _, ok = r.tool(c, srv, name, true)
		err = r.params.Check(c.Req.Header, c.Msg.Arguments, tool)
	}
	if !ok && !sent {
		return true // an unknown tool mirrors nothing; the server answers it
	}
	if ok {
		c.Tool = tool // forward mirrors the same definition upstream
	}
	if err != nil {
		if errors.Is(err, catalog.ErrToolDefinition) {
			r.upstreamFailed(srv, c.Msg.Method, err)
			forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInternal, "the server's definition of this tool has an x-mcp-header the router cannot send")
			return false
		}
		forward.WriteError(w, http.StatusBadRequest, c.Msg.ID, forward.CodeHeaderMismatch, "Mcp-Param header does not match the arguments")
		return false
	}
	return true
}

// tool is srv's tool name (unprefixed) as listed to the caller: from the
// list of srv's tools the catalog holds for this caller with the
// credential of this call when authz vouched for it (the Authorization
// received is then srv's token, not the caller's), else with the one the
// Authorizer gives; read anew when refresh. stale: the catalog's copy is
// past its ttlMs. A tool the list does not have declares no header.
func (r *Router) tool(c *forward.Call, srv *registry.Server, name string, refresh bool) (tool json.RawMessage, stale, ok bool) {
	ctx := c.Req.Context()
	auth := c.Auth
	if !c.Vouched(srv) {
		a, err := r.fwd.UpstreamAuth(ctx, c.Auth, srv.Name)
		if err != nil {
			return json.RawMessage(`{}`), false, false
		}
		auth = a
	}
	if refresh {
		tool, ok = r.cat.RefreshTool(ctx, c.Caller(), srv, auth, name)
	} else {
		tool, stale, ok = r.cat.Definition(ctx, c.Caller(), srv, auth, name)
	}
	if !ok {
		return json.RawMessage(`{}`), stale, false // declares no header
	}
	return tool, stale, true
}
