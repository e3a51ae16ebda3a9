package router

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// keepAlive is how often an idle GET stream carries an SSE comment.
const keepAlive = 25 * time.Second

var listChanged = [][]byte{
	[]byte(`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`),
	[]byte(`{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}`),
	[]byte(`{"jsonrpc":"2.0","method":"notifications/resources/list_changed"}`),
}

// Watch tells every client that its lists changed when the registry does,
// and drops the lists of servers that left, until ctx ends or the Router is
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
		r.cat.Retain(r.reg.Load())
		for _, n := range listChanged {
			r.streams.Broadcast(n)
		}
	}
}

// get serves the client's GET stream: the notifications and requests of
// every upstream session the session has on this replica (those it opens
// later join when they open), and list_changed when the registry changes. It
// ends when the session ends on this replica (DELETE), when the session
// expires, and when the caller's token does (claims.CallerExpiry; a caller
// without one keeps the stream until the session ends).
func (r *Router) get(w http.ResponseWriter, req *http.Request) {
	claims, s, ok := r.openBodyless(w, req)
	if !ok {
		return
	}
	c := &call{req: req, claims: claims, sess: s, auth: req.Header.Get("Authorization")}
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	st := relay.NewStream(s.key())
	st.Relay = func(srv *registry.Server) { r.watchUpstream(ctx, c, srv, st.Events) }
	r.streams.Add(st)
	defer r.streams.Remove(st)
	defer st.Stop()
	defer cancel()
	if r.isEnded(s) { // ended between open and add: end never saw this stream
		writeError(w, http.StatusNotFound, nil, codeInvalidRequest, "session not found")
		return
	}
	until := r.sessionExpiry(s)
	if e := claims.CallerExpiry; !e.IsZero() && e.Before(until) {
		until = e
	}
	expired := time.NewTimer(until.Sub(r.now()))
	defer expired.Stop()
	events := st.Events
	servers := r.reg.Load().Servers()
	for i := range servers {
		if _, ok := r.pool.Get(s.key(), servers[i].Name); ok {
			st.Watch(&servers[i])
		}
	}
	sw := relay.Start(w, "")
	r.metrics.streams.Inc()
	defer r.metrics.streams.Dec()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-st.Ended():
			return
		case <-expired.C:
			return
		case ev := <-events:
			err = sw.Event(ev)
		case <-tick.C:
			err = sw.Comment("keep-alive")
		}
		if err != nil {
			return
		}
	}
}

// watchUpstream relays one upstream's GET stream until ctx ends, opening it
// again after it ends (with a growing pause). A server without a GET
// stream (405) is left alone.
func (r *Router) watchUpstream(ctx context.Context, c *call, srv *registry.Server, out chan<- []byte) {
	pause := time.Second
	for {
		if !r.watchOnce(ctx, c, srv, out) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// watchOnce reads one upstream GET stream; it reports whether to retry.
func (r *Router) watchOnce(ctx context.Context, c *call, srv *registry.Server, out chan<- []byte) bool {
	auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
	if err != nil {
		return true
	}
	up, err := r.upstreamFor(ctx, c.sess, srv, auth)
	if err != nil {
		return true
	}
	for attempt := 0; attempt < 2; attempt++ {
		resp, err := r.up.Get(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version})
		if err != nil {
			return ctx.Err() == nil
		}
		switch {
		case resp.StatusCode == http.StatusMethodNotAllowed:
			resp.Body.Close()
			return false
		case resp.StatusCode == http.StatusNotFound && up.ID != "" && attempt == 0:
			resp.Body.Close()
			if up, err = r.reinit(ctx, c.sess, srv, auth, up); err != nil {
				return true
			}
			continue
		case resp.StatusCode != http.StatusOK:
			resp.Body.Close()
			return true
		}
		r.relayStream(ctx, c, srv, resp.Body, out)
		resp.Body.Close()
		return ctx.Err() == nil
	}
	return true
}

func (r *Router) relayStream(ctx context.Context, c *call, srv *registry.Server, body io.Reader, out chan<- []byte) {
	sr := upstream.NewSSEReader(body, r.cfg.MaxResponseBytes)
	for {
		data, err := sr.Next()
		if err != nil {
			return
		}
		m, err := mcpparse.Parse(data, r.answer)
		if err != nil {
			continue
		}
		switch m.Kind {
		case mcpparse.KindRequest:
			data = mcpparse.Splice(data, m.IDSpan, relay.WrapID(srv.Name, m.ID))
			data, _ = r.taskMessage(c, srv, data, &m) // a request is never dropped
		case mcpparse.KindNotification:
			if strings.HasSuffix(m.Method, "/list_changed") {
				r.cat.Invalidate(srv.Name)
			}
			if m.Method == "notifications/resources/updated" && !r.updateAllowed(ctx, c, srv, &m) {
				continue
			}
			var ok bool
			if data, ok = r.taskMessage(c, srv, data, &m); !ok {
				continue
			}
		default:
			continue
		}
		select {
		case out <- data:
		case <-ctx.Done():
			return
		}
	}
}
