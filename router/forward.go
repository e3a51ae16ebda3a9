package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// callNamed forwards tools/call and prompts/get to their server, with the
// prefix stripped. The server and the unprefixed name are the ones authz
// resolved and signed in the assertion (bound to this body): the registry
// is asked only for the server's URL. The new name is spliced into the body
// where the prefixed one was; nothing else of it is decoded or re-encoded.
// A request whose assertion names no server (authz without the registry)
// is resolved here by its prefix.
func (r *Router) callNamed(w http.ResponseWriter, c *call) {
	srv, body, name, ok := r.resolveNamed(w, c)
	if !ok {
		return
	}
	if c.msg.Method == "tools/call" && !r.checkParams(w, c, srv, name) {
		return
	}
	r.forward(w, c, srv, body, name)
}

// resolveNamed finds the server of a prefixed name (params.name, or
// params.ref.name of completion/complete) and returns the body with the
// unprefixed name spliced in; on failure it answers and reports false.
func (r *Router) resolveNamed(w http.ResponseWriter, c *call) (*registry.Server, []byte, string, bool) {
	snap := r.reg.Load()
	var (
		srv  *registry.Server
		name string
		ok   bool
	)
	if c.claims.Server != "" {
		srv, ok = snap.Server(c.claims.Server)
		name = c.claims.Tool
		// The assertion is about this body: a name that is not the
		// server's prefix and the tool is a forged or broken assertion.
		if ok && (len(c.msg.Name) != len(srv.Prefix)+len(name) || !strings.HasPrefix(c.msg.Name, srv.Prefix) || !strings.HasSuffix(c.msg.Name, name)) {
			writeError(w, http.StatusForbidden, c.msg.ID, codeInvalidRequest, "request did not pass authorization")
			return nil, nil, "", false
		}
	} else {
		srv, name, ok = snap.Resolve(c.msg.Name)
	}
	if !ok || name == "" {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "unknown name: "+c.msg.Name)
		return nil, nil, "", false
	}
	body := c.body
	if name != c.msg.Name {
		body = mcpparse.Splice(c.body, c.msg.NameSpan, mcpparse.AppendString(make([]byte, 0, len(name)+2), name))
	}
	return srv, body, name, true
}

// readResource forwards resources/read to the server owning the URI.
func (r *Router) readResource(w http.ResponseWriter, c *call) {
	srv, ok := r.resourceOwner(c, c.msg.URI)
	if !ok {
		writeError(w, http.StatusOK, c.msg.ID, -32002, "resource not found")
		return
	}
	r.forward(w, c, srv, c.body, c.msg.URI)
}

// resourceOwner finds the server of a URI: by the registry's resource
// prefixes, else by the servers' resource lists, else by the literal start
// (up to the first '{') of their URI templates, the longest winning.
func (r *Router) resourceOwner(c *call, uri string) (*registry.Server, bool) {
	snap := r.reg.Load()
	if srv, ok := snap.ResolveURI(uri); ok {
		return srv, true
	}
	for _, it := range r.cat.Items(c.req.Context(), catalog.Resources, c.caller()) {
		if it.Name == uri {
			return snap.Server(it.Server)
		}
	}
	best, owner := -1, ""
	for _, it := range r.cat.Items(c.req.Context(), catalog.Templates, c.caller()) {
		lit, _, _ := strings.Cut(it.Name, "{")
		if lit != "" && strings.HasPrefix(uri, lit) && len(lit) > best {
			best, owner = len(lit), it.Server
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
	ctx, cancel := r.callContext(c, srv)
	defer cancel()
	ctx, span := r.traceUpstream(ctx, c.msg.Method, name, srv)
	defer endTrace(span, nil)
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
	if !r.auditReady(w, c) || r.inputHook(ctx, w, c, srv, auth, body, name) {
		return
	}
	sent := time.Now()
	resp, err := r.sendSession(ctx, c, srv, auth, body, name)
	r.audited(c, srv, name, resp, err, time.Since(sent))
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
	defer closeAnswer(c, resp)
	r.relay(w, c, srv, resp)
}

// inflightKey names a call in flight: its session (and so its caller) and
// the value of its id.
func inflightKey(s *session, id json.RawMessage) string {
	var buf [64]byte
	k, _ := mcpparse.AppendIDKey(buf[:0], id)
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
	h := upstream.Headers{Auth: auth, Method: c.msg.Method, Name: name}
	body = r.paramsFor(c, up, body)
	if c.sess.stateless() && up.ID != "" {
		// The caller's stateless requests share this upstream session
		// (statelessSession): their ids, each client's own, may collide.
		body = r.ownID(c, body)
	}
	return r.up.PostSession(ctx, target(srv), h, up, body, func(ctx context.Context, old upstreamSession) (upstreamSession, error) {
		return r.reinit(ctx, c.sess, srv, auth, old)
	})
}

// ownID is body with its id replaced by one this router makes, unique in
// this process, and records it in c.upID; body as it is when it has no id
// to replace.
func (r *Router) ownID(c *call, body []byte) []byte {
	f, err := mcpparse.Fields(body, requestOptions, "id")
	if err != nil || f[0].Raw == nil {
		return body
	}
	id := strconv.AppendUint([]byte(`"mcp-authz-`), r.nextID.Add(1), 10)
	id = append(id, '"')
	c.upID = id
	return mcpparse.Splice(body, mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)}, id)
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
	case resp.StatusCode == http.StatusAccepted && c.msg.Kind != mcpparse.KindRequest:
		w.WriteHeader(http.StatusAccepted)
		return
	case resp.StatusCode == http.StatusTooManyRequests:
		// The server's own route limits this caller (a Kuadrant
		// RateLimitPolicy, say): the client is told so, and when to come
		// back, rather than of a failed server.
		if v := resp.Header.Get("Retry-After"); v != "" && len(v) <= 64 {
			w.Header().Set("Retry-After", v)
		}
		writeError(w, http.StatusTooManyRequests, id, codeRateLimited, "rate limited by the server's route")
		return
	case resp.StatusCode == http.StatusForbidden:
		writeError(w, http.StatusForbidden, id, codeForbidden, "refused by the server's route")
		return
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		r.upstreamFailed(srv, c.msg.Method, errors.New(resp.Status))
		writeError(w, http.StatusOK, id, codeInternal, "upstream error")
		return
	}
	ct := upstream.MediaType(resp.Header)
	switch ct {
	case "application/json":
		m, err := r.up.ReadAnswer(resp, c.upstreamID())
		if err != nil {
			r.upstreamFailed(srv, c.msg.Method, err)
			writeError(w, http.StatusOK, id, codeInternal, "upstream answered badly")
			return
		}
		if r.needsInput(c, m.Result) {
			r.bridgeInput(w, c, srv, nil, m.Result)
			return
		}
		// The client's id as the client spelled it, not as the upstream did.
		writeJSON(w, http.StatusOK, answerBody(id, r.resultFor(c, m.Result), m.Error))
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
	sw := relay.Start(w, "")
	sr := upstream.NewSSEReader(resp.Body, r.cfg.MaxResponseBytes)
	for {
		data, err := sr.Next()
		if err != nil {
			r.upstreamFailed(srv, c.msg.Method, err)
			_ = sw.Event(errorBody(c.msg.ID, codeInternal, "upstream stream ended before the answer"))
			return
		}
		m, err := mcpparse.Parse(data, r.answer)
		if err != nil {
			r.log.Warn("upstream event skipped", "server", srv.Name)
			continue
		}
		done := false
		switch m.Kind {
		case mcpparse.KindResponse, mcpparse.KindError:
			if !sameID(m.ID, c.upstreamID()) {
				continue
			}
			done = true
			if r.needsInput(c, m.Result) {
				r.bridgeInput(w, c, srv, sw, m.Result)
				return
			}
			if res := r.resultFor(c, m.Result); !sameSlice(res, m.Result) || !bytes.Equal(m.ID, c.msg.ID) {
				// The client's id as the client spelled it, the result as
				// resultFor made it (a sealed task id may be as long as the
				// server's: only the same bytes are the same result).
				data = answerBody(c.msg.ID, res, m.Error)
			}
		case mcpparse.KindRequest:
			if c.holding() {
				if r.holdForInput(sw, c, srv, c.input.held, &m, sr, resp.Body) {
					return
				}
				continue
			}
			data = mcpparse.Splice(data, m.IDSpan, relay.WrapID(srv.Name, m.ID))
			data, _ = r.taskMessage(c, srv, data, &m) // a request is never dropped
		default:
			if strings.HasSuffix(m.Method, "/list_changed") {
				r.cat.Invalidate(srv.Name)
			}
			if m.Method == "notifications/resources/updated" && !r.updateAllowed(c.req.Context(), c, srv, &m) {
				continue
			}
			var ok bool
			if data, ok = r.taskMessage(c, srv, data, &m); !ok {
				continue
			}
		}
		if err := sw.Event(data); err != nil || done {
			return
		}
	}
}

// relayResponse sends the client's answer to a server request back to the
// server that asked, with the id it used.
func (r *Router) relayResponse(w http.ResponseWriter, c *call) {
	if r.inputAnswered(w, c) {
		return
	}
	server, id, ok := relay.UnwrapID(c.msg.ID, requestOptions)
	var srv *registry.Server
	if ok {
		srv, ok = r.reg.Load().Server(server)
	}
	if !ok {
		w.WriteHeader(http.StatusAccepted) // nobody waits for it
		return
	}
	body := mcpparse.Splice(c.body, c.msg.IDSpan, id)
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
	resp, err := r.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}, body)
	if err != nil {
		writeError(w, http.StatusOK, nil, codeInternal, "upstream unavailable")
		return
	}
	defer resp.Body.Close()
	upstream.Drain(resp)
	w.WriteHeader(http.StatusAccepted)
}

// cancel passes the client's notifications/cancelled to the server running
// that request, when this replica forwarded it; otherwise it is dropped (the
// call's own HTTP request ends with the client's, which cancels it too).
func (r *Router) cancel(w http.ResponseWriter, c *call) {
	w.WriteHeader(http.StatusAccepted)
	if c.msg.RequestID == nil || !validID(c.msg.RequestID) {
		return
	}
	r.mu.Lock()
	srv := r.inflight[inflightKey(c.sess, c.msg.RequestID)]
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
	resp, err := r.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version, Method: c.msg.Method}, c.body)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	upstream.Drain(resp)
}

// notifyAll passes a client notification to every upstream session this
// session has, best effort.
func (r *Router) notifyAll(c *call) {
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.InitTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range r.fanOut(ctx, c, c.msg.Method) {
		up, ok := r.pool.Get(c.sess.key(), srv.Name)
		if !ok {
			continue
		}
		wg.Go(func() {
			auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
			if err != nil {
				return
			}
			resp, err := r.up.Post(ctx, target(&srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version, Method: c.msg.Method}, c.body)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			upstream.Drain(resp)
		})
	}
	wg.Wait()
}
