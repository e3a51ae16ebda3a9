package listen

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// sync starts a listen with each registered server it has none with yet,
// when the filter wants anything of it, and stops those of servers that
// left the registry. It returns how many it started; each sends on ready
// (when not nil) once open or failed once.
func (s *Stream) sync(ctx context.Context, started map[string]context.CancelFunc, ready chan<- struct{}) int {
	servers := s.cfg.Registry.Load().Servers()
	present := map[string]bool{}
	n := 0
	// A listen for list changes alone reaches only the servers the policy
	// allows subscriptions/listen on (as logging/setLevel: the router's fanOut).
	var allowed map[string]bool
	listAllowed := func(name string) bool {
		if allowed == nil {
			allowed = map[string]bool{}
			for _, srv := range s.cfg.Router.FanOut(ctx, "subscriptions/listen") {
				allowed[srv.Name] = true
			}
		}
		return allowed[name]
	}
	for i := range servers {
		srv := servers[i]
		present[srv.Name] = true
		if _, ok := started[srv.Name]; ok || !s.wants(srv.Name, listAllowed) {
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		started[srv.Name] = cancel
		n++
		var once sync.Once
		signal := func() {
			once.Do(func() {
				select {
				case ready <- struct{}{}:
				default: // nil, or no one waits any more
				}
			})
		}
		s.wg.Go(func() {
			defer signal()
			s.run(sctx, &srv, signal)
		})
	}
	for name, cancel := range started {
		if !present[name] {
			cancel()
			delete(started, name)
		}
	}
	return n
}

// wants reports whether the filter asks anything of server.
func (s *Stream) wants(server string, listAllowed func(string) bool) bool {
	for _, o := range s.owner {
		if o == server {
			return true // its subscriptions were decided as reads of their URIs
		}
	}
	return (s.kinds[0] || s.kinds[1] || s.kinds[2]) && listAllowed(server)
}

// urisOf lists the subscribed URIs of server.
func (s *Stream) urisOf(server string) []string {
	var out []string
	for _, uri := range s.uris {
		if s.owner[uri] == server {
			out = append(out, uri)
		}
	}
	return out
}

// run listens to srv until ctx ends, again after each failure or end with
// a growing pause.
func (s *Stream) run(ctx context.Context, srv *registry.Server, ready func()) {
	pause := time.Second
	for {
		retry := s.once(ctx, srv, ready)
		ready()
		if !retry {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.Done:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// once opens one listen with srv and relays it until it ends; it reports
// whether to open it again.
func (s *Stream) once(ctx context.Context, srv *registry.Server, ready func()) bool {
	auth, err := s.cfg.Router.UpstreamAuth(ctx, srv.Name)
	if err != nil {
		return ctx.Err() == nil
	}
	if s.cfg.Pool.Modern(ctx, srv, auth) {
		return s.modern(ctx, srv, auth, ready)
	}
	return s.legacy(ctx, srv, auth, ready)
}

// modern opens subscriptions/listen with a server of the stateless
// revision, asking for what the client asked of it.
func (s *Stream) modern(ctx context.Context, srv *registry.Server, auth string, ready func()) bool {
	cfg := s.cfg
	filter := []byte(`{"notifications":`)
	filter = s.filter(filter, s.urisOf(srv.Name))
	filter = append(filter, '}')
	body := []byte(`{"jsonrpc":"2.0","id":"mcp-authz.listen","method":"subscriptions/listen","params":`)
	body = append(body, upstream.StatelessParams(filter, cfg.Info, cfg.Caps)...)
	body = append(body, '}')
	resp, err := cfg.Upstream.Post(ctx, pool.Target(srv), upstream.Headers{Auth: auth, Version: upstream.Stateless, Method: "subscriptions/listen"}, body)
	if err != nil {
		if ctx.Err() == nil {
			cfg.Router.Failed(srv, "subscriptions/listen", err)
		}
		return ctx.Err() == nil
	}
	defer resp.Body.Close()
	if err := upstream.StatusError(resp); err != nil {
		cfg.Router.Failed(srv, "subscriptions/listen", err)
		return true
	}
	if ct := upstream.MediaType(resp.Header); ct != "text/event-stream" {
		// Answered at once, not streamed: it refused the listen (an
		// error), or has nothing to send (a result). Asking again would
		// get the same.
		if m, err := cfg.Upstream.ReadAnswer(resp, []byte(`"mcp-authz.listen"`)); err != nil || m.Error != nil {
			cfg.Router.Failed(srv, "subscriptions/listen", upstream.ErrAnswer)
		}
		return false
	}
	s.relay(ctx, srv, resp.Body, ready)
	return ctx.Err() == nil
}

// legacy listens to a server of an earlier revision on a session of this
// listen's own: its GET stream, and resources/subscribe for each URI of
// it; the session is deleted when the listen ends.
func (s *Stream) legacy(ctx context.Context, srv *registry.Server, auth string, ready func()) bool {
	cfg := s.cfg
	t := pool.Target(srv)
	up, err := cfg.Upstream.Open(ctx, t, upstream.Headers{Auth: auth}, cfg.Version, cfg.Caps, cfg.Info)
	if err != nil {
		if ctx.Err() == nil {
			cfg.Router.Failed(srv, "initialize", err)
		}
		return ctx.Err() == nil
	}
	cfg.Sessions.Inc()
	h := upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.InitTimeout)
		defer cancel()
		cfg.Pool.Delete(dctx, srv, auth, up)
	}()
	resp, err := cfg.Upstream.Get(ctx, t, h)
	if err != nil {
		return ctx.Err() == nil
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusMethodNotAllowed:
		return false // no stream: it can send nothing outside a call
	default:
		cfg.Router.Failed(srv, "subscriptions/listen", upstream.StatusError(resp))
		return true
	}
	for _, uri := range s.urisOf(srv.Name) {
		hs := h
		hs.Name = uri
		params := mcpparse.AppendString([]byte(`{"uri":`), uri)
		if _, _, err := cfg.Upstream.Request(ctx, t, hs, "resources/subscribe", append(params, '}')); err != nil {
			if ctx.Err() != nil {
				return false
			}
			cfg.Router.Failed(srv, "resources/subscribe", err)
		}
	}
	ready()
	s.relay(ctx, srv, resp.Body, nil)
	return ctx.Err() == nil
}

// relay reads one upstream stream and sends the client what the filter
// lets through, rebuilt (see Stream). ready, when not nil, is called at
// the upstream's acknowledgment.
func (s *Stream) relay(ctx context.Context, srv *registry.Server, body io.Reader, ready func()) {
	cfg := s.cfg
	sr := upstream.NewSSEReader(body, cfg.MaxResponseBytes)
	for {
		data, err := sr.Next()
		if err != nil {
			return
		}
		m, err := mcpparse.Parse(data, cfg.Answer)
		if err != nil {
			continue
		}
		if m.Kind == mcpparse.KindResponse || m.Kind == mcpparse.KindError {
			return // the upstream ended its listen
		}
		if m.Kind != mcpparse.KindNotification {
			continue
		}
		var out []byte
		switch m.Method {
		case "notifications/subscriptions/acknowledged":
			if ready != nil {
				ready()
			}
		case "notifications/resources/updated":
			out = s.updated(ctx, srv, &m)
		default:
			for k, method := range listKinds {
				if m.Method != method {
					continue
				}
				cfg.Catalog.Invalidate(srv.Name)
				if s.kinds[k] {
					out = s.notification(method, "")
				}
			}
		}
		if out == nil {
			continue
		}
		select {
		case s.events <- out:
		case <-ctx.Done():
			return
		}
	}
}

// updated is resources/updated for the client, or nil when it is withheld:
// its URI is not one the client subscribed to at srv, or the policy no
// longer lets the caller read it (or cannot say).
func (s *Stream) updated(ctx context.Context, srv *registry.Server, m *mcpparse.Message) []byte {
	cfg := s.cfg
	var uri string
	if m.Params != nil {
		if f, err := mcpparse.Fields(m.Params, cfg.Answer, "uri"); err == nil && f[0].Raw != nil {
			uri, _ = mcpparse.String(f[0].Raw)
		}
	}
	if owner, ok := s.owner[uri]; !ok || owner != srv.Name {
		cfg.Withheld.WithLabelValues(srv.Name, "unsubscribed").Inc()
		return nil
	}
	if !cfg.Router.UpdateAllowed(ctx, srv, m) {
		cfg.Withheld.WithLabelValues(srv.Name, "denied").Inc()
		return nil
	}
	return s.notification("notifications/resources/updated", uri)
}
