package router

import (
	"context"
	"errors"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/listen"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/session"
)

// listen serves subscriptions/listen (package listen) on a stateless
// request: a filter that is not what the revision defines is refused; so is
// the whole request when one of its resource subscriptions names a URI no
// server has or the caller may not read (the same refusal for both), before
// anything opens upstream.
func (r *Router) listen(w http.ResponseWriter, c *forward.Call) {
	id := c.Msg.ID
	if !c.Sess.Stateless() {
		forward.WriteError(w, http.StatusOK, id, forward.CodeNoMethod, "method not found")
		return
	}
	cfg := &listen.Config{
		Router:           listenCaller{r: r, c: c},
		Registry:         r.reg,
		Auth:             r.auth, // nil stays nil: every subscription allowed
		CallerAuth:       c.Auth,
		Upstream:         r.up,
		Pool:             r.pool,
		Catalog:          r.cat,
		Streams:          r.streams,
		Sessions:         r.metrics.upstreamSessions,
		Withheld:         r.metrics.withheld,
		Request:          forward.RequestOptions,
		Answer:           r.answer,
		InitTimeout:      r.cfg.InitTimeout,
		MaxResponseBytes: r.cfg.MaxResponseBytes,
		KeepAlive:        relay.KeepAlive,
		Now:              r.now,
		Done:             r.done,
		Key:              "listen." + session.RandomID(),
		ID:               id,
		Expiry:           c.Claims.CallerExpiry,
		Version:          session.LegacyVersion(c.Sess.Version),
		Caps:             c.Sess.Caps,
		Info:             c.Sess.Info,
	}
	release, ok := r.acquireStream(w, c)
	if !ok {
		return
	}
	defer release()
	s, err := listen.Open(c.Req.Context(), cfg, c.Msg.Params)
	var refused *listen.RefusedError
	switch {
	case errors.As(err, &refused):
		forward.WriteError(w, http.StatusForbidden, id, forward.CodeForbidden, "resource subscription refused: "+refused.URI)
		return
	case err != nil:
		forward.WriteError(w, http.StatusOK, id, forward.CodeInvalidParams, "invalid params.notifications")
		return
	}
	s.Serve(c.Req.Context(), w)
}

// listenCaller is what a listen needs of the router, for the caller of c.
type listenCaller struct {
	r *Router
	c *forward.Call
}

func (l listenCaller) Owner(uri string) (*registry.Server, bool) { return l.r.resourceOwner(l.c, uri) }

func (l listenCaller) FanOut(ctx context.Context, method string) []registry.Server {
	return l.r.fwd.FanOut(ctx, l.c, method)
}

func (l listenCaller) UpdateAllowed(ctx context.Context, srv *registry.Server, m *mcpparse.Message) bool {
	return l.r.fwd.UpdateAllowed(ctx, l.c, srv, m)
}

func (l listenCaller) UpstreamAuth(ctx context.Context, server string) (string, error) {
	return l.r.fwd.UpstreamAuth(ctx, l.c.Auth, server)
}

func (l listenCaller) Failed(srv *registry.Server, op string, err error) {
	l.r.upstreamFailed(srv, op, err)
}
