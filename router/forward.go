package router

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
)

// callNamed forwards tools/call and prompts/get to the server owning the
// prefixed name, with the prefix stripped.
func (r *Router) callNamed(w http.ResponseWriter, c *call) {
	var p struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(c.msg.Params, &p); err != nil || p.Name == "" {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid params")
		return
	}
	srv, name, ok := r.reg.Load().Resolve(p.Name)
	if !ok {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "unknown name: "+p.Name)
		return
	}
	body, err := setParam(c.body, "name", name)
	if err != nil {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid params")
		return
	}
	r.forward(w, c, srv, body, name)
}

// readResource forwards resources/read to the server owning the URI.
func (r *Router) readResource(w http.ResponseWriter, c *call) {
	var p struct {
		URI string `json:"uri"`
	}
	if err := json.Unmarshal(c.msg.Params, &p); err != nil || p.URI == "" {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid params")
		return
	}
	srv, ok := r.resourceOwner(c, p.URI)
	if !ok {
		writeError(w, http.StatusOK, c.msg.ID, -32002, "resource not found")
		return
	}
	r.forward(w, c, srv, c.body, p.URI)
}

// resourceOwner finds the server of a URI: by the registry's resource
// prefixes, else by the servers' resource lists, else by the literal start
// (up to the first '{') of their URI templates, the longest winning.
func (r *Router) resourceOwner(c *call, uri string) (*registry.Server, bool) {
	snap := r.reg.Load()
	if srv, ok := snap.ResolveURI(uri); ok {
		return srv, true
	}
	for _, it := range r.collect(c.req.Context(), c, resourcesKind) {
		if it.name == uri {
			return snap.Server(it.server)
		}
	}
	best, owner := -1, ""
	for _, it := range r.collect(c.req.Context(), c, templatesKind) {
		lit, _, _ := strings.Cut(it.name, "{")
		if lit != "" && strings.HasPrefix(uri, lit) && len(lit) > best {
			best, owner = len(lit), it.server
		}
	}
	if owner == "" {
		return nil, false
	}
	return snap.Server(owner)
}

// forward sends body to srv and streams the answer back. The Authorization
// header received is forwarded only when authz resolved the same server and
// the assertion names that header as the token authz obtained for it;
// otherwise the router asks the Authorizer for one, and sends none when it
// has none. The caller's own token never goes upstream.
func (r *Router) forward(w http.ResponseWriter, c *call, srv *registry.Server, body []byte, name string) {
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.CallTimeout)
	defer cancel()
	if c.claims.Server != "" && c.claims.Server != srv.Name {
		writeError(w, http.StatusForbidden, c.msg.ID, codeInvalidRequest, "request did not pass authorization")
		return
	}
	auth := c.auth
	if !c.vouched(srv) {
		a, err := r.upstreamAuth(ctx, c.auth, srv.Name)
		if err != nil {
			writeError(w, http.StatusOK, c.msg.ID, codeInternal, "upstream authorization unavailable")
			return
		}
		auth = a
	}
	key := inflightKey(c.sess, c.msg.ID) // post refused requests without a valid id
	r.mu.Lock()
	r.inflight[key] = srv
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.inflight, key)
		r.mu.Unlock()
	}()
	resp, err := r.sendSession(ctx, c, srv, auth, body, name)
	if err != nil {
		if errors.Is(err, errSessionEnded) {
			writeError(w, http.StatusNotFound, c.msg.ID, codeInvalidRequest, "session not found")
			return
		}
		if errors.Is(err, errUpstreamUnauthorized) {
			writeError(w, http.StatusUnauthorized, c.msg.ID, codeInvalidRequest, "upstream requires authorization")
			return
		}
		r.upstreamFailed(srv, c.msg.Method, err)
		writeError(w, http.StatusOK, c.msg.ID, codeInternal, "upstream unavailable")
		return
	}
	defer resp.Body.Close()
	r.relay(w, c, srv, resp)
}

// inflightKey names a call in flight: its session (and so its caller) and
// the value of its id.
func inflightKey(s *session, id json.RawMessage) string {
	var buf [64]byte
	k, _ := appendIDKey(buf[:0], id)
	var b strings.Builder
	b.Grow(len(s.key()) + 1 + len(k))
	b.WriteString(s.key())
	b.WriteByte(0)
	b.Write(k)
	return b.String()
}

// vouched reports whether the Authorization received is the token authz
// obtained for srv: the assertion names srv and that header's hash.
func (c *call) vouched(srv *registry.Server) bool {
	return c.auth != "" && c.claims.Server == srv.Name && c.claims.Credential != "" &&
		assertion.CredentialHash(c.auth) == c.claims.Credential
}

// sendSession sends body on the caller's session with srv; when the
// upstream has ended that session it opens a new one and sends again, once.
func (r *Router) sendSession(ctx context.Context, c *call, srv *registry.Server, auth string, body []byte, name string) (*http.Response, error) {
	up, err := r.upstreamFor(ctx, c.sess, srv, auth)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		h := upstreamHeaders{auth: auth, session: up.ID, version: up.Version, method: c.msg.Method, name: name}
		resp, err := r.send(ctx, srv, h, body)
		if err != nil || resp.StatusCode != http.StatusNotFound || up.ID == "" || attempt > 0 {
			return resp, err
		}
		drain(resp)
		if up, err = r.reinit(ctx, c.sess, srv, auth, up); err != nil {
			return nil, err
		}
	}
}

// relay writes the upstream's answer to the client: JSON checked and
// bounded, SSE streamed event by event.
func (r *Router) relay(w http.ResponseWriter, c *call, srv *registry.Server, resp *http.Response) {
	id := c.msg.ID
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		if v := resp.Header.Get("WWW-Authenticate"); v != "" {
			w.Header().Set("WWW-Authenticate", v)
		}
		writeError(w, http.StatusUnauthorized, id, codeInvalidRequest, "upstream requires authorization")
		return
	case resp.StatusCode == http.StatusAccepted && !c.msg.isRequest():
		w.WriteHeader(http.StatusAccepted)
		return
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		r.upstreamFailed(srv, c.msg.Method, errors.New(resp.Status))
		writeError(w, http.StatusOK, id, codeInternal, "upstream error")
		return
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		m, err := r.readAnswer(resp, id)
		if err != nil {
			r.upstreamFailed(srv, c.msg.Method, err)
			writeError(w, http.StatusOK, id, codeInternal, "upstream answered badly")
			return
		}
		// The client's id as the client spelled it, not as the upstream did.
		writeJSON(w, http.StatusOK, answerBody(id, m.Result, m.Error))
	case "text/event-stream":
		r.stream(w, c, srv, resp)
	default:
		r.upstreamFailed(srv, c.msg.Method, errUpstreamAnswer)
		writeError(w, http.StatusOK, id, codeInternal, "upstream answered badly")
	}
}

// stream relays an SSE answer: notifications and server requests (their
// ids wrapped so the client's answer finds its way back) until the answer.
// If the stream ends first, the client gets a JSON-RPC error instead.
func (r *Router) stream(w http.ResponseWriter, c *call, srv *registry.Server, resp *http.Response) {
	sw := startSSE(w, "")
	sr := newSSEReader(resp.Body, r.cfg.MaxResponseBytes)
	for {
		data, err := sr.next()
		if err != nil {
			r.upstreamFailed(srv, c.msg.Method, err)
			_ = sw.event(errorBody(c.msg.ID, codeInternal, "upstream stream ended before the answer"))
			return
		}
		m, err := parseMessage(data)
		if err != nil {
			r.log.Warn("upstream event skipped", "server", srv.Name)
			continue
		}
		done := false
		switch {
		case m.isResponse():
			if !sameID(m.ID, c.msg.ID) {
				continue
			}
			done = true
			if !bytes.Equal(m.ID, c.msg.ID) {
				// The client's id as the client spelled it.
				data = answerBody(c.msg.ID, m.Result, m.Error)
			}
		case m.isRequest():
			m.ID = wrapID(srv.Name, m.ID)
			data, _ = json.Marshal(m)
		case strings.HasSuffix(m.Method, "/list_changed"):
			r.lists.invalidate(srv.Name)
		}
		if err := sw.event(data); err != nil || done {
			return
		}
	}
}

// wrappedPrefix marks the ids of server requests relayed to the client.
const wrappedPrefix = "mcpr."

type wrapped struct {
	S string          `json:"s"`
	I json.RawMessage `json:"i"`
}

// wrapID names the server a server-to-client request came from in its id.
func wrapID(server string, id json.RawMessage) json.RawMessage {
	// Without HTML escaping, so that the id comes back byte for byte.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(wrapped{S: server, I: id})
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out, _ := json.Marshal(wrappedPrefix + base64.RawURLEncoding.EncodeToString(b))
	return out
}

func unwrapID(id json.RawMessage) (string, json.RawMessage, bool) {
	var s string
	if json.Unmarshal(id, &s) != nil || !strings.HasPrefix(s, wrappedPrefix) {
		return "", nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(wrappedPrefix):])
	if err != nil {
		return "", nil, false
	}
	var w wrapped
	if json.Unmarshal(b, &w) != nil || w.S == "" || !validID(w.I) {
		return "", nil, false
	}
	return w.S, w.I, true
}

// relayResponse sends the client's answer to a server request back to the
// server that asked, with the id it used.
func (r *Router) relayResponse(w http.ResponseWriter, c *call) {
	server, id, ok := unwrapID(c.msg.ID)
	var srv *registry.Server
	if ok {
		srv, ok = r.reg.Load().Server(server)
	}
	if !ok {
		w.WriteHeader(http.StatusAccepted) // nobody waits for it
		return
	}
	m := *c.msg
	m.ID = id
	body, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.CallTimeout)
	defer cancel()
	auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
	if err != nil {
		writeError(w, http.StatusOK, nil, codeInternal, "upstream authorization unavailable")
		return
	}
	up, err := r.upstreamFor(ctx, c.sess, srv, auth)
	if err != nil {
		writeError(w, http.StatusOK, nil, codeInternal, "upstream unavailable")
		return
	}
	resp, err := r.send(ctx, srv, upstreamHeaders{auth: auth, session: up.ID, version: up.Version}, body)
	if err != nil {
		writeError(w, http.StatusOK, nil, codeInternal, "upstream unavailable")
		return
	}
	drain(resp)
	w.WriteHeader(http.StatusAccepted)
}

// setParam returns body with params[key] set to value.
func setParam(body []byte, key, value string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(m["params"], &p); err != nil {
		return nil, err
	}
	p[key], _ = json.Marshal(value)
	var err error
	if m["params"], err = json.Marshal(p); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// cancel passes the client's notifications/cancelled to the server running
// that request, when this replica forwarded it; otherwise it is dropped (the
// call's own HTTP request ends with the client's, which cancels it too).
func (r *Router) cancel(w http.ResponseWriter, c *call) {
	w.WriteHeader(http.StatusAccepted)
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(c.msg.Params, &p) != nil || p.RequestID == nil {
		return
	}
	if _, ok := idKey(p.RequestID); !ok {
		return
	}
	r.mu.Lock()
	srv := r.inflight[inflightKey(c.sess, p.RequestID)]
	r.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.InitTimeout)
	defer cancel()
	auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
	if err != nil {
		return
	}
	up, err := r.upstreamFor(ctx, c.sess, srv, auth)
	if err != nil {
		return
	}
	resp, err := r.send(ctx, srv, upstreamHeaders{auth: auth, session: up.ID, version: up.Version, method: c.msg.Method}, c.body)
	if err != nil {
		return
	}
	drain(resp)
}

// notifyAll passes a client notification to every upstream session this
// session has, best effort.
func (r *Router) notifyAll(c *call) {
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.InitTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range r.reg.Load().Servers() {
		up, ok := r.upstream.get(c.sess.key() + "\x00" + srv.Name)
		if !ok {
			if up, ok = c.sess.Up[srv.Name]; !ok {
				continue
			}
		}
		wg.Go(func() {
			auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
			if err != nil {
				return
			}
			resp, err := r.send(ctx, &srv, upstreamHeaders{auth: auth, session: up.ID, version: up.Version, method: c.msg.Method}, c.body)
			if err == nil {
				drain(resp)
			}
		})
	}
	wg.Wait()
}
