package forward

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
	"github.com/mcp-authz/mcp-authz/router/session"
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
func (fw *Forwarder) callContext(c *Call, srv *registry.Server) (context.Context, context.CancelFunc) {
	if !c.Sess.Stateless() || !mrtr.Method(c.Msg.Method) || fw.pool.KnownModern(srv) {
		return context.WithTimeout(c.Req.Context(), fw.cfg.CallTimeout)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Req.Context()), fw.cfg.CallTimeout)
	h := mrtr.NewHeld(c.Req.Context(), cancel, c)
	c.input = callInput{held: h}
	return ctx, func() {
		if h.OwnedBy(c) {
			h.Detach()
			cancel()
		}
	}
}

// closeAnswer closes an upstream answer, unless its call has been handed
// over (held, or already taken by the retry).
func closeAnswer(c *Call, resp *http.Response) {
	if c.input.held != nil && !c.input.held.OwnedBy(c) {
		return
	}
	resp.Body.Close()
}

// holding reports whether c is a call whose server's requests are held for
// the client's retry: a stateless caller's (see holdForInput).
func (c *Call) holding() bool { return c.input.held != nil }

// inputHook runs before a call goes upstream: it keeps what is sent (for
// bridgeInput's retries and held calls' answers), and resumes a held call
// when the request is the retry of one (it then answers and reports true).
func (fw *Forwarder) inputHook(ctx context.Context, w http.ResponseWriter, c *Call, srv *registry.Server, auth string, body []byte, name string) bool {
	if !mrtr.Method(c.Msg.Method) {
		return false
	}
	if !c.Sess.Stateless() {
		c.input = callInput{body: body, auth: auth, name: name}
		return false
	}
	c.input.auth, c.input.name = auth, name // the call may be held
	return fw.resumeInput(ctx, w, c, srv, auth, name)
}

// ---- A 2025 session client, a 2026-07-28 server. ----

// needsInput reports whether result, a server's answer to c, is an
// InputRequiredResult the router answers itself: c's client speaks a
// revision without them.
func (fw *Forwarder) needsInput(c *Call, result json.RawMessage) bool {
	if c.Sess.Stateless() || c.input.body == nil || !bytes.Contains(result, []byte(`"input_required"`)) {
		return false
	}
	f, err := mcpparse.Fields(result, fw.answer, "resultType")
	return err == nil && string(f[0].Raw) == `"input_required"`
}

// bridgeInput serves a 2025 client's call that a 2026-07-28 server answered
// with result, an InputRequiredResult: it asks the client, retries, and
// writes the final answer (on sw, started if nil).
func (fw *Forwarder) bridgeInput(w http.ResponseWriter, c *Call, srv *registry.Server, sw *relay.Writer, result json.RawMessage) {
	ctx, cancel := context.WithTimeout(c.Req.Context(), fw.cfg.CallTimeout)
	defer cancel()
	if sw == nil {
		if !acceptsSSE(c.Req) {
			WriteError(w, http.StatusOK, c.Msg.ID, CodeInternal, "the server needs input from the client, which does not accept text/event-stream")
			return
		}
		sw = relay.Start(w, "")
	}
	for round := 1; ; round++ {
		m, err := fw.inputRound(ctx, sw, c, srv, result, round)
		var ei mrtr.Error
		switch {
		case errors.As(err, &ei):
			_ = sw.Event(ErrorBody(c.Msg.ID, CodeInternal, ei.Error()))
			return
		case err != nil:
			if _, code, msg, ok := fw.paramRefusal(c, srv, err); ok {
				_ = sw.Event(ErrorBody(c.Msg.ID, code, msg))
				return
			}
			fw.failed(srv, c.Msg.Method, err)
			_ = sw.Event(ErrorBody(c.Msg.ID, CodeInternal, "upstream unavailable"))
			return
		case m.Error == nil && fw.needsInput(c, m.Result):
			result = m.Result
			continue
		}
		// The final answer as any other: task ids sealed, a read private.
		_ = sw.Event(AnswerBody(c.Msg.ID, fw.resultFor(c, m.Result), m.Error))
		return
	}
}

// inputRound asks the client result's inputRequests, sends the retry and
// returns the server's answer to it.
func (fw *Forwarder) inputRound(ctx context.Context, sw *relay.Writer, c *Call, srv *registry.Server, result json.RawMessage, round int) (mcpparse.Message, error) {
	if round > fw.cfg.MaxInputRounds {
		return mcpparse.Message{}, mrtr.Error(fmt.Sprintf("the server asked for input more than %d times (maxInputRounds)", fw.cfg.MaxInputRounds))
	}
	in, err := mrtr.ParseInputRequired(result, fw.answer)
	if err != nil {
		return mcpparse.Message{}, err
	}
	answers, err := fw.askClient(ctx, sw, c, srv, in)
	if err != nil {
		return mcpparse.Message{}, err
	}
	retryID := mcpparse.AppendString(nil, "mcp-authz.retry."+strconv.Itoa(round))
	body, err := mrtr.RetryBody(c.input.body, retryID, answers, in.State, RequestOptions)
	if err != nil {
		return mcpparse.Message{}, err
	}
	resp, err := fw.sendSession(ctx, c, srv, c.input.auth, body, c.input.name)
	if err != nil {
		return mcpparse.Message{}, err
	}
	defer resp.Body.Close()
	return fw.retryAnswer(ctx, sw, c, srv, resp, retryID)
}

// askClient sends each of in's input requests (srv's) to the client on sw and
// waits for all the answers (InputTimeout at most): an inputResponses
// object.
func (fw *Forwarder) askClient(ctx context.Context, sw *relay.Writer, c *Call, srv *registry.Server, in mrtr.InputRequired) (json.RawMessage, error) {
	var waits []string
	defer func() { fw.input.Forget(waits...) }()
	chans := make([]<-chan mrtr.Answer, 0, len(in.Keys))
	for _, req := range in.Requests {
		method, methodJSON, params, err := mrtr.ParseRequest(req, fw.answer)
		if err != nil {
			return nil, err
		}
		if !mrtr.ClientDeclared(c.Sess.Caps, RequestOptions, mrtr.Capability(method)) {
			return nil, mrtr.Error("the server asked for " + method + ", a capability the client did not declare")
		}
		id := mcpparse.AppendString(nil, mrtr.IDPrefix+session.RandomID())
		wait := mrtr.WaitKey(c.Sess.Key(), id)
		chans = append(chans, fw.input.Wait(wait))
		waits = append(waits, wait)
		// Its related-task id as the client knows it, as on a stream.
		ask, _ := fw.TaskMessage(c, srv, mrtr.Request(id, methodJSON, params), &mcpparse.Message{Method: method})
		if err := sw.Event(ask); err != nil {
			return nil, fmt.Errorf("router: input request: %w", err)
		}
	}
	return mrtr.Collect(ctx, fw.cfg.InputTimeout, in.Keys, chans)
}

// inputAnswered takes a client's answer to one of the router's own input
// requests: it reports whether the answer was one (answered 202).
func (fw *Forwarder) inputAnswered(w http.ResponseWriter, c *Call) bool {
	s, err := mcpparse.String(c.Msg.ID)
	if err != nil || !strings.HasPrefix(s, mrtr.IDPrefix) {
		return false
	}
	w.WriteHeader(http.StatusAccepted)
	ans := mrtr.Answer{Result: bytes.Clone(c.Msg.Result), Err: bytes.Clone(c.Msg.Error)}
	if ans.Result == nil && ans.Err == nil {
		return true
	}
	if ans.Result != nil {
		if _, err := mcpparse.Fields(ans.Result, RequestOptions); err != nil {
			ans = mrtr.Answer{Err: json.RawMessage(`{}`)} // not an object: an error
		}
	}
	fw.input.Deliver(mrtr.WaitKey(c.Sess.Key(), c.Msg.ID), ans)
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
func (fw *Forwarder) retryAnswer(ctx context.Context, sw *relay.Writer, c *Call, srv *registry.Server, resp *http.Response, id []byte) (mcpparse.Message, error) {
	if err := upstream.StatusError(resp); err != nil {
		return mcpparse.Message{}, err
	}
	ct := upstream.MediaType(resp.Header)
	if ct != "text/event-stream" {
		return fw.up.ReadAnswer(resp, id)
	}
	sr := upstream.NewSSEReader(resp.Body, fw.cfg.MaxResponseBytes)
	for {
		data, err := sr.Next()
		if err != nil {
			return mcpparse.Message{}, fmt.Errorf("%w: stream ended before the answer: %w", upstream.ErrAnswer, err)
		}
		m, err := mcpparse.Parse(data, fw.answer)
		if err != nil {
			continue
		}
		if upstream.IsAnswer(&m) {
			if upstream.SameID(m.ID, id) {
				return m, nil
			}
			continue
		}
		if data, ok := fw.passEvent(ctx, c, srv, &m, data); ok {
			if err := sw.Event(data); err != nil {
				return mcpparse.Message{}, err
			}
		}
	}
}

// passEvent is what the client gets of a server's request or notification
// during a call (as stream relays them: ids wrapped, task ids as the client
// knows them), and whether it gets it.
func (fw *Forwarder) passEvent(ctx context.Context, c *Call, srv *registry.Server, m *mcpparse.Message, data []byte) ([]byte, bool) {
	if m.Kind == mcpparse.KindRequest {
		data = mcpparse.Splice(data, m.IDSpan, relay.WrapID(srv.Name, m.ID))
		data, _ = fw.TaskMessage(c, srv, data, m) // a request is never dropped
		return data, true
	}
	if strings.HasSuffix(m.Method, "/list_changed") {
		fw.cat.Invalidate(srv.Name)
	}
	if m.Method == "notifications/resources/updated" && !fw.UpdateAllowed(ctx, c, srv, m) {
		return nil, false
	}
	return fw.TaskMessage(c, srv, data, m)
}
