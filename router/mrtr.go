package router

// Multi round-trip requests (SEP-2322, MCP 2026-07-28) across generations.
//
// Same generation on both sides: nothing here. A 2026-07-28 server's
// InputRequiredResult reaches a 2026-07-28 client as the server wrote it,
// and the client's retry (inputResponses, requestState) is a new request:
// authz authorizes it like any other, for the tool it names, and the router
// forwards it with only the prefix of the name stripped. The integrity of a
// server's requestState is the server's (the spec binds it to the caller):
// the router neither reads nor wraps it.
//
// A 2025 session client and a 2026-07-28 server (bridgeInput): the router
// asks the client each of inputRequests as a server-to-client request on
// the call's SSE stream, collects the answers and retries upstream with
// inputResponses and requestState, at most MaxInputRounds times.
//
// A 2026-07-28 client and a server of an earlier revision (holdForInput,
// resumeInput): the server's request during the call is answered to the
// client as an InputRequiredResult; the router holds the upstream call
// (this replica, InputTimeout at most) and seals into requestState a handle
// to it, bound to the caller, the server, the method and the name. The
// client's retry, authorized anew, resumes it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/mrtr"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// callInput is what a call forwarded upstream keeps for input requests.
type callInput struct {
	// held is the lifetime of a stateless caller's upstream call, which
	// outlives the client's HTTP request while it waits for the retry.
	held *mrtr.Held
	// What forward sent upstream (before paramsFor), for bridgeInput's
	// retries.
	body       []byte
	auth, name string
}

// callContext is the context of a call forwarded to srv: for a stateless
// caller's request that may need input from a server not known to speak
// the stateless revision, one that the client's HTTP request ending
// cancels only while that request serves the call (see mrtr.Held).
func (r *Router) callContext(c *call, srv *registry.Server) (context.Context, context.CancelFunc) {
	if !c.sess.stateless() || !mrtr.Method(c.msg.Method) || r.pool.KnownModern(srv) {
		return context.WithTimeout(c.req.Context(), r.cfg.CallTimeout)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.req.Context()), r.cfg.CallTimeout)
	h := mrtr.NewHeld(c.req.Context(), cancel, c)
	c.input = &callInput{held: h}
	return ctx, func() {
		if h.OwnedBy(c) {
			h.Detach()
			cancel()
		}
	}
}

// closeAnswer closes an upstream answer, unless its call has been handed
// over (held, or already taken by the retry).
func closeAnswer(c *call, resp *http.Response) {
	if c.input != nil && c.input.held != nil && !c.input.held.OwnedBy(c) {
		return
	}
	resp.Body.Close()
}

// holding reports whether c is a call whose server's requests are held for
// the client's retry: a stateless caller's (see holdForInput).
func (c *call) holding() bool { return c.input != nil && c.input.held != nil }

// inputHook runs before a call goes upstream: it keeps what is sent (for
// bridgeInput's retries and held calls' answers), and resumes a held call
// when the request is the retry of one (it then answers and reports true).
func (r *Router) inputHook(ctx context.Context, w http.ResponseWriter, c *call, srv *registry.Server, auth string, body []byte, name string) bool {
	if !mrtr.Method(c.msg.Method) {
		return false
	}
	if !c.sess.stateless() {
		c.input = &callInput{body: body, auth: auth, name: name}
		return false
	}
	if c.input != nil { // the call may be held
		c.input.auth, c.input.name = auth, name
	}
	return r.resumeInput(ctx, w, c, srv, auth, name)
}

// ---- A 2025 session client, a 2026-07-28 server. ----

// needsInput reports whether result, a server's answer to c, is an
// InputRequiredResult the router answers itself: c's client speaks a
// revision without them.
func (r *Router) needsInput(c *call, result json.RawMessage) bool {
	if c.sess.stateless() || c.input == nil || c.input.body == nil || !bytes.Contains(result, []byte(`"input_required"`)) {
		return false
	}
	f, err := mcpparse.Fields(result, r.answer, "resultType")
	return err == nil && string(f[0].Raw) == `"input_required"`
}

// bridgeInput serves a 2025 client's call that a 2026-07-28 server answered
// with result, an InputRequiredResult: it asks the client, retries, and
// writes the final answer (on sw, started if nil).
func (r *Router) bridgeInput(w http.ResponseWriter, c *call, srv *registry.Server, sw *relay.Writer, result json.RawMessage) {
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.CallTimeout)
	defer cancel()
	if sw == nil {
		if !acceptsSSE(c.req) {
			writeError(w, http.StatusOK, c.msg.ID, codeInternal, "the server needs input from the client, which does not accept text/event-stream")
			return
		}
		sw = relay.Start(w, "")
	}
	for round := 1; ; round++ {
		m, err := r.inputRound(ctx, sw, c, srv, result, round)
		var ei mrtr.Error
		switch {
		case errors.As(err, &ei):
			_ = sw.Event(errorBody(c.msg.ID, codeInternal, ei.Error()))
			return
		case err != nil:
			r.upstreamFailed(srv, c.msg.Method, err)
			_ = sw.Event(errorBody(c.msg.ID, codeInternal, "upstream unavailable"))
			return
		case m.Error == nil && r.needsInput(c, m.Result):
			result = m.Result
			continue
		}
		_ = sw.Event(answerBody(c.msg.ID, m.Result, m.Error))
		return
	}
}

// inputRound asks the client result's inputRequests, sends the retry and
// returns the server's answer to it.
func (r *Router) inputRound(ctx context.Context, sw *relay.Writer, c *call, srv *registry.Server, result json.RawMessage, round int) (mcpparse.Message, error) {
	if round > r.cfg.MaxInputRounds {
		return mcpparse.Message{}, mrtr.Error(fmt.Sprintf("the server asked for input more than %d times (maxInputRounds)", r.cfg.MaxInputRounds))
	}
	in, err := mrtr.ParseInputRequired(result, r.answer)
	if err != nil {
		return mcpparse.Message{}, err
	}
	answers, err := r.askClient(ctx, sw, c, in)
	if err != nil {
		return mcpparse.Message{}, err
	}
	retryID := mcpparse.AppendString(nil, "mcp-authz.retry."+strconv.Itoa(round))
	body, err := mrtr.RetryBody(c.input.body, retryID, answers, in.State, requestOptions)
	if err != nil {
		return mcpparse.Message{}, err
	}
	resp, err := r.sendSession(ctx, c, srv, c.input.auth, body, c.input.name)
	if err != nil {
		return mcpparse.Message{}, err
	}
	defer resp.Body.Close()
	return r.retryAnswer(ctx, sw, c, srv, resp, retryID)
}

// askClient sends each of in's input requests to the client on sw and
// waits for all the answers (InputTimeout at most): an inputResponses
// object.
func (r *Router) askClient(ctx context.Context, sw *relay.Writer, c *call, in mrtr.InputRequired) (json.RawMessage, error) {
	var waits []string
	defer func() { r.input.Forget(waits...) }()
	chans := make([]<-chan mrtr.Answer, 0, len(in.Keys))
	for _, req := range in.Requests {
		method, methodJSON, params, err := mrtr.ParseRequest(req, r.answer)
		if err != nil {
			return nil, err
		}
		if !mrtr.ClientDeclared(c.sess.Caps, requestOptions, mrtr.Capability(method)) {
			return nil, mrtr.Error("the server asked for " + method + ", a capability the client did not declare")
		}
		id := mcpparse.AppendString(nil, mrtr.IDPrefix+randomID())
		wait := inputWaitKey(c.sess, id)
		chans = append(chans, r.input.Wait(wait))
		waits = append(waits, wait)
		if err := sw.Event(mrtr.Request(id, methodJSON, params)); err != nil {
			return nil, fmt.Errorf("router: input request: %w", err)
		}
	}
	return mrtr.Collect(ctx, r.cfg.InputTimeout, in.Keys, chans)
}

// inputWaitKey names an answer bridgeInput waits for: the session (so the
// caller) and the id's value.
func inputWaitKey(s *session, id json.RawMessage) string {
	k, _ := idKey(id)
	return s.key() + "\x00" + k
}

// inputAnswered takes a client's answer to one of the router's own input
// requests: it reports whether the answer was one (answered 202).
func (r *Router) inputAnswered(w http.ResponseWriter, c *call) bool {
	s, err := mcpparse.String(c.msg.ID)
	if err != nil || !strings.HasPrefix(s, mrtr.IDPrefix) {
		return false
	}
	w.WriteHeader(http.StatusAccepted)
	ans := mrtr.Answer{Result: bytes.Clone(c.msg.Result), Err: bytes.Clone(c.msg.Error)}
	if ans.Result == nil && ans.Err == nil {
		return true
	}
	if ans.Result != nil {
		if _, err := mcpparse.Fields(ans.Result, requestOptions); err != nil {
			ans = mrtr.Answer{Err: json.RawMessage(`{}`)} // not an object: an error
		}
	}
	r.input.Deliver(inputWaitKey(c.sess, c.msg.ID), ans)
	return true
}

// acceptsSSE reports whether the client accepts an SSE answer.
func acceptsSSE(req *http.Request) bool {
	for _, v := range req.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			if t, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && (t == "text/event-stream" || t == "*/*") {
				return true
			}
		}
	}
	return false
}

// retryAnswer reads the server's answer to a retry (id), relaying what
// comes before it to the client.
func (r *Router) retryAnswer(ctx context.Context, sw *relay.Writer, c *call, srv *registry.Server, resp *http.Response, id []byte) (mcpparse.Message, error) {
	if err := upstream.StatusError(resp); err != nil {
		return mcpparse.Message{}, err
	}
	ct := upstream.MediaType(resp.Header)
	if ct != "text/event-stream" {
		return r.up.ReadAnswer(resp, id)
	}
	sr := upstream.NewSSEReader(resp.Body, r.cfg.MaxResponseBytes)
	for {
		data, err := sr.Next()
		if err != nil {
			return mcpparse.Message{}, fmt.Errorf("%w: stream ended before the answer: %w", errUpstreamAnswer, err)
		}
		m, err := mcpparse.Parse(data, r.answer)
		if err != nil {
			continue
		}
		if upstream.IsAnswer(&m) {
			if upstream.SameID(m.ID, id) {
				return m, nil
			}
			continue
		}
		if data, ok := r.passEvent(ctx, c, srv, &m, data); ok {
			if err := sw.Event(data); err != nil {
				return mcpparse.Message{}, err
			}
		}
	}
}

// passEvent is what the client gets of a server's request or notification
// during a call (as stream relays them), and whether it gets it.
func (r *Router) passEvent(ctx context.Context, c *call, srv *registry.Server, m *mcpparse.Message, data []byte) ([]byte, bool) {
	if m.Kind == mcpparse.KindRequest {
		return mcpparse.Splice(data, m.IDSpan, relay.WrapID(srv.Name, m.ID)), true
	}
	if strings.HasSuffix(m.Method, "/list_changed") {
		r.cat.Invalidate(srv.Name)
	}
	if m.Method == "notifications/resources/updated" && !r.updateAllowed(ctx, c, srv, m) {
		return nil, false
	}
	return data, true
}
