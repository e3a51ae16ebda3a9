package forward

// A 2026-07-28 client and a server of an earlier revision: the server's
// requests during a call become InputRequiredResults and the upstream call
// is held for the retry (see mrtr.Held and mrtr.Table). The requestState
// the router issues is sealed with the session keys under an AAD of its
// own (mrtr.Seal), so a session id is never a requestState nor the other
// way round.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/mrtr"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// holdForInput handles the server's request m during c, a stateless
// caller's call to a server of an earlier revision: ping is answered by the
// router, an elicitation, sampling or roots request the client declared
// becomes an InputRequiredResult written to sw and the call is held (see
// hold), anything else is refused to the server. It reports whether c has
// been answered: then the call is held, or ended.
func (fw *Forwarder) holdForInput(sw *relay.Writer, c *Call, srv *registry.Server, h *mrtr.Held, m *mcpparse.Message, sr *upstream.SSEReader, body io.Closer) bool {
	up := h.Start(func() (upstream.Session, json.RawMessage, func()) {
		up, _ := fw.pool.Get(c.Sess.Key(), srv.Name)
		callID := bytes.Clone(c.upstreamID())
		return up, callID, fw.abandonCall(srv, c.input.auth, up, callID)
	})
	switch capability := mrtr.Capability(m.Method); {
	case m.Method == "ping":
		fw.answerServer(c, srv, up, m.ID, json.RawMessage(`{}`), nil)
		return false
	case capability == "" || !mrtr.ClientDeclared(c.Sess.Caps, RequestOptions, capability):
		fw.answerServer(c, srv, up, m.ID, nil, errorObject(CodeNoMethod, "method not found"))
		return false
	}
	// The ask is shaped as a message: its related-task id as the client
	// knows it (TaskMessage), as on a stream; a request is never dropped.
	ask, _ := fw.TaskMessage(c, srv, mrtr.Ask(m.Method, m.Params), m)
	h.Await(body, sr, bytes.Clone(m.ID), ask)
	if !fw.hold(sw, c, srv, h) {
		h.End()
	}
	return true
}

// abandonCall returns what tells srv that the call id on up is cancelled.
func (fw *Forwarder) abandonCall(srv *registry.Server, auth string, up upstream.Session, id json.RawMessage) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), fw.cfg.InitTimeout)
		defer cancel()
		body := append([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`), id...)
		body = append(body, `,"reason":"the client did not resume the call"}}`...)
		resp, err := fw.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version, Method: "notifications/cancelled"}, body)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		upstream.Drain(resp)
	}
}

// answerServer answers a server's request id on up; a failure is logged.
func (fw *Forwarder) answerServer(c *Call, srv *registry.Server, up upstream.Session, id, result, rpcErr json.RawMessage) {
	ctx, cancel := context.WithTimeout(c.Req.Context(), fw.cfg.InitTimeout)
	defer cancel()
	if err := fw.postAnswer(ctx, srv, c.input.auth, up, id, result, rpcErr); err != nil {
		fw.log.Debug("answer to a server request failed", "server", srv.Name, "error", err.Error())
	}
}

// postAnswer answers the server's request id with result or rpcErr on up.
func (fw *Forwarder) postAnswer(ctx context.Context, srv *registry.Server, auth string, up upstream.Session, id, result, rpcErr json.RawMessage) error {
	resp, err := fw.up.Post(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}, AnswerBody(id, result, rpcErr))
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
// answers c with h's ask as an InputRequiredResult whose requestState names
// it. When it cannot (too many rounds, too many held calls), c gets an
// error, h stays c's and hold reports false.
func (fw *Forwarder) hold(sw *relay.Writer, c *Call, srv *registry.Server, h *mrtr.Held) bool {
	rounds, ask := h.Round()
	fail := func(msg string) bool {
		_ = sw.Event(ErrorBody(c.Msg.ID, CodeInternal, msg))
		return false
	}
	if rounds > fw.cfg.MaxInputRounds {
		return fail(fmt.Sprintf("the server asked for input more than %d times (maxInputRounds)", fw.cfg.MaxInputRounds))
	}
	st := mrtr.State{
		Handle: session.RandomID(), Issuer: c.Claims.Issuer, Subject: c.Claims.Subject, Server: srv.Name,
		Method: c.Msg.Method, Name: c.input.name, Expires: fw.now().Add(fw.cfg.InputTimeout).UnixMilli(),
	}
	sealed, err := mrtr.Seal(fw.sealer, st)
	if err != nil {
		return fail("internal error")
	}
	if !fw.input.Hold(h, st) {
		return fail("too many calls wait for input on this router: try again later")
	}
	_ = sw.Event(AnswerBody(c.Msg.ID, mrtr.Result(ask, sealed), nil))
	return true
}

// resumeInput serves a stateless caller's retry of a held call: it checks
// requestState, answers the server's request with the client's input and
// relays the rest of the call. It reports whether c was such a retry (and
// is answered). The requestState of a request to a 2026-07-28 server is
// that server's: it is left alone.
func (fw *Forwarder) resumeInput(ctx context.Context, w http.ResponseWriter, c *Call, srv *registry.Server, auth, name string) bool {
	if !bytes.Contains(c.Msg.Params, []byte("requestState")) && !bytes.Contains(c.Msg.Params, []byte("inputResponses")) {
		return false // neither: no need to read params again
	}
	f, err := mcpparse.Fields(c.Msg.Params, RequestOptions, "requestState", "inputResponses")
	if err != nil || (f[0].Raw == nil && f[1].Raw == nil) || fw.pool.Modern(ctx, srv, auth) {
		return false
	}
	refuse := func(msg string) bool {
		WriteError(w, http.StatusOK, c.Msg.ID, CodeInvalidParams, msg)
		return true
	}
	if f[0].Raw == nil {
		// A server of an earlier revision would ignore them.
		return refuse("inputResponses without requestState")
	}
	text, err := mcpparse.String(f[0].Raw)
	if err != nil || len(text) > session.MaxID {
		return refuse("invalid requestState")
	}
	st, err := mrtr.Open(fw.sealer, text)
	if err != nil || st.Issuer != c.Claims.Issuer || st.Subject != c.Claims.Subject || st.Server != srv.Name || st.Method != c.Msg.Method || st.Name != name {
		// Tampered, another caller's, or another call's: one answer for all.
		return refuse("invalid requestState")
	}
	if !fw.now().Before(time.UnixMilli(st.Expires)) {
		return refuse("requestState expired (inputTimeout): call again without it")
	}
	var answer json.RawMessage
	if f[1].Raw != nil {
		if answer, err = mrtr.ParseResponses(f[1].Raw, RequestOptions); err != nil {
			return refuse(err.Error())
		}
	}
	h, err := fw.input.Take(st)
	switch {
	case errors.Is(err, mrtr.ErrNotHeld):
		return refuse("the call this requestState continues is not held by this router replica (it ended, timed out, or another replica holds it): call again without it")
	case err != nil:
		return refuse("invalid requestState")
	}
	sw := relay.Start(w, "")
	c.input = callInput{held: h, auth: auth, name: name}
	h.Resume(c.Req.Context(), c)
	if answer == nil {
		// Not answered: asked again (SEP-2322, "Error Handling").
		if !fw.hold(sw, c, srv, h) {
			h.End()
		}
		return true
	}
	sent := time.Now()
	up, upID := h.Pending()
	err = fw.postAnswer(ctx, srv, auth, up, upID, answer, nil)
	if err != nil {
		fw.audited(c, srv, name, nil, err, time.Since(sent))
		h.End()
		fw.failed(srv, c.Msg.Method, err)
		_ = sw.Event(ErrorBody(c.Msg.ID, CodeInternal, "upstream unavailable"))
		return true
	}
	fw.audited(c, srv, name, &http.Response{StatusCode: http.StatusAccepted}, nil, time.Since(sent))
	fw.relayHeld(sw, c, srv, h)
	return true
}

// relayHeld relays the rest of a resumed call to c: its notifications, its
// answer (as c's), or the server's next request (the call held again).
func (fw *Forwarder) relayHeld(sw *relay.Writer, c *Call, srv *registry.Server, h *mrtr.Held) {
	ctx := c.Req.Context()
	sr, body, callID := h.Answer()
	for {
		data, err := sr.Next()
		if err != nil {
			h.End()
			if ctx.Err() == nil {
				fw.failed(srv, c.Msg.Method, err)
			}
			_ = sw.Event(ErrorBody(c.Msg.ID, CodeInternal, "upstream stream ended before the answer"))
			return
		}
		m, err := mcpparse.Parse(data, fw.answer)
		if err != nil {
			continue
		}
		switch {
		case upstream.IsAnswer(&m):
			if !upstream.SameID(m.ID, callID) {
				continue
			}
			h.Done()
			_ = sw.Event(AnswerBody(c.Msg.ID, fw.resultFor(c, m.Result), m.Error))
			return
		case m.Kind == mcpparse.KindRequest:
			if fw.holdForInput(sw, c, srv, h, &m, sr, body) {
				return
			}
		default:
			if data, ok := fw.passEvent(ctx, c, srv, &m, data); ok {
				if err := sw.Event(data); err != nil {
					h.End() // the client went away: the call ends with its request
					return
				}
			}
		}
	}
}
