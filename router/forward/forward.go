package forward

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
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Forward sends body to srv and streams the answer back. The Authorization
// header received is forwarded only when authz resolved the same server and
// the assertion names that header as the token authz obtained for it;
// otherwise the router asks the Authorizer for one, and sends none when it
// has none. The caller's own token never goes upstream.
func (fw *Forwarder) Forward(w http.ResponseWriter, c *Call, srv *registry.Server, body []byte, name string) {
	ctx, cancel := fw.callContext(c, srv)
	defer cancel()
	ctx, span := fw.traceUpstream(ctx, c.Msg.Method, name, srv)
	defer endTrace(span, nil)
	if c.Claims.Server != "" && c.Claims.Server != srv.Name {
		WriteError(w, http.StatusForbidden, c.Msg.ID, CodeInvalidRequest, "request did not pass authorization")
		return
	}
	auth := c.Auth
	if !c.Vouched(srv) {
		a, err := fw.UpstreamAuth(ctx, c.Auth, srv.Name)
		if err != nil {
			WriteError(w, http.StatusOK, c.Msg.ID, CodeInternal, "upstream authorization unavailable")
			return
		}
		auth = a
	}
	key := inflightKey(c.Sess, c.Msg.ID) // post refused requests without a valid id
	fw.mu.Lock()
	fw.inflight[key] = inflightCall{srv, cancel}
	fw.mu.Unlock()
	defer func() {
		fw.mu.Lock()
		delete(fw.inflight, key)
		fw.mu.Unlock()
	}()
	if !fw.auditReady(w, c) || fw.inputHook(ctx, w, c, srv, auth, body, name) {
		return
	}
	sent := time.Now()
	resp, err := fw.sendSession(ctx, c, srv, auth, body, name)
	fw.audited(c, srv, name, resp, err, time.Since(sent))
	if err != nil {
		if errors.Is(err, session.ErrEnded) {
			WriteError(w, http.StatusNotFound, c.Msg.ID, CodeInvalidRequest, "session not found")
			return
		}
		if errors.Is(err, upstream.ErrUnauthorized) {
			WriteError(w, http.StatusUnauthorized, c.Msg.ID, CodeInvalidRequest, "upstream requires authorization")
			return
		}
		if status, code, msg, ok := fw.paramRefusal(c, srv, err); ok {
			WriteError(w, status, c.Msg.ID, code, msg)
			return
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			// The client cancelled the call or went away: not the
			// server's failure, and the client reads no answer.
			WriteError(w, http.StatusOK, c.Msg.ID, CodeInternal, "request cancelled")
			return
		}
		fw.failed(srv, c.Msg.Method, err)
		WriteError(w, http.StatusOK, c.Msg.ID, CodeInternal, "upstream unavailable")
		return
	}
	defer closeAnswer(c, resp)
	fw.relay(w, c, srv, resp)
}

// callKey names a call in flight: its session (and so its caller) and the
// value of its id, an integer (num, with str "n") or a string (str, in
// mcpparse.AppendIDKey's form): an integer id, what clients send most,
// keys with no string made for it.
type callKey struct {
	session string
	num     int64
	str     string
}

func inflightKey(s *session.Record, id json.RawMessage) callKey {
	var buf [64]byte
	k, _ := mcpparse.AppendIDKey(buf[:0], id)
	if len(k) < 2 || k[0] != 'n' {
		return callKey{session: s.Key(), str: string(k)}
	}
	// strconv.AppendInt's form: an optional minus, then digits.
	digits, neg := k[1:], k[1] == '-'
	if neg {
		digits = digits[1:]
	}
	var n int64
	for _, d := range digits {
		n = n*10 + int64(d-'0')
	}
	if neg {
		n = -n
	}
	return callKey{session: s.Key(), num: n, str: "n"}
}

// Vouched reports whether the Authorization received is the token authz
// obtained for srv: the assertion names srv and that header's hash.
func (c *Call) Vouched(srv *registry.Server) bool {
	return c.Auth != "" && c.Claims.Server == srv.Name && c.Claims.Credential != "" &&
		assertion.CredentialHash(c.Auth) == c.Claims.Credential
}

// sendSession sends body on the caller's session with srv; when the
// upstream has ended that session it opens a new one and sends again, once.
// A tools/call to a server of the stateless revision carries the Mcp-Param
// headers of its tool (params.go); when the server refuses them
// (HeaderMismatch: its definition changed since the router read it), the
// router reads the caller's list of srv again and sends once more
// (SEP-2243's client behaviour); a second refusal is errParamMismatch.
func (fw *Forwarder) sendSession(ctx context.Context, c *Call, srv *registry.Server, auth string, body []byte, name string) (*http.Response, error) {
	up, err := fw.UpstreamFor(ctx, c.Sess, srv, auth)
	if err != nil {
		return nil, err
	}
	h := upstream.Headers{Auth: auth, Method: c.Msg.Method, Name: name}
	body = fw.paramsFor(c, up, body)
	if c.Sess.Stateless() && up.ID != "" {
		// The caller's stateless requests share this upstream session
		// (session.NewStateless): their ids, each client's own, may collide.
		body = fw.ownID(c, body)
	}
	reopen := func(ctx context.Context, old upstream.Session) (upstream.Session, error) {
		return fw.Reinit(ctx, c.Sess, srv, auth, old)
	}
	if !mirrors(c, up) {
		return fw.up.PostSession(ctx, target(srv), h, up, body, reopen)
	}
	for refresh := false; ; refresh = true {
		if h.Params, err = fw.paramHeaders(ctx, c, srv, auth, name, body, refresh); err != nil {
			return nil, err
		}
		sent := time.Now()
		resp, err := fw.up.PostSession(ctx, target(srv), h, up, body, reopen)
		if err != nil || !fw.headerMismatch(resp) {
			return resp, err
		}
		upstream.Drain(resp)
		// The audit trail holds every request a server got: each refused
		// one has its event here (audited leaves errParamMismatch alone).
		fw.audited(c, srv, name, resp, nil, time.Since(sent))
		if refresh {
			return nil, errParamMismatch
		}
	}
}

// ownID is body with its id replaced by one this router makes, unique in
// this process, and records it in c.upID; body as it is when it has no id
// to replace.
func (fw *Forwarder) ownID(c *Call, body []byte) []byte {
	f, err := mcpparse.Fields(body, RequestOptions, "id")
	if err != nil || f[0].Raw == nil {
		return body
	}
	id := strconv.AppendUint([]byte(`"mcp-authz-`), fw.nextID.Add(1), 10)
	id = append(id, '"')
	c.upID = id
	return mcpparse.Splice(body, mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)}, id)
}

// relay writes the upstream's answer to the client: JSON checked and
// bounded, SSE streamed event by event.
func (fw *Forwarder) relay(w http.ResponseWriter, c *Call, srv *registry.Server, resp *http.Response) {
	id := c.Msg.ID
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		if v := resp.Header.Get("Www-Authenticate"); v != "" {
			w.Header().Set("WWW-Authenticate", v)
		}
		WriteError(w, http.StatusUnauthorized, id, CodeInvalidRequest, "upstream requires authorization")
		return
	case resp.StatusCode == http.StatusAccepted && c.Msg.Kind != mcpparse.KindRequest:
		w.WriteHeader(http.StatusAccepted)
		return
	case resp.StatusCode == http.StatusTooManyRequests:
		// The server's own route limits this caller (a Kuadrant
		// RateLimitPolicy, say): the client is told so, and when to come
		// back, rather than of a failed server.
		if v := resp.Header.Get("Retry-After"); v != "" && len(v) <= 64 {
			w.Header().Set("Retry-After", v)
		}
		WriteError(w, http.StatusTooManyRequests, id, CodeRateLimited, "rate limited by the server's route")
		return
	case resp.StatusCode == http.StatusForbidden:
		WriteError(w, http.StatusForbidden, id, CodeForbidden, "refused by the server's route")
		return
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		fw.failed(srv, c.Msg.Method, errors.New(resp.Status))
		WriteError(w, http.StatusOK, id, CodeInternal, "upstream error")
		return
	}
	ct := upstream.MediaType(resp.Header)
	switch ct {
	case "application/json":
		m, err := fw.up.ReadAnswer(resp, c.upstreamID())
		if err != nil {
			fw.failed(srv, c.Msg.Method, err)
			WriteError(w, http.StatusOK, id, CodeInternal, "upstream answered badly")
			return
		}
		if fw.needsInput(c, m.Result) {
			fw.bridgeInput(w, c, srv, nil, m.Result)
			return
		}
		// The client's id as the client spelled it, not as the upstream did.
		WriteJSON(w, http.StatusOK, AnswerBody(id, fw.resultFor(c, m.Result), m.Error))
	case "text/event-stream":
		fw.stream(w, c, srv, resp)
	default:
		fw.failed(srv, c.Msg.Method, upstream.ErrAnswer)
		WriteError(w, http.StatusOK, id, CodeInternal, "upstream answered badly")
	}
}

// stream relays an SSE answer: notifications and server requests (their
// ids wrapped so the client's answer finds its way back) until the answer.
// If the stream ends first, the client gets a JSON-RPC error instead.
func (fw *Forwarder) stream(w http.ResponseWriter, c *Call, srv *registry.Server, resp *http.Response) {
	sw := relay.Start(w, "")
	sr := upstream.NewSSEReader(resp.Body, fw.cfg.MaxResponseBytes)
	for {
		data, err := sr.Next()
		if err != nil {
			fw.failed(srv, c.Msg.Method, err)
			_ = sw.Event(ErrorBody(c.Msg.ID, CodeInternal, "upstream stream ended before the answer"))
			return
		}
		m, err := mcpparse.Parse(data, fw.answer)
		if err != nil {
			fw.log.Warn("upstream event skipped", "server", srv.Name)
			continue
		}
		done := false
		switch m.Kind {
		case mcpparse.KindResponse, mcpparse.KindError:
			if !upstream.SameID(m.ID, c.upstreamID()) {
				continue
			}
			done = true
			if fw.needsInput(c, m.Result) {
				fw.bridgeInput(w, c, srv, sw, m.Result)
				return
			}
			if res := fw.resultFor(c, m.Result); !sameSlice(res, m.Result) || !bytes.Equal(m.ID, c.Msg.ID) {
				// The client's id as the client spelled it, the result as
				// resultFor made it (a sealed task id may be as long as the
				// server's: only the same bytes are the same result).
				data = AnswerBody(c.Msg.ID, res, m.Error)
			}
		case mcpparse.KindRequest:
			if c.holding() {
				if fw.holdForInput(sw, c, srv, c.input.held, &m, sr, resp.Body) {
					return
				}
				continue
			}
			data = mcpparse.Splice(data, m.IDSpan, relay.WrapID(srv.Name, m.ID))
			data, _ = fw.TaskMessage(c, srv, data, &m) // a request is never dropped
		default:
			if strings.HasSuffix(m.Method, "/list_changed") {
				fw.cat.Invalidate(srv.Name)
			}
			if m.Method == "notifications/resources/updated" && !fw.UpdateAllowed(c.Req.Context(), c, srv, &m) {
				continue
			}
			var ok bool
			if data, ok = fw.TaskMessage(c, srv, data, &m); !ok {
				continue
			}
		}
		if err := sw.Event(data); err != nil || done {
			return
		}
	}
}

// RelayResponse sends the client's answer to a server request back to the
// server that asked, with the id it used, on the upstream session it asked
// on: one the caller's session already has on this replica. The id is the
// client's to write, so it may name any server: without such a session no
// server waits for the answer here, and none is contacted (no session is
// opened, no credential obtained for it); the answer is dropped (202), as
// one naming no server is.
func (fw *Forwarder) RelayResponse(w http.ResponseWriter, c *Call) {
	if fw.inputAnswered(w, c) {
		return
	}
	server, id, ok := relay.UnwrapID(c.Msg.ID, RequestOptions)
	var srv *registry.Server
	if ok {
		srv, ok = fw.reg.Load().Server(server)
	}
	var up upstream.Session
	if ok {
		up, ok = fw.pool.Get(c.Sess.Key(), srv.Name)
	}
	if !ok {
		w.WriteHeader(http.StatusAccepted) // nobody waits for it
		return
	}
	body := mcpparse.Splice(c.Body, c.Msg.IDSpan, id)
	ctx, cancel := context.WithTimeout(c.Req.Context(), fw.cfg.CallTimeout)
	defer cancel()
	auth, err := fw.UpstreamAuth(ctx, c.Auth, srv.Name)
	if err != nil {
		WriteError(w, http.StatusOK, nil, CodeInternal, "upstream authorization unavailable")
		return
	}
	resp, err := fw.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}, body)
	if err != nil {
		WriteError(w, http.StatusOK, nil, CodeInternal, "upstream unavailable")
		return
	}
	defer resp.Body.Close()
	upstream.Drain(resp)
	w.WriteHeader(http.StatusAccepted)
}

// Cancel passes the client's notifications/cancelled to the server running
// that request, when this replica forwarded it; otherwise it is dropped (the
// call's own HTTP request ends with the client's, which cancels it too).
func (fw *Forwarder) Cancel(w http.ResponseWriter, c *Call) {
	w.WriteHeader(http.StatusAccepted)
	if c.Msg.RequestID == nil || !ValidID(c.Msg.RequestID) {
		return
	}
	fw.mu.Lock()
	call, ok := fw.inflight[inflightKey(c.Sess, c.Msg.RequestID)]
	fw.mu.Unlock()
	if !ok {
		return
	}
	// The call's own context ends whatever happens below: a call still
	// opening its upstream session never goes, and one the server keeps
	// working on without an answer (it need send none) does not hold the
	// router until CallTimeout.
	defer call.cancel()
	srv := call.srv
	up, ok := fw.pool.Get(c.Sess.Key(), srv.Name)
	if !ok {
		return // not at the server yet: ending the call's context is all
	}
	ctx, cancel := context.WithTimeout(c.Req.Context(), fw.cfg.InitTimeout)
	defer cancel()
	auth, err := fw.UpstreamAuth(ctx, c.Auth, srv.Name)
	if err != nil {
		return
	}
	resp, err := fw.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version, Method: c.Msg.Method}, c.Body)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	upstream.Drain(resp)
}

// NotifyAll passes a client notification to every upstream session this
// session has, best effort.
func (fw *Forwarder) NotifyAll(c *Call) {
	ctx, cancel := context.WithTimeout(c.Req.Context(), fw.cfg.InitTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, srv := range fw.FanOut(ctx, c, c.Msg.Method) {
		up, ok := fw.pool.Get(c.Sess.Key(), srv.Name)
		if !ok {
			continue
		}
		wg.Go(func() {
			auth, err := fw.UpstreamAuth(ctx, c.Auth, srv.Name)
			if err != nil {
				return
			}
			resp, err := fw.up.Post(ctx, target(&srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version, Method: c.Msg.Method}, c.Body)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			upstream.Drain(resp)
		})
	}
	wg.Wait()
}

// UpdateAllowed reports whether notifications/resources/updated from srv
// may reach the caller: the caller's policy still lets them read its URI.
// Only the session that subscribed receives it at all (its upstream
// session is the one that subscribed). Any failure withholds it.
func (fw *Forwarder) UpdateAllowed(ctx context.Context, c *Call, srv *registry.Server, m *mcpparse.Message) bool {
	if m.Params == nil {
		return false
	}
	f, err := mcpparse.Fields(m.Params, fw.answer, "uri")
	if err != nil || f[0].Raw == nil {
		return false
	}
	uri, err := mcpparse.String(f[0].Raw)
	if err != nil || uri == "" {
		return false
	}
	if fw.auth == nil {
		return true
	}
	vis, err := fw.auth.Visible(ctx, c.Auth, []policy.Target{{Server: srv.Name, Resource: uri}})
	return err == nil && len(vis) == 1 && vis[0]
}
