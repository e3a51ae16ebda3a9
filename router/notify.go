package router

import (
	"context"
	"net/http"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

var listChanged = [][]byte{
	[]byte(`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`),
	[]byte(`{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}`),
	[]byte(`{"jsonrpc":"2.0","method":"notifications/resources/list_changed"}`),
}

// Watch tells every client that its lists changed when the registry does,
// and drops the lists of servers that left and the transports of those
// that no longer have a CA of their own, until ctx ends or the Router is
// closed. Start runs it; run it beside Handler when serving without Start.
func (r *Router) Watch(ctx context.Context) {
	for {
		ch := r.reg.Changed()
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-ch:
		}
		snap := r.reg.Load()
		r.cat.Retain(snap)
		r.up.Retain(func(name string) bool {
			srv, ok := snap.Server(name)
			return ok && len(srv.CACert) > 0
		})
		for _, n := range listChanged {
			r.streams.Broadcast(n)
		}
	}
}

// get serves the client's GET stream (relay.Watcher.Serve): the
// notifications and requests of every upstream session the session has on
// this replica (those it opens later join when they open), and list_changed
// when the registry changes. It ends when the session ends on this replica
// (DELETE), when the session expires, and when the caller's token does
// (claims.CallerExpiry; a caller without one keeps the stream until the
// session ends).
func (r *Router) get(w http.ResponseWriter, req *http.Request) {
	claims, s, ok := r.openBodyless(w, req)
	if !ok {
		return
	}
	g := &getSession{r: r, c: &forward.Call{Req: req, Claims: claims, Sess: s, Auth: req.Header.Get("Authorization")}}
	release, ok := r.acquireStream(w, g.c)
	if !ok {
		return
	}
	defer release()
	// An upstream session the stream opens (Connect, Reconnect), now or
	// after the client sets a log level, is given that level where the
	// policy lets the caller set it (applyLevel decides with this).
	ctx, cancel := context.WithCancel(context.WithValue(req.Context(), callerAuthKey{}, g.c.Auth))
	st := relay.NewStream(s.Key())
	st.Relay = func(srv *registry.Server) { r.watcher.Watch(ctx, g, srv, st.Events) }
	r.streams.Add(st)
	defer r.streams.Remove(st)
	defer st.Stop()
	// Runs first: Stop waits for the relays, which end with ctx.
	defer cancel()
	if r.isEnded(s) { // ended between open and add: end never saw this stream
		forward.WriteError(w, http.StatusNotFound, nil, forward.CodeInvalidRequest, "session not found")
		return
	}
	until := s.Expiry(r.cfg.SessionTTL)
	if e := claims.CallerExpiry; !e.IsZero() && e.Before(until) {
		until = e
	}
	expired := time.NewTimer(until.Sub(r.now()))
	defer expired.Stop()
	servers := r.reg.Load().Servers()
	for i := range servers {
		if _, ok := r.pool.Get(s.Key(), servers[i].Name); ok {
			st.Watch(&servers[i])
		}
	}
	r.watcher.Serve(ctx, w, st, expired.C)
}

// getSession is what relaying the servers' GET streams to the client of c
// needs of the router (relay.Session).
type getSession struct {
	r *Router
	c *forward.Call
}

func (g *getSession) Connect(ctx context.Context, srv *registry.Server) (string, upstream.Session, error) {
	auth, err := g.r.fwd.UpstreamAuth(ctx, g.c.Auth, srv.Name)
	if err != nil {
		return "", upstream.Session{}, err
	}
	up, err := g.r.fwd.UpstreamFor(ctx, g.c.Sess, srv, auth)
	return auth, up, err
}

func (g *getSession) Reconnect(ctx context.Context, srv *registry.Server, auth string, old upstream.Session) (upstream.Session, error) {
	return g.r.fwd.Reinit(ctx, g.c.Sess, srv, auth, old)
}

func (g *getSession) UpdateAllowed(ctx context.Context, srv *registry.Server, m *mcpparse.Message) bool {
	return g.r.fwd.UpdateAllowed(ctx, g.c, srv, m)
}

func (g *getSession) TaskMessage(srv *registry.Server, data []byte, m *mcpparse.Message) ([]byte, bool) {
	return g.r.fwd.TaskMessage(g.c, srv, data, m)
}
