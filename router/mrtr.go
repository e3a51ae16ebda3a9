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
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// inputMethod reports whether method may be answered with an
// InputRequiredResult (SEP-2322, "Supported Requests").
func inputMethod(method string) bool {
	return method == "tools/call" || method == "prompts/get" || method == "resources/read"
}

// inputCapability is the client capability an input request needs, "" for
// a method that is not one of them.
func inputCapability(method string) string {
	switch method {
	case "elicitation/create":
		return "elicitation"
	case "sampling/createMessage":
		return "sampling"
	case "roots/list":
		return "roots"
	}
	return ""
}

// callInput is what a call forwarded upstream keeps for input requests.
type callInput struct {
	// held is the lifetime of a stateless caller's upstream call, which
	// outlives the client's HTTP request while it waits for the retry.
	held *heldCall
	// What forward sent upstream (before paramsFor), for bridgeInput's
	// retries.
	body       []byte
	auth, name string
}

// inputs is what this replica holds for input requests.
type inputs struct {
	mu sync.Mutex
	// held are the upstream calls of stateless callers waiting for the
	// retry, by the handle sealed in requestState.
	held map[string]*heldCall
	// waiting are the answers bridgeInput waits for, by inputWaitKey.
	waiting map[string]chan inputAnswer
}

func newInputs() *inputs {
	return &inputs{held: map[string]*heldCall{}, waiting: map[string]chan inputAnswer{}}
}

// callContext is the context of a call forwarded to srv: for a stateless
// caller's request that may need input from a server not known to speak
// the stateless revision, one that the client's HTTP request ending
// cancels only while that request serves the call (see heldCall).
func (r *Router) callContext(c *call, srv *registry.Server) (context.Context, context.CancelFunc) {
	if !c.sess.stateless() || !inputMethod(c.msg.Method) || r.pool.KnownModern(srv) {
		return context.WithTimeout(c.req.Context(), r.cfg.CallTimeout)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.req.Context()), r.cfg.CallTimeout)
	h := &heldCall{cancel: cancel, owner: c}
	h.detach = context.AfterFunc(c.req.Context(), cancel)
	c.input = &callInput{held: h}
	return ctx, func() {
		if h.ownedBy(c) {
			h.detach()
			cancel()
		}
	}
}

// closeAnswer closes an upstream answer, unless its call has been handed
// over (held, or already taken by the retry).
func closeAnswer(c *call, resp *http.Response) {
	if c.input != nil && c.input.held != nil && !c.input.held.ownedBy(c) {
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
	if !inputMethod(c.msg.Method) {
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

// inputAnswer is a client's answer to an input request: its result or its
// error, as sent.
type inputAnswer struct {
	result, err json.RawMessage
}

// inputIDPrefix marks the ids of the router's own requests to a client.
const inputIDPrefix = "mcpa-input."

// errInput is what makes bridgeInput give up; its text reaches the client.
type errInput string

func (e errInput) Error() string { return string(e) }

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
		var ei errInput
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
		return mcpparse.Message{}, errInput(fmt.Sprintf("the server asked for input more than %d times (maxInputRounds)", r.cfg.MaxInputRounds))
	}
	f, err := mcpparse.Fields(result, r.answer, "inputRequests", "requestState")
	if err != nil || (f[0].Raw == nil && f[1].Raw == nil) {
		return mcpparse.Message{}, errInput("the server answered a malformed InputRequiredResult")
	}
	var reqs []mcpparse.Field
	var keys []string
	if f[0].Raw != nil {
		if keys, err = mcpparse.Names(f[0].Raw, r.answer); err != nil {
			return mcpparse.Message{}, errInput("the server answered a malformed InputRequiredResult")
		}
		if reqs, err = mcpparse.Fields(f[0].Raw, r.answer, keys...); err != nil {
			return mcpparse.Message{}, errInput("the server answered a malformed InputRequiredResult")
		}
	}
	if f[1].Raw != nil {
		if _, err := mcpparse.String(f[1].Raw); err != nil {
			return mcpparse.Message{}, errInput("the server answered a malformed InputRequiredResult")
		}
	}
	answers, err := r.askClient(ctx, sw, c, keys, reqs)
	if err != nil {
		return mcpparse.Message{}, err
	}
	retryID := mcpparse.AppendString(nil, "mcp-authz.retry."+strconv.Itoa(round))
	body, err := retryBody(c.input.body, retryID, answers, f[1].Raw)
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

// askClient sends each input request to the client on sw and waits for all
// the answers (InputTimeout at most): an inputResponses object.
func (r *Router) askClient(ctx context.Context, sw *relay.Writer, c *call, keys []string, reqs []mcpparse.Field) (json.RawMessage, error) {
	type asked struct {
		key, wait string
		ch        chan inputAnswer
	}
	var all []asked
	defer func() {
		r.input.mu.Lock()
		for _, a := range all {
			delete(r.input.waiting, a.wait)
		}
		r.input.mu.Unlock()
	}()
	for i, key := range keys {
		f, err := mcpparse.Fields(reqs[i].Raw, r.answer, "method", "params")
		if err != nil || f[0].Raw == nil {
			return nil, errInput("the server answered a malformed InputRequiredResult")
		}
		method, err := mcpparse.String(f[0].Raw)
		if err != nil || inputCapability(method) == "" {
			return nil, errInput("the server asked for input with a method other than elicitation/create, sampling/createMessage or roots/list")
		}
		if !clientDeclared(c.sess.Caps, inputCapability(method)) {
			return nil, errInput("the server asked for " + method + ", a capability the client did not declare")
		}
		id := mcpparse.AppendString(nil, inputIDPrefix+randomID())
		a := asked{key: key, wait: inputWaitKey(c.sess, id), ch: make(chan inputAnswer, 1)}
		r.input.mu.Lock()
		r.input.waiting[a.wait] = a.ch
		r.input.mu.Unlock()
		all = append(all, a)
		msg := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
		msg = append(append(msg, `,"method":`...), f[0].Raw...)
		if f[1].Raw != nil {
			msg = append(append(msg, `,"params":`...), f[1].Raw...)
		}
		if err := sw.Event(append(msg, '}')); err != nil {
			return nil, fmt.Errorf("router: input request: %w", err)
		}
	}
	timeout := time.NewTimer(r.cfg.InputTimeout)
	defer timeout.Stop()
	out := []byte{'{'}
	for i, a := range all {
		var ans inputAnswer
		select {
		case ans = <-a.ch:
		case <-timeout.C:
			return nil, errInput("the client did not answer the server's input request in time (inputTimeout)")
		case <-ctx.Done():
			return nil, errInput("the call ended while waiting for the client's input")
		}
		if ans.err != nil {
			return nil, errInput("the client answered the server's " + strconv.Quote(a.key) + " input request with an error")
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(append(mcpparse.AppendString(out, a.key), ':'), ans.result...)
	}
	return append(out, '}'), nil
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
	if err != nil || !strings.HasPrefix(s, inputIDPrefix) {
		return false
	}
	w.WriteHeader(http.StatusAccepted)
	ans := inputAnswer{result: bytes.Clone(c.msg.Result), err: bytes.Clone(c.msg.Error)}
	if ans.result == nil && ans.err == nil {
		return true
	}
	if ans.result != nil {
		if _, err := mcpparse.Fields(ans.result, requestOptions); err != nil {
			ans = inputAnswer{err: json.RawMessage(`{}`)} // not an object: an error
		}
	}
	r.input.mu.Lock()
	ch, ok := r.input.waiting[inputWaitKey(c.sess, c.msg.ID)]
	r.input.mu.Unlock()
	if ok {
		select {
		case ch <- ans:
		default: // answered twice: the first counts
		}
	}
	return true
}

// clientDeclared reports whether caps, a client's capabilities, has member name.
func clientDeclared(caps json.RawMessage, name string) bool {
	if caps == nil {
		return false
	}
	f, err := mcpparse.Fields(caps, requestOptions, name)
	return err == nil && f[0].Raw != nil && string(f[0].Raw) != "null"
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

// retryBody is body (a request) with id in place of its id and params
// carrying inputResponses and requestState (state, a JSON string, or nil).
func retryBody(body, id, answers, state []byte) ([]byte, error) {
	f, err := mcpparse.Fields(body, requestOptions, "id", "params")
	if err != nil || f[0].Raw == nil || f[1].Raw == nil {
		return nil, errInput("the call cannot be retried")
	}
	params := f[1].Raw
	if pf, err := mcpparse.Fields(params, requestOptions, "inputResponses", "requestState"); err != nil || pf[0].Raw != nil || pf[1].Raw != nil {
		return nil, errInput("the request carries inputResponses or requestState, which its protocol revision does not have")
	}
	i := bytes.IndexByte(params, '{') + 1
	p := make([]byte, 0, len(params)+len(answers)+len(state)+40)
	p = append(append(append(p, params[:i]...), `"inputResponses":`...), answers...)
	if state != nil {
		p = append(append(p, `,"requestState":`...), state...)
	}
	if !emptyJSONObject(params) {
		p = append(p, ',')
	}
	p = append(p, params[i:]...)
	// The later span first: the earlier's offset stays true.
	spans := []struct {
		s mcpparse.Span
		v []byte
	}{
		{mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)}, id},
		{mcpparse.Span{Start: f[1].Start, End: f[1].Start + len(f[1].Raw)}, p},
	}
	if spans[0].s.Start < spans[1].s.Start {
		spans[0], spans[1] = spans[1], spans[0]
	}
	out := bytes.Clone(body)
	for _, s := range spans {
		out = mcpparse.Splice(out, s.s, s.v)
	}
	return out, nil
}

// retryAnswer reads the server's answer to a retry (id), relaying what
// comes before it to the client.
func (r *Router) retryAnswer(ctx context.Context, sw *relay.Writer, c *call, srv *registry.Server, resp *http.Response, id []byte) (mcpparse.Message, error) {
	if err := upstream.StatusError(resp); err != nil {
		return mcpparse.Message{}, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
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

// emptyJSONObject reports whether obj, a JSON object, has no member.
func emptyJSONObject(obj []byte) bool {
	t := bytes.TrimLeft(obj[1:], " \t\r\n")
	return len(t) > 0 && t[0] == '}'
}
