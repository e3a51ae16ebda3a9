package relay

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// KeepAlive is how often an idle GET stream carries an SSE comment.
const KeepAlive = 25 * time.Second

// Session is what relaying the servers' GET streams to one client session
// needs of the router.
type Session interface {
	// Connect returns the credentials for srv and the client session's
	// upstream session with it, opened if there is none yet.
	Connect(ctx context.Context, srv *registry.Server) (auth string, up upstream.Session, err error)
	// Reconnect opens a new upstream session with srv in place of old,
	// which srv no longer knows.
	Reconnect(ctx context.Context, srv *registry.Server, auth string, old upstream.Session) (upstream.Session, error)
	// UpdateAllowed reports whether notifications/resources/updated m may
	// reach the client.
	UpdateAllowed(ctx context.Context, srv *registry.Server, m *mcpparse.Message) bool
	// TaskMessage returns data with the task ids in it as the client knows
	// them; ok false drops it.
	TaskMessage(srv *registry.Server, data []byte, m *mcpparse.Message) ([]byte, bool)
}

// Lists is the aggregated lists, which a server's list_changed makes stale.
type Lists interface {
	Invalidate(server string)
}

// Watcher serves the clients' GET streams and relays into them the GET
// streams of the servers they have upstream sessions with.
type Watcher struct {
	Up       *upstream.Client
	Lists    Lists
	Answer   mcpparse.Options // how a server's messages are read
	MaxBytes int64            // the largest event read from a server
	Done     <-chan struct{}  // closed when shutdown starts: streams end
	Open     prometheus.Gauge // the client GET streams open
}

// Serve answers a client's GET with an event stream and writes st's events
// to it, a comment when idle, until ctx ends, shutdown starts, st's
// session ends, expired fires, or a write fails.
func (wt *Watcher) Serve(ctx context.Context, w http.ResponseWriter, st *Stream, expired <-chan time.Time) {
	sw := Start(w, "")
	wt.Open.Inc()
	defer wt.Open.Dec()
	tick := time.NewTicker(KeepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-wt.Done:
			return
		case <-st.Ended():
			return
		case <-expired:
			return
		case ev := <-st.Events:
			err = sw.Event(ev)
		case <-tick.C:
			err = sw.Comment("keep-alive")
		}
		if err != nil {
			return
		}
	}
}

// Watch relays srv's GET stream for s into out until ctx ends, opening it
// again after it ends (with a growing pause). A server without a GET
// stream (405) is left alone.
func (wt *Watcher) Watch(ctx context.Context, s Session, srv *registry.Server, out chan<- []byte) {
	pause := time.Second
	for {
		if !wt.watchOnce(ctx, s, srv, out) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-wt.Done:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// watchOnce reads one upstream GET stream; it reports whether to retry.
func (wt *Watcher) watchOnce(ctx context.Context, s Session, srv *registry.Server, out chan<- []byte) bool {
	auth, up, err := s.Connect(ctx, srv)
	if err != nil {
		return true
	}
	for attempt := 0; attempt < 2; attempt++ {
		resp, err := wt.Up.Get(ctx, pool.Target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version})
		if err != nil {
			return ctx.Err() == nil
		}
		switch {
		case resp.StatusCode == http.StatusMethodNotAllowed:
			resp.Body.Close()
			return false
		case resp.StatusCode == http.StatusNotFound && up.ID != "" && attempt == 0:
			resp.Body.Close()
			if up, err = s.Reconnect(ctx, srv, auth, up); err != nil {
				return true
			}
			continue
		case resp.StatusCode != http.StatusOK:
			resp.Body.Close()
			return true
		}
		wt.relay(ctx, s, srv, resp.Body, out)
		resp.Body.Close()
		return ctx.Err() == nil
	}
	return true
}

// relay sends the requests and notifications of srv's event stream body
// on to out: requests with their ids wrapped, list_changed making srv's
// lists stale, what s withholds dropped, and anything else (answers,
// what cannot be read) dropped.
func (wt *Watcher) relay(ctx context.Context, s Session, srv *registry.Server, body io.Reader, out chan<- []byte) {
	sr := upstream.NewSSEReader(body, wt.MaxBytes)
	for {
		data, err := sr.Next()
		if err != nil {
			return
		}
		m, err := mcpparse.Parse(data, wt.Answer)
		if err != nil {
			continue
		}
		switch m.Kind {
		case mcpparse.KindRequest:
			data = mcpparse.Splice(data, m.IDSpan, WrapID(srv.Name, m.ID))
			data, _ = s.TaskMessage(srv, data, &m) // a request is never dropped
		case mcpparse.KindNotification:
			if strings.HasSuffix(m.Method, "/list_changed") {
				wt.Lists.Invalidate(srv.Name)
			}
			if m.Method == "notifications/resources/updated" && !s.UpdateAllowed(ctx, srv, &m) {
				continue
			}
			var ok bool
			if data, ok = s.TaskMessage(srv, data, &m); !ok {
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
