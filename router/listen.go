package router

import (
	"context"
	"errors"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/listen"
	"github.com/mcp-authz/mcp-authz/router/relay"
)

// listen serves subscriptions/listen (package listen) on a stateless
// request: a filter that is not what the revision defines is refused; so is
// the whole request when one of its resource subscriptions names a URI no
// server has or the caller may not read (the same refusal for both), before
// anything opens upstream.
func (r *Router) listen(w http.ResponseWriter, c *call) {
	id := c.msg.ID
	if !c.sess.stateless() {
		writeError(w, http.StatusOK, id, codeNoMethod, "method not found")
		return
	}
	cfg := &listen.Config{
		Router:           listenCaller{r: r, c: c},
		Registry:         r.reg,
		Auth:             r.auth, // nil stays nil: every subscription allowed
		CallerAuth:       c.auth,
		Upstream:         r.up,
		Pool:             r.pool,
		Catalog:          r.cat,
		Streams:          r.streams,
		Sessions:         r.metrics.upstreamSessions,
		Withheld:         r.metrics.withheld,
		Request:          requestOptions,
		Answer:           r.answer,
		InitTimeout:      r.cfg.InitTimeout,
		MaxResponseBytes: r.cfg.MaxResponseBytes,
		KeepAlive:        relay.KeepAlive,
		Now:              r.now,
		Done:             r.done,
		Key:              "listen." + randomID(),
		ID:               id,
		Expiry:           c.claims.CallerExpiry,
		Version:          legacyVersion(c.sess.Version),
		Caps:             c.sess.Caps,
		Info:             c.sess.Info,
	}
	s, err := listen.Open(c.req.Context(), cfg, c.msg.Params)
	var refused *listen.RefusedError
	switch {
	case errors.As(err, &refused):
		writeError(w, http.StatusForbidden, id, codeForbidden, "resource subscription refused: "+refused.URI)
		return
	case err != nil:
		writeError(w, http.StatusOK, id, codeInvalidParams, "invalid params.notifications")
		return
	}
	s.Serve(c.req.Context(), w)
}

// listenCaller is what a listen needs of the router, for the caller of c.
type listenCaller struct {
	r *Router
	c *call
}

func (l listenCaller) Owner(uri string) (*registry.Server, bool) { return l.r.resourceOwner(l.c, uri) }

func (l listenCaller) FanOut(ctx context.Context, method string) []registry.Server {
	return l.r.fanOut(ctx, l.c, method)
}

func (l listenCaller) UpdateAllowed(ctx context.Context, srv *registry.Server, m *mcpparse.Message) bool {
	return l.r.updateAllowed(ctx, l.c, srv, m)
}

func (l listenCaller) UpstreamAuth(ctx context.Context, server string) (string, error) {
	return l.r.upstreamAuth(ctx, l.c.auth, server)
}

func (l listenCaller) Failed(srv *registry.Server, op string, err error) {
	l.r.upstreamFailed(srv, op, err)
}
