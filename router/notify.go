package router

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/registry"
)

// keepAlive is how often an idle GET stream carries an SSE comment.
const keepAlive = 25 * time.Second

// hub reaches every open GET stream of this replica.
type hub struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{}
}

func newHub() *hub { return &hub{subs: map[chan []byte]struct{}{}} }

func (h *hub) add(ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[ch] = struct{}{}
}

func (h *hub) remove(ch chan []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, ch)
}

// broadcast offers data to every stream; a stream that is full misses it.
func (h *hub) broadcast(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- data:
		default:
		}
	}
}

var listChanged = [][]byte{
	[]byte(`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`),
	[]byte(`{"jsonrpc":"2.0","method":"notifications/prompts/list_changed"}`),
	[]byte(`{"jsonrpc":"2.0","method":"notifications/resources/list_changed"}`),
}

// watchRegistry tells every client that its lists changed when the
// registry does, and drops the lists of servers that left.
func (r *Router) watchRegistry() {
	for {
		ch := r.reg.Changed()
		select {
		case <-r.done:
			return
		case <-ch:
		}
		r.lists.retain(r.reg.Load())
		for _, n := range listChanged {
			r.streams.broadcast(n)
		}
	}
}

// get serves the client's GET stream: the notifications and requests of
// every upstream session, and list_changed when the registry changes.
func (r *Router) get(w http.ResponseWriter, req *http.Request) {
	claims, ok := r.trust(w, req, nil)
	if !ok {
		return
	}
	if claims.Method != "" {
		writeError(w, http.StatusUnauthorized, nil, codeInvalidRequest, "request did not pass authorization")
		return
	}
	s, ok := r.open(w, req, claims, nil)
	if !ok {
		return
	}
	c := &call{req: req, claims: claims, sess: s, auth: req.Header.Get("Authorization")}
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	events := make(chan []byte, 64)
	r.streams.add(events)
	defer r.streams.remove(events)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, srv := range r.reg.Load().Servers() {
		wg.Go(func() { r.watchUpstream(ctx, c, &srv, events) })
	}
	sw := startSSE(w, "")
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
		case ev := <-events:
			err = sw.event(ev)
		case <-tick.C:
			err = sw.comment("keep-alive")
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
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return false
		}
		req.Header.Set("Accept", "text/event-stream")
		setUpstreamHeaders(req.Header, upstreamHeaders{auth: auth, session: up.ID, version: up.Version})
		resp, err := r.client.Do(req)
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
		r.relayStream(ctx, srv, resp.Body, out)
		resp.Body.Close()
		return ctx.Err() == nil
	}
	return true
}

func (r *Router) relayStream(ctx context.Context, srv *registry.Server, body io.Reader, out chan<- []byte) {
	sr := newSSEReader(body, r.cfg.MaxResponseBytes)
	for {
		data, err := sr.next()
		if err != nil {
			return
		}
		m, err := parseMessage(data)
		if err != nil {
			continue
		}
		switch {
		case m.isRequest():
			m.ID = wrapID(srv.Name, m.ID)
			data, _ = json.Marshal(m)
		case m.isNotification() && strings.HasSuffix(m.Method, "/list_changed"):
			r.lists.invalidate(srv.Name)
		case m.isResponse():
			continue
		}
		select {
		case out <- data:
		case <-ctx.Done():
			return
		}
	}
}
