package router

// A 2026-07-28 client and a server of an earlier revision: the server's
// requests during a call (elicitation, sampling, roots) become
// InputRequiredResults, and the upstream call is held for the retry.
//
// A held call lives on the replica that holds it and nowhere else: a retry
// that reaches another replica (it can open requestState: the keys are
// shared) is refused with a clear error and the client calls again; the
// held call ends after InputTimeout, which cancels it upstream (its HTTP
// request ends). Nothing of it is in requestState but a random handle and
// the binding (caller, server, method, name, expiry), sealed with the
// session keys under an AAD of its own, so a session id is never a
// requestState nor the other way round. Each requestState resumes once:
// the next round gets a new handle.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// heldCall is a stateless caller's upstream call. While it waits for the
// client's retry it is held: the client's HTTP request has ended, the
// upstream answer stays open, and only the retry, InputTimeout or
// CallTimeout end it.
type heldCall struct {
	cancel context.CancelFunc // ends the upstream call
	// detach stops the current client request from ending the call.
	detach func() bool
	// abandon tells the server the call is cancelled; nil until held.
	abandon func()

	mu sync.Mutex
	// owner is the client request serving the call; nil while it is held
	// (waiting in Router.input for the retry that takes it).
	owner  *call
	body   io.Closer           // the upstream answer
	sr     *upstream.SSEReader // reading body
	callID json.RawMessage     // the id the call went upstream with
	upID   json.RawMessage     // the server's request the retry answers
	ask    []byte              // that request as an input request: {"method":…,"params":…}
	up     upstreamSession     // the session the call runs on
	bind   inputState          // what the retry's requestState must be
	timer  *time.Timer         // InputTimeout
	rounds int
}

// ownedBy reports whether c's request serves the call: it must end it.
func (h *heldCall) ownedBy(c *call) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.owner == c
}

// end ends the upstream call before its answer: the server is told
// (notifications/cancelled) and the answer closed.
func (h *heldCall) end() {
	h.mu.Lock()
	abandon := h.abandon
	h.abandon = nil
	h.mu.Unlock()
	if abandon != nil {
		abandon()
	}
	h.done()
}

// done lets the upstream call and its answer go.
func (h *heldCall) done() {
	h.detach()
	h.cancel()
	h.mu.Lock()
	body := h.body
	h.body = nil
	h.mu.Unlock()
	if body != nil {
		body.Close()
	}
}

// inputKey is the key of the one input request the router asks a
// stateless client at a time.
const inputKey = "mcp-authz"

// holdForInput handles the server's request m during c, a stateless
// caller's call to a server of an earlier revision: ping is answered by the
// router, an elicitation, sampling or roots request the client declared
// becomes an InputRequiredResult written to sw and the call is held (see
// hold), anything else is refused to the server. It reports whether c has
// been answered: then the call is held, or ended.
func (r *Router) holdForInput(sw *relay.Writer, c *call, srv *registry.Server, h *heldCall, m *mcpparse.Message, sr *upstream.SSEReader, body io.Closer) bool {
	h.mu.Lock()
	if h.up.Version == "" {
		h.up, _ = r.pool.Get(c.sess.key(), srv.Name)
		h.callID = bytes.Clone(c.upstreamID())
		h.abandon = r.abandonCall(srv, c.input.auth, h.up, h.callID)
	}
	up := h.up
	h.mu.Unlock()
	switch capability := inputCapability(m.Method); {
	case m.Method == "ping":
		r.answerServer(c, srv, up, m.ID, json.RawMessage(`{}`), nil)
		return false
	case capability == "" || !clientDeclared(c.sess.Caps, capability):
		r.answerServer(c, srv, up, m.ID, nil, errorObject(codeNoMethod, "method not found"))
		return false
	}
	ask := append(mcpparse.AppendString([]byte(`{"method":`), m.Method), `,"params":`...)
	if m.Params != nil && string(m.Params) != "null" {
		ask = append(ask, m.Params...)
	} else {
		ask = append(ask, "{}"...) // roots/list may come without
	}
	h.mu.Lock()
	h.body, h.sr, h.upID, h.ask = body, sr, bytes.Clone(m.ID), append(ask, '}')
	h.mu.Unlock()
	if !r.hold(sw, c, srv, h) {
		h.end()
	}
	return true
}

// abandonCall returns what tells srv that the call id on up is cancelled.
func (r *Router) abandonCall(srv *registry.Server, auth string, up upstreamSession, id json.RawMessage) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.InitTimeout)
		defer cancel()
		body := append([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`), id...)
		body = append(body, `,"reason":"the client did not resume the call"}}`...)
		resp, err := r.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version, Method: "notifications/cancelled"}, body)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		upstream.Drain(resp)
	}
}

// answerServer answers a server's request id on up; a failure is logged.
func (r *Router) answerServer(c *call, srv *registry.Server, up upstreamSession, id, result, rpcErr json.RawMessage) {
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.InitTimeout)
	defer cancel()
	if err := r.postAnswer(ctx, srv, c.input.auth, up, id, result, rpcErr); err != nil {
		r.log.Debug("answer to a server request failed", "server", srv.Name, "error", err.Error())
	}
}

// postAnswer answers the server's request id with result or rpcErr on up.
func (r *Router) postAnswer(ctx context.Context, srv *registry.Server, auth string, up upstreamSession, id, result, rpcErr json.RawMessage) error {
	resp, err := r.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}, answerBody(id, result, rpcErr))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	defer upstream.Drain(resp)
	return upstream.StatusError(resp)
}

// errorObject is a JSON-RPC error object.
func errorObject(code int, msg string) json.RawMessage {
	e := append([]byte(`{"code":`), strconv.Itoa(code)...)
	return append(mcpparse.AppendString(append(e, `,"message":`...), msg), '}')
}

// hold holds h for c's retry under a new handle, for InputTimeout, and
// answers c with h.ask as an InputRequiredResult whose requestState names
// it. When it cannot (too many rounds, too many held calls), c gets an
// error, h stays c's and hold reports false.
func (r *Router) hold(sw *relay.Writer, c *call, srv *registry.Server, h *heldCall) bool {
	h.mu.Lock()
	h.rounds++
	rounds, ask := h.rounds, h.ask
	h.mu.Unlock()
	fail := func(msg string) bool {
		_ = sw.Event(errorBody(c.msg.ID, codeInternal, msg))
		return false
	}
	if rounds > r.cfg.MaxInputRounds {
		return fail(fmt.Sprintf("the server asked for input more than %d times (maxInputRounds)", r.cfg.MaxInputRounds))
	}
	st := inputState{
		Handle: randomID(), Issuer: c.claims.Issuer, Subject: c.claims.Subject, Server: srv.Name,
		Method: c.msg.Method, Name: c.input.name, Expires: r.now().Add(r.cfg.InputTimeout).UnixMilli(),
	}
	sealed, err := r.sealer.Seal(st.marshal(), inputStateAAD)
	if err != nil {
		return fail("internal error")
	}
	r.input.mu.Lock()
	if len(r.input.held) >= r.cfg.CacheSize {
		r.input.mu.Unlock()
		return fail("too many calls wait for input on this router: try again later")
	}
	h.mu.Lock()
	h.owner, h.bind = nil, st
	h.timer = time.AfterFunc(r.cfg.InputTimeout, func() { r.dropHeld(st.Handle) })
	h.mu.Unlock()
	r.input.held[st.Handle] = h
	r.input.mu.Unlock()
	h.detach() // the client's request ends now, the call does not

	res := append(mcpparse.AppendString([]byte(`{"resultType":"input_required","inputRequests":{`), inputKey), ':')
	res = append(append(res, ask...), `},"requestState":`...)
	res = append(mcpparse.AppendString(res, sealed), '}')
	_ = sw.Event(answerBody(c.msg.ID, res, nil))
	return true
}

// endHeld ends every call this replica holds (Close).
func (r *Router) endHeld() {
	r.input.mu.Lock()
	held := r.input.held
	r.input.held = map[string]*heldCall{}
	r.input.mu.Unlock()
	for _, h := range held {
		h.timer.Stop()
		h.end()
	}
}

// dropHeld ends a held call nobody resumed in time.
func (r *Router) dropHeld(handle string) {
	r.input.mu.Lock()
	h, ok := r.input.held[handle]
	delete(r.input.held, handle)
	r.input.mu.Unlock()
	if ok {
		h.end()
	}
}

// takeHeld removes and returns the held call of handle, unless it is gone
// or being dropped.
func (r *Router) takeHeld(handle string) (*heldCall, bool) {
	r.input.mu.Lock()
	defer r.input.mu.Unlock()
	h, ok := r.input.held[handle]
	if !ok || !h.timer.Stop() {
		return nil, false
	}
	delete(r.input.held, handle)
	return h, true
}

// putBack holds h again under its handle, for InputTimeout: the retry that
// took it was refused and changes nothing.
func (r *Router) putBack(h *heldCall) {
	r.input.mu.Lock()
	defer r.input.mu.Unlock()
	handle := h.bind.Handle
	h.timer = time.AfterFunc(r.cfg.InputTimeout, func() { r.dropHeld(handle) })
	r.input.held[handle] = h
}

// resumeInput serves a stateless caller's retry of a held call: it checks
// requestState, answers the server's request with the client's input and
// relays the rest of the call. It reports whether c was such a retry (and
// is answered). The requestState of a request to a 2026-07-28 server is
// that server's: it is left alone.
func (r *Router) resumeInput(ctx context.Context, w http.ResponseWriter, c *call, srv *registry.Server, auth, name string) bool {
	if !bytes.Contains(c.msg.Params, []byte("requestState")) && !bytes.Contains(c.msg.Params, []byte("inputResponses")) {
		return false // neither: no need to read params again
	}
	f, err := mcpparse.Fields(c.msg.Params, requestOptions, "requestState", "inputResponses")
	if err != nil || (f[0].Raw == nil && f[1].Raw == nil) || r.pool.Modern(ctx, srv, auth) {
		return false
	}
	refuse := func(msg string) bool {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, msg)
		return true
	}
	if f[0].Raw == nil {
		// A server of an earlier revision would ignore them.
		return refuse("inputResponses without requestState")
	}
	text, err := mcpparse.String(f[0].Raw)
	if err != nil || len(text) > maxSessionID {
		return refuse("invalid requestState")
	}
	plain, err := r.sealer.Open(text, inputStateAAD)
	if err != nil {
		return refuse("invalid requestState")
	}
	st, err := unmarshalInputState(plain)
	if err != nil || st.Issuer != c.claims.Issuer || st.Subject != c.claims.Subject || st.Server != srv.Name || st.Method != c.msg.Method || st.Name != name {
		// Tampered, another caller's, or another call's: one answer for all.
		return refuse("invalid requestState")
	}
	if !r.now().Before(time.UnixMilli(st.Expires)) {
		return refuse("requestState expired (inputTimeout): call again without it")
	}
	var answer json.RawMessage
	if f[1].Raw != nil {
		af, err := mcpparse.Fields(f[1].Raw, requestOptions, inputKey)
		if err != nil {
			return refuse("invalid inputResponses")
		}
		if answer = af[0].Raw; answer != nil {
			if _, err := mcpparse.Fields(answer, requestOptions); err != nil {
				return refuse("invalid inputResponses: " + strconv.Quote(inputKey) + " is not an object")
			}
		}
	}
	h, ok := r.takeHeld(st.Handle)
	if !ok {
		return refuse("the call this requestState continues is not held by this router replica (it ended, timed out, or another replica holds it): call again without it")
	}
	if h.bind != st {
		r.putBack(h)
		return refuse("invalid requestState")
	}
	sw := relay.Start(w, "")
	c.input = &callInput{held: h, auth: auth, name: name}
	h.mu.Lock()
	h.owner = c
	h.mu.Unlock()
	h.detach = context.AfterFunc(c.req.Context(), h.cancel)
	if answer == nil {
		// Not answered: asked again (SEP-2322, "Error Handling").
		if !r.hold(sw, c, srv, h) {
			h.end()
		}
		return true
	}
	sent := time.Now()
	err = r.postAnswer(ctx, srv, auth, h.up, h.upID, answer, nil)
	if err != nil {
		r.audited(c, srv, name, nil, err, time.Since(sent))
		h.end()
		r.upstreamFailed(srv, c.msg.Method, err)
		_ = sw.Event(errorBody(c.msg.ID, codeInternal, "upstream unavailable"))
		return true
	}
	r.audited(c, srv, name, &http.Response{StatusCode: http.StatusAccepted}, nil, time.Since(sent))
	r.relayHeld(sw, c, srv, h)
	return true
}

// relayHeld relays the rest of a resumed call to c: its notifications, its
// answer (as c's), or the server's next request (the call held again).
func (r *Router) relayHeld(sw *relay.Writer, c *call, srv *registry.Server, h *heldCall) {
	ctx := c.req.Context()
	for {
		data, err := h.sr.Next()
		if err != nil {
			h.end()
			if ctx.Err() == nil {
				r.upstreamFailed(srv, c.msg.Method, err)
			}
			_ = sw.Event(errorBody(c.msg.ID, codeInternal, "upstream stream ended before the answer"))
			return
		}
		m, err := mcpparse.Parse(data, r.answer)
		if err != nil {
			continue
		}
		switch {
		case upstream.IsAnswer(&m):
			if !upstream.SameID(m.ID, h.callID) {
				continue
			}
			h.done()
			_ = sw.Event(answerBody(c.msg.ID, r.resultFor(c, m.Result), m.Error))
			return
		case m.Kind == mcpparse.KindRequest:
			if r.holdForInput(sw, c, srv, h, &m, h.sr, h.body) {
				return
			}
		default:
			if data, ok := r.passEvent(ctx, c, srv, &m, data); ok {
				if err := sw.Event(data); err != nil {
					h.end() // the client went away: the call ends with its request
					return
				}
			}
		}
	}
}

// inputState is what a router-issued requestState carries, sealed.
type inputState struct {
	Handle               string // names the held call on the replica that holds it
	Issuer, Subject      string // the caller
	Server, Method, Name string // the call: server, method, unprefixed name or URI
	Expires              int64  // unix milliseconds
}

// inputStateAAD binds a sealed requestState to its use: a session id never
// opens as one, nor one as a session id.
var inputStateAAD = []byte("mcp-authz/router/requestState/v1")

// inputStateFormat is the first byte of a sealed inputState.
const inputStateFormat = 1

// marshal encodes s: the format byte, the strings length-prefixed
// (uvarint), Expires a varint.
func (s inputState) marshal() []byte {
	b := []byte{inputStateFormat}
	for _, f := range []string{s.Handle, s.Issuer, s.Subject, s.Server, s.Method, s.Name} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return binary.AppendVarint(b, s.Expires)
}

var errInputState = errors.New("router: invalid requestState")

// unmarshalInputState decodes what marshal encoded; nothing else.
func unmarshalInputState(b []byte) (inputState, error) {
	if len(b) == 0 || b[0] != inputStateFormat {
		return inputState{}, errInputState
	}
	b = b[1:]
	var f [6]string
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return inputState{}, errInputState
		}
		f[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	exp, k := binary.Varint(b)
	if k <= 0 || k != len(b) || f[0] == "" {
		return inputState{}, errInputState
	}
	return inputState{Handle: f[0], Issuer: f[1], Subject: f[2], Server: f[3], Method: f[4], Name: f[5], Expires: exp}, nil
}
