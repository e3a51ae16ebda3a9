package router

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// maxListenURIs bounds the resource subscriptions of one
// subscriptions/listen (authz refuses more too).
const maxListenURIs = 100

// codeForbidden is the JSON-RPC code of a refusal by policy, as authz's.
const codeForbidden = -32003

// metaSubscriptionID is the _meta key naming the listen request a message of
// its stream belongs to.
const metaSubscriptionID = "io.modelcontextprotocol/subscriptionId"

// listKinds are the list_changed notifications, in the order of the
// notifications filter's flags (listenFlags).
var (
	listKinds   = [3]string{"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"}
	listenFlags = [3]string{"toolsListChanged", "promptsListChanged", "resourcesListChanged"}
)

// listener is one client's subscriptions/listen (MCP 2026-07-28): one SSE
// stream merging the notifications of every registered server. A server of
// the stateless revision gets a subscriptions/listen of its own; a server of
// an earlier one gets a session of this listen's own (initialize, its GET
// stream, resources/subscribe for each of its URIs), deleted when the
// listen ends. What reaches the client is rebuilt by the router: list_changed
// of the kinds the client asked for, and resources/updated of the URIs it
// subscribed to while the policy still lets the caller read them (the
// others are withheld and counted); nothing else of an upstream stream
// (progress, logs, requests, its own _meta) passes.
type listener struct {
	r      *Router
	c      *call
	kinds  [3]bool
	uris   []string          // subscribed, in the client's order
	owner  map[string]string // subscribed URI -> its server
	events chan []byte       // rebuilt notifications for the client
	wg     sync.WaitGroup    // the upstream listens running
}

// listen serves subscriptions/listen. A filter that is not what the
// revision defines is refused; so is the whole request when one of its
// resource subscriptions names a URI no server has or the caller may not
// read (the same refusal for both), before anything opens upstream. The
// stream ends when the client closes it (every upstream listen, stream and
// session of it is closed and awaited), when the caller's token expires or
// the router shuts down (both with the graceful-closure result). A server
// that fails is opened again with a growing pause, on its own: the stream
// and the other servers go on.
func (r *Router) listen(w http.ResponseWriter, c *call) {
	id := c.msg.ID
	if !c.sess.stateless() {
		writeError(w, http.StatusOK, id, codeNoMethod, "method not found")
		return
	}
	l := &listener{r: r, c: c, owner: map[string]string{}, events: make(chan []byte, 64)}
	if !l.parse(c.msg.Params) {
		writeError(w, http.StatusOK, id, codeInvalidParams, "invalid params.notifications")
		return
	}
	if uri, ok := l.route(c.req.Context()); !ok {
		writeError(w, http.StatusForbidden, id, codeForbidden, "resource subscription refused: "+uri)
		return
	}
	ctx, cancel := context.WithCancel(c.req.Context())
	defer func() {
		cancel()
		l.wg.Wait()
	}()
	// Registry changes reach the client as list_changed (watchRegistry),
	// and servers registered later are listened to as well.
	st := relay.NewStream("listen." + randomID())
	r.streams.Add(st)
	defer r.streams.Remove(st)
	changed := r.reg.Changed()
	started := map[string]context.CancelFunc{}
	ready := make(chan struct{}, len(r.reg.Load().Servers())+1)
	n := l.sync(ctx, started, ready)
	// The acknowledgment says the stream is on: it waits (a bounded time)
	// until each server's listen is open or has failed once.
	wait := time.NewTimer(r.cfg.InitTimeout)
wait:
	for ; n > 0; n-- {
		select {
		case <-ready:
		case <-wait.C:
			break wait
		case <-ctx.Done():
			wait.Stop()
			return
		}
	}
	wait.Stop()
	var expired <-chan time.Time
	if e := c.claims.CallerExpiry; !e.IsZero() {
		t := time.NewTimer(e.Sub(r.now()))
		defer t.Stop()
		expired = t.C
	}
	sw := relay.Start(w, "")
	if err := sw.Event(l.ack()); err != nil {
		return
	}
	if !l.kinds[0] && !l.kinds[1] && !l.kinds[2] && len(l.uris) == 0 {
		_ = sw.Event(l.complete()) // nothing to listen for
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			_ = sw.Event(l.complete())
			return
		case <-expired:
			_ = sw.Event(l.complete())
			return
		case <-changed:
			changed = r.reg.Changed()
			l.sync(ctx, started, nil)
		case ev := <-st.Events:
			if k := listKind(ev, r.answer); k >= 0 && l.kinds[k] {
				err = sw.Event(l.notification(listKinds[k], ""))
			}
		case ev := <-l.events:
			err = sw.Event(ev)
		case <-tick.C:
			err = sw.Comment("keep-alive")
		}
		if err != nil {
			return
		}
	}
}

// parse reads params.notifications; it reports false for anything the
// revision does not define: a missing filter, a flag that is not a boolean,
// subscriptions that are not up to maxListenURIs non-empty strings.
// Repeated URIs count once.
func (l *listener) parse(params json.RawMessage) bool {
	if params == nil {
		return false
	}
	// As strict as every read of a client's message: a member that differs
	// from a flag only in case is refused, not ignored.
	o := requestOptions
	f, err := mcpparse.Fields(params, o, "notifications")
	if err != nil || f[0].Raw == nil {
		return false
	}
	names := append(listenFlags[:], "resourceSubscriptions")
	if f, err = mcpparse.Fields(f[0].Raw, o, names...); err != nil {
		return false
	}
	for i := range listenFlags {
		switch string(f[i].Raw) {
		case "true":
			l.kinds[i] = true
		case "", "false":
		default:
			return false
		}
	}
	subs := f[3].Raw
	if subs == nil || string(subs) == "null" {
		return true
	}
	raws, err := mcpparse.Elements(subs, o)
	if err != nil || len(raws) > maxListenURIs {
		return false
	}
	for _, raw := range raws {
		uri, err := mcpparse.String(raw)
		if err != nil || uri == "" {
			return false
		}
		if _, dup := l.owner[uri]; !dup {
			l.owner[uri] = ""
			l.uris = append(l.uris, uri)
		}
	}
	return true
}

// route finds the server of each subscribed URI, as resources/read does,
// and asks the Authorizer whether the caller may read it there. It returns
// the first URI that has no server or is not allowed (any failure refuses).
func (l *listener) route(ctx context.Context) (string, bool) {
	targets := make([]policy.Target, len(l.uris))
	for i, uri := range l.uris {
		srv, ok := l.r.resourceOwner(l.c, uri)
		if !ok {
			return uri, false
		}
		l.owner[uri] = srv.Name
		targets[i] = policy.Target{Server: srv.Name, Resource: uri}
	}
	if l.r.auth == nil || len(targets) == 0 {
		return "", true
	}
	// Grouped by server, as Visible evaluates them.
	grouped := make([]policy.Target, 0, len(targets))
	for _, srv := range l.r.reg.Load().Servers() {
		for _, t := range targets {
			if t.Server == srv.Name {
				grouped = append(grouped, t)
			}
		}
	}
	if len(grouped) != len(targets) {
		return targets[0].Resource, false // a server left the registry meanwhile
	}
	vis, err := l.r.auth.Visible(ctx, l.c.auth, grouped)
	if err != nil || len(vis) != len(grouped) {
		return grouped[0].Resource, false
	}
	for i, ok := range vis {
		if !ok {
			return grouped[i].Resource, false
		}
	}
	return "", true
}

// sync starts a listen with each registered server it has none with yet,
// when the filter wants anything of it, and stops those of servers that
// left the registry. It returns how many it started; each sends on ready
// (when not nil) once open or failed once.
func (l *listener) sync(ctx context.Context, started map[string]context.CancelFunc, ready chan<- struct{}) int {
	servers := l.r.reg.Load().Servers()
	present := map[string]bool{}
	n := 0
	// A listen for list changes alone reaches only the servers the policy
	// allows subscriptions/listen on (as logging/setLevel: fanOut).
	var allowed map[string]bool
	listAllowed := func(name string) bool {
		if allowed == nil {
			allowed = map[string]bool{}
			for _, srv := range l.r.fanOut(ctx, l.c, "subscriptions/listen") {
				allowed[srv.Name] = true
			}
		}
		return allowed[name]
	}
	for i := range servers {
		srv := servers[i]
		present[srv.Name] = true
		if _, ok := started[srv.Name]; ok || !l.wants(srv.Name, listAllowed) {
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
		l.wg.Go(func() {
			defer signal()
			l.run(sctx, &srv, signal)
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
func (l *listener) wants(server string, listAllowed func(string) bool) bool {
	for _, s := range l.owner {
		if s == server {
			return true // its subscriptions were decided as reads of their URIs
		}
	}
	return (l.kinds[0] || l.kinds[1] || l.kinds[2]) && listAllowed(server)
}

// urisOf lists the subscribed URIs of server.
func (l *listener) urisOf(server string) []string {
	var out []string
	for _, uri := range l.uris {
		if l.owner[uri] == server {
			out = append(out, uri)
		}
	}
	return out
}

// run listens to srv until ctx ends, again after each failure or end with
// a growing pause.
func (l *listener) run(ctx context.Context, srv *registry.Server, ready func()) {
	pause := time.Second
	for {
		retry := l.once(ctx, srv, ready)
		ready()
		if !retry {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-l.r.done:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}

// once opens one listen with srv and relays it until it ends; it reports
// whether to open it again.
func (l *listener) once(ctx context.Context, srv *registry.Server, ready func()) bool {
	r := l.r
	auth, err := r.upstreamAuth(ctx, l.c.auth, srv.Name)
	if err != nil {
		return ctx.Err() == nil
	}
	if r.pool.Modern(ctx, srv, auth) {
		return l.modern(ctx, srv, auth, ready)
	}
	return l.legacy(ctx, srv, auth, ready)
}

// modern opens subscriptions/listen with a server of the stateless
// revision, asking for what the client asked of it.
func (l *listener) modern(ctx context.Context, srv *registry.Server, auth string, ready func()) bool {
	r := l.r
	filter := []byte(`{"notifications":`)
	filter = l.filter(filter, l.urisOf(srv.Name))
	filter = append(filter, '}')
	body := []byte(`{"jsonrpc":"2.0","id":"mcp-authz.listen","method":"subscriptions/listen","params":`)
	body = append(body, upstream.StatelessParams(filter, l.c.sess.Info, l.c.sess.Caps)...)
	body = append(body, '}')
	resp, err := r.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Version: upstream.Stateless, Method: "subscriptions/listen"}, body)
	if err != nil {
		if ctx.Err() == nil {
			r.upstreamFailed(srv, "subscriptions/listen", err)
		}
		return ctx.Err() == nil
	}
	defer resp.Body.Close()
	if err := upstream.StatusError(resp); err != nil {
		r.upstreamFailed(srv, "subscriptions/listen", err)
		return true
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "text/event-stream" {
		// Answered at once, not streamed: it refused the listen (an
		// error), or has nothing to send (a result). Asking again would
		// get the same.
		if m, err := r.up.ReadAnswer(resp, []byte(`"mcp-authz.listen"`)); err != nil || m.Error != nil {
			r.upstreamFailed(srv, "subscriptions/listen", errUpstreamAnswer)
		}
		return false
	}
	l.relay(ctx, srv, resp.Body, ready)
	return ctx.Err() == nil
}

// legacy listens to a server of an earlier revision on a session of this
// listen's own: its GET stream, and resources/subscribe for each URI of
// it; the session is deleted when the listen ends.
func (l *listener) legacy(ctx context.Context, srv *registry.Server, auth string, ready func()) bool {
	r := l.r
	t := target(srv)
	up, err := r.up.Open(ctx, t, upstream.Headers{Auth: auth}, legacyVersion(l.c.sess.Version), l.c.sess.Caps, l.c.sess.Info)
	if err != nil {
		if ctx.Err() == nil {
			r.upstreamFailed(srv, "initialize", err)
		}
		return ctx.Err() == nil
	}
	r.metrics.upstreamSessions.Inc()
	h := upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.InitTimeout)
		defer cancel()
		r.deleteUpstream(dctx, srv, auth, up)
	}()
	resp, err := r.up.Get(ctx, t, h)
	if err != nil {
		return ctx.Err() == nil
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusMethodNotAllowed:
		return false // no stream: it can send nothing outside a call
	default:
		r.upstreamFailed(srv, "subscriptions/listen", upstream.StatusError(resp))
		return true
	}
	for _, uri := range l.urisOf(srv.Name) {
		hs := h
		hs.Name = uri
		params := mcpparse.AppendString([]byte(`{"uri":`), uri)
		if _, _, err := r.up.Request(ctx, t, hs, "resources/subscribe", append(params, '}')); err != nil {
			if ctx.Err() != nil {
				return false
			}
			r.upstreamFailed(srv, "resources/subscribe", err)
		}
	}
	ready()
	l.relay(ctx, srv, resp.Body, nil)
	return ctx.Err() == nil
}

// relay reads one upstream stream and sends the client what the filter
// lets through, rebuilt (see listener). ready, when not nil, is called at
// the upstream's acknowledgment.
func (l *listener) relay(ctx context.Context, srv *registry.Server, body io.Reader, ready func()) {
	r := l.r
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
			out = l.updated(ctx, srv, &m)
		default:
			for k, method := range listKinds {
				if m.Method != method {
					continue
				}
				r.cat.Invalidate(srv.Name)
				if l.kinds[k] {
					out = l.notification(method, "")
				}
			}
		}
		if out == nil {
			continue
		}
		select {
		case l.events <- out:
		case <-ctx.Done():
			return
		}
	}
}

// updated is resources/updated for the client, or nil when it is withheld:
// its URI is not one the client subscribed to at srv, or the policy no
// longer lets the caller read it (or cannot say).
func (l *listener) updated(ctx context.Context, srv *registry.Server, m *mcpparse.Message) []byte {
	var uri string
	if m.Params != nil {
		if f, err := mcpparse.Fields(m.Params, l.r.answer, "uri"); err == nil && f[0].Raw != nil {
			uri, _ = mcpparse.String(f[0].Raw)
		}
	}
	if owner, ok := l.owner[uri]; !ok || owner != srv.Name {
		l.r.metrics.withheld.WithLabelValues(srv.Name, "unsubscribed").Inc()
		return nil
	}
	if !l.r.updateAllowed(ctx, l.c, srv, m) {
		l.r.metrics.withheld.WithLabelValues(srv.Name, "denied").Inc()
		return nil
	}
	return l.notification("notifications/resources/updated", uri)
}

// filter appends the notifications filter asked of one server: the
// client's flags and uris.
func (l *listener) filter(b []byte, uris []string) []byte {
	b = append(b, '{')
	first := true
	for k, on := range l.kinds {
		if !on {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `"`+listenFlags[k]+`":true`...)
	}
	if len(uris) > 0 {
		if !first {
			b = append(b, ',')
		}
		b = append(b, `"resourceSubscriptions":[`...)
		for i, uri := range uris {
			if i > 0 {
				b = append(b, ',')
			}
			b = mcpparse.AppendString(b, uri)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// meta is the _meta of every message of the stream.
func (l *listener) meta(b []byte) []byte {
	b = append(b, `"_meta":{"`+metaSubscriptionID+`":`...)
	return append(append(b, l.c.msg.ID...), '}')
}

// notification is method for the client, with the subscription id and, for
// resources/updated, the URI.
func (l *listener) notification(method, uri string) []byte {
	b := append([]byte(`{"jsonrpc":"2.0","method":"`), method...)
	b = l.meta(append(b, `","params":{`...))
	if uri != "" {
		b = mcpparse.AppendString(append(b, `,"uri":`...), uri)
	}
	return append(b, "}}"...)
}

// ack is notifications/subscriptions/acknowledged: everything asked for,
// which the router honors (what a server does not send never comes).
func (l *listener) ack() []byte {
	b := []byte(`{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{`)
	b = l.meta(b)
	b = l.filter(append(b, `,"notifications":`...), l.uris)
	return append(b, "}}"...)
}

// complete is the graceful closure: the listen request's result.
func (l *listener) complete() []byte {
	b := l.meta([]byte(`{"resultType":"complete",`))
	return resultBody(l.c.msg.ID, append(b, '}'))
}

// listKind is the index in listKinds of the notification data (the
// registry's), or -1.
func listKind(data []byte, o mcpparse.Options) int {
	m, err := mcpparse.Parse(data, o)
	if err != nil {
		return -1
	}
	for k, method := range listKinds {
		if m.Method == method {
			return k
		}
	}
	return -1
}
