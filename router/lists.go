package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// list answers one of the list methods: aggregated, filtered for the
// caller by the policy of the method that uses each entry, one page (see
// catalog.Catalog.Page).
func (r *Router) list(w http.ResponseWriter, c *forward.Call, k *catalog.Kind) {
	var cursor string
	if v := nullable(c.Msg.Cursor); v != nil {
		var err error
		if cursor, err = mcpparse.String(v); err != nil {
			forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInvalidParams, "invalid params")
			return
		}
	}
	p, err := r.cat.Page(c.Req.Context(), k, c.Caller(), r.auth, cursor)
	switch {
	case errors.Is(err, catalog.ErrCursor):
		forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInvalidParams, "invalid cursor")
		return
	case err != nil:
		forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInternal, "authorization unavailable")
		return
	}
	b := make([]byte, 0, len(c.Msg.ID)+p.Size())
	b = append(append(b, `{"jsonrpc":"2.0","id":`...), c.Msg.ID...)
	b = p.Append(append(b, `,"result":`...), c.Sess.Stateless())
	forward.WriteJSON(w, http.StatusOK, append(b, '}'))
}

// lister is the catalog's Source: the credentials the router sends each
// server for a caller, and the caller's upstream sessions (Caller.Session
// is the call's *session.Record).
type lister struct{ r *Router }

func (l lister) Credential(ctx context.Context, caller catalog.Caller, server string) (string, error) {
	return l.r.fwd.UpstreamAuth(ctx, caller.Authorization, server)
}

// Request sends one list request on the call's upstream session with srv;
// when the upstream has ended that session it opens a new one and sends
// again, once.
func (l lister) Request(ctx context.Context, caller catalog.Caller, srv *registry.Server, auth, method string, params []byte) (json.RawMessage, string, error) {
	r, s := l.r, caller.Session.(*session.Record)
	up, err := r.fwd.UpstreamFor(ctx, s, srv, auth)
	if err != nil {
		return nil, "", err
	}
	for retried := false; ; retried = true {
		p := params
		if up.ID == "" && up.Version >= upstream.Stateless {
			p = upstream.StatelessParams(params, s.Info, s.Caps)
		}
		h := upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}
		raw, _, err := r.up.Request(ctx, pool.Target(srv), h, method, p)
		if errors.Is(err, upstream.ErrSessionEnded) && up.ID != "" && !retried {
			if up, err = r.fwd.Reinit(ctx, s, srv, auth, up); err != nil {
				return nil, "", err
			}
			continue
		}
		return raw, up.Version, err
	}
}

// reporter counts and logs what the catalog leaves out of lists.
type reporter struct{ r *Router }

func (p reporter) Failed(srv *registry.Server, list string, err error) {
	if limit := catalog.Limit(err); limit != "" {
		p.r.metrics.tooLarge.WithLabelValues(srv.Name, limit).Inc()
	}
	p.r.upstreamFailed(srv, list, err)
}

func (p reporter) TooLarge(srv *registry.Server, list, limit string, bytes int64, items int) {
	p.r.metrics.tooLarge.WithLabelValues(srv.Name, limit).Inc()
	p.r.log.Warn("upstream list left out: too large", "server", srv.Name, "list", list,
		"limit", limit, "bytes", bytes, "items", items)
}

func (p reporter) Shadowed(srv *registry.Server, list string, names []string) {
	p.r.metrics.shadowed.WithLabelValues(srv.Name, list).Add(float64(len(names)))
	const shown = 10
	p.r.log.Warn("upstream names left out: another server's longer prefix takes them",
		"server", srv.Name, "prefix", srv.Prefix, "list", list, "count", len(names), "names", names[:min(len(names), shown)])
}
