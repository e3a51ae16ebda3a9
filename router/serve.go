package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// capabilities is what initialize answers.
const capabilities = `{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"listChanged":true,"subscribe":true},"logging":{},"completions":{},"tasks":{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}}`

func (r *Router) serveMCP(w http.ResponseWriter, req *http.Request) {
	o := req.Header.Values("Origin")
	if err := r.origins.Check(strings.Join(o, ","), len(o) > 0, req.Host); err != nil {
		// DNS rebinding: refused before anything is read or opened.
		forward.WriteError(w, http.StatusForbidden, nil, forward.CodeInvalidRequest, err.Error())
		return
	}
	switch req.Method {
	case http.MethodPost:
		r.post(w, req)
	case http.MethodGet:
		r.get(w, req)
	case http.MethodDelete:
		r.delete(w, req)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		forward.WriteError(w, http.StatusMethodNotAllowed, nil, forward.CodeInvalidRequest, "method not allowed")
	}
}

// trust verifies the authz assertion for body; on failure it answers 401.
func (r *Router) trust(w http.ResponseWriter, req *http.Request, body []byte) (assertion.Claims, bool) {
	c, err := r.verifier.Verify(req.Header.Get(assertion.HTTPHeader), body, r.now())
	if err != nil {
		r.log.Info("request refused", "reason", err.Error())
		forward.WriteError(w, http.StatusUnauthorized, nil, forward.CodeInvalidRequest, "request did not pass authorization")
		return c, false
	}
	return c, true
}

// open finds the caller's session; on failure it answers 400 or 404.
func (r *Router) open(w http.ResponseWriter, req *http.Request, claims assertion.Claims, id json.RawMessage) (*session.Record, bool) {
	sid := req.Header.Get("Mcp-Session-Id")
	if sid == "" {
		forward.WriteError(w, http.StatusBadRequest, id, forward.CodeInvalidRequest, "missing Mcp-Session-Id")
		return nil, false
	}
	s, err := r.openSession(sid)
	if err == nil {
		switch {
		case !s.BelongsTo(claims.Issuer, claims.Subject), r.isEnded(s), !r.now().Before(s.Expiry(r.cfg.SessionTTL)):
			err = session.ErrUnknown
		}
	}
	if err != nil {
		forward.WriteError(w, http.StatusNotFound, id, forward.CodeInvalidRequest, "session not found")
		return nil, false
	}
	return s, true
}

// openSession opens a sealed session id: from this replica's cache of ids
// it opened before (the id is the key: nothing is decoded), else unsealed
// and cached.
func (r *Router) openSession(sid string) (*session.Record, error) {
	if s, ok := r.opened.Get(sid); ok {
		return s, nil
	}
	s, err := session.Open(r.sealer, sid)
	if err != nil {
		return nil, err
	}
	r.opened.Put(sid, s)
	return s, nil
}

// isEnded reports whether this replica ended s (DELETE).
func (r *Router) isEnded(s *session.Record) bool {
	_, ended := r.ended.Get(s.ID)
	return ended
}

// readBody reads req's body, at most max bytes: into one buffer of its
// length when the client said it (a body shorter than it said is
// an error), else growing as it comes.
func readBody(w http.ResponseWriter, req *http.Request, max int64) ([]byte, error) {
	if n := req.ContentLength; n >= 0 && n <= max {
		// The server reads no further than the length said: no limit of
		// our own is needed.
		b := make([]byte, n)
		if _, err := io.ReadFull(req.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, req.Body, max))
}

// badBody answers a request whose body could not be read: 413 when it was
// over the limit, else 400.
func badBody(w http.ResponseWriter, err error) {
	if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
		forward.WriteError(w, http.StatusRequestEntityTooLarge, nil, forward.CodeInvalidRequest, "request too large")
		return
	}
	forward.WriteError(w, http.StatusBadRequest, nil, forward.CodeInvalidRequest, "request body cut short")
}

func (r *Router) post(w http.ResponseWriter, req *http.Request) {
	body, err := readBody(w, req, forward.MaxRequestBytes)
	if err != nil {
		badBody(w, err)
		return
	}
	claims, ok := r.trust(w, req, body)
	if !ok {
		return
	}
	msg, err := r.parse(body)
	switch {
	case errors.Is(err, mcpparse.ErrBatch):
		forward.WriteError(w, http.StatusBadRequest, nil, forward.CodeInvalidRequest, "batch not supported")
		return
	case err != nil:
		forward.WriteError(w, http.StatusBadRequest, nil, forward.CodeParse, "not a JSON-RPC 2.0 message")
		return
	}
	if claims.Method != msg.Method {
		forward.WriteError(w, http.StatusUnauthorized, msg.ID, forward.CodeInvalidRequest, "request did not pass authorization")
		return
	}
	switch {
	case msg.Kind == mcpparse.KindRequest && !forward.ValidID(msg.ID):
		// Its answer could not be matched: refused before anything runs.
		forward.WriteError(w, http.StatusBadRequest, nil, forward.CodeInvalidRequest, "invalid id: a string or an integer within ±(2^53-1)")
		return
	case string(msg.ID) == "null":
		// An error answering nothing: the router relays none.
		forward.WriteError(w, http.StatusBadRequest, nil, forward.CodeParse, "not a JSON-RPC 2.0 message")
		return
	}
	if err := mcpparse.CheckMirror(mirror(req.Header), &msg); err != nil {
		code, text := forward.CodeHeaderMismatch, "Mcp-Method, Mcp-Name or MCP-Protocol-Version does not match the body"
		if !errors.Is(err, mcpparse.ErrHeaderMismatch) {
			code, text = mcpparse.Code(err), "invalid params._meta"
		}
		forward.WriteError(w, http.StatusBadRequest, msg.ID, code, text)
		return
	}
	r.metrics.requests.WithLabelValues(methodLabel(msg.Method)).Inc()
	c := &forward.Call{Req: req, Claims: claims, Body: body, Msg: msg, Auth: req.Header.Get("Authorization")}
	if r.statelessRequest(w, c) {
		return
	}
	if msg.Method == "initialize" && msg.Kind == mcpparse.KindRequest {
		r.initialize(w, c)
		return
	}
	if msg.Kind == mcpparse.KindNotification && req.Header.Get("Mcp-Session-Id") == "" &&
		req.Header.Get("Mcp-Protocol-Version") >= upstream.Stateless {
		// A stateless client's notification (2026-07-28): nothing to pass
		// on. Its notifications/cancelled is redundant: closing the
		// request's stream cancels it, and that cancels the upstream call.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if c.Sess, ok = r.open(w, req, claims, msg.ID); !ok {
		return
	}
	if _, ok := r.levels.Get(c.Sess.Key()); ok {
		// The session set a log level: an upstream session opened while
		// serving this request is given it if the policy allows (applyLevel).
		c.Req = req.WithContext(context.WithValue(req.Context(), callerAuthKey{}, c.Auth))
	}
	if v := req.Header.Get("Mcp-Protocol-Version"); v != "" && !slices.Contains(session.Versions, v) {
		forward.WriteError(w, http.StatusBadRequest, msg.ID, forward.CodeInvalidRequest, "unsupported MCP-Protocol-Version")
		return
	}
	switch {
	case msg.Method == "notifications/cancelled":
		r.fwd.Cancel(w, c)
	case msg.Method == "notifications/roots/list_changed":
		w.WriteHeader(http.StatusAccepted)
		r.fwd.NotifyAll(c)
	case msg.Kind == mcpparse.KindNotification:
		w.WriteHeader(http.StatusAccepted) // initialized was sent upstream at initialize
	case msg.Kind == mcpparse.KindResponse || msg.Kind == mcpparse.KindError:
		r.fwd.RelayResponse(w, c)
	default:
		r.dispatch(w, c)
	}
}

// parse decodes a client's body: the one decode of it in the router, as
// strict as authz's (mcpparse). parsed counts decodes, for tests.
func (r *Router) parse(body []byte) (mcpparse.Message, error) {
	r.parsed.Add(1)
	return mcpparse.Parse(body, forward.RequestOptions)
}

func (r *Router) dispatch(w http.ResponseWriter, c *forward.Call) {
	defer r.traceCall(c)()
	switch c.Msg.Method {
	case "ping":
		forward.WriteJSON(w, http.StatusOK, forward.ResultBody(c.Msg.ID, []byte("{}")))
	case "tools/list":
		r.list(w, c, catalog.Tools)
	case "prompts/list":
		r.list(w, c, catalog.Prompts)
	case "resources/list":
		r.list(w, c, catalog.Resources)
	case "resources/templates/list":
		r.list(w, c, catalog.Templates)
	case "tools/call", "prompts/get":
		r.callNamed(w, c)
	case "resources/read":
		r.readResource(w, c)
	case "resources/subscribe", "resources/unsubscribe":
		r.subscribe(w, c)
	case "completion/complete":
		r.complete(w, c)
	case "logging/setLevel":
		r.setLevel(w, c)
	case "tasks/get", "tasks/update", "tasks/cancel", "tasks/result":
		r.fwd.TaskRequest(w, c)
	case "tasks/list":
		r.fwd.ListTasks(w, c)
	case "subscriptions/listen":
		r.listen(w, c)
	default:
		forward.WriteError(w, noMethodStatus(c), c.Msg.ID, forward.CodeNoMethod, "method not found")
	}
}

func negotiate(requested string) string {
	if slices.Contains(session.Versions, requested) {
		return requested
	}
	return session.Versions[0]
}

// maxClientInit bounds a client's capabilities and clientInfo together
// (the bytes of their JSON as sent): its session carries them sealed in its
// id and each upstream initialize sends them. Larger ones are refused
// (-32602), at initialize and on a stateless request alike, never cut.
const maxClientInit = 2 << 10

// clientInitTooLarge is the refusal of capabilities and clientInfo over
// maxClientInit.
var clientInitTooLarge = "capabilities and clientInfo over " + strconv.Itoa(maxClientInit) + " bytes together"

func (r *Router) initialize(w http.ResponseWriter, c *forward.Call) {
	var f []mcpparse.Field
	var version string
	err := errors.New("no params")
	if c.Msg.Params != nil {
		if f, err = mcpparse.Fields(c.Msg.Params, forward.RequestOptions, "protocolVersion", "capabilities", "clientInfo"); err == nil && f[0].Raw != nil {
			version, err = mcpparse.String(f[0].Raw)
		}
	}
	if err != nil {
		forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInvalidParams, "invalid initialize params")
		return
	}
	caps, info := nullable(f[1].Raw), nullable(f[2].Raw)
	if len(caps)+len(info) > maxClientInit {
		forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInvalidParams, "invalid initialize params: "+clientInitTooLarge)
		return
	}
	// Upstream sessions are opened on first use, per server: none now.
	s := &session.Record{
		ID: session.RandomID(), Issuer: c.Claims.Issuer, Subject: c.Claims.Subject, Version: negotiate(version),
		Issued: r.now().Unix(), Caps: bytes.Clone(caps), Info: bytes.Clone(info),
	}
	s.Key()
	sid, err := session.Seal(r.sealer, s)
	r.metrics.sessions.Inc()
	if err != nil {
		forward.WriteError(w, http.StatusInternalServerError, c.Msg.ID, forward.CodeInternal, "internal error")
		return
	}
	r.opened.Put(sid, s)
	res, _ := json.Marshal(struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      any             `json:"serverInfo"`
	}{s.Version, json.RawMessage(capabilities), map[string]string{"name": "mcp-authz", "version": "1"}})
	w.Header().Set("Mcp-Session-Id", sid)
	forward.WriteJSON(w, http.StatusOK, forward.ResultBody(c.Msg.ID, res))
}

// nullable is raw, or nil for a JSON null.
func nullable(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

// upstreamFailed counts and logs a failure of srv's. A request whose own
// context was cancelled (its client cancelled it or went away) is not one.
func (r *Router) upstreamFailed(srv *registry.Server, op string, err error) {
	if errors.Is(err, context.Canceled) {
		r.log.Debug("upstream request cancelled", "server", srv.Name, "op", op)
		return
	}
	r.UpstreamFailures.Add(1)
	r.metrics.failures.WithLabelValues(srv.Name, methodLabel(op)).Inc()
	r.log.Warn("upstream failed", "server", srv.Name, "op", op, "error", err.Error())
}

// openBodyless trusts and opens the session of a request without a body
// (GET, DELETE): its assertion must name no method, as such a request
// carries no message. It has answered the request when ok is false.
func (r *Router) openBodyless(w http.ResponseWriter, req *http.Request) (assertion.Claims, *session.Record, bool) {
	claims, ok := r.trust(w, req, nil)
	if !ok {
		return claims, nil, false
	}
	if claims.Method != "" {
		forward.WriteError(w, http.StatusUnauthorized, nil, forward.CodeInvalidRequest, "request did not pass authorization")
		return claims, nil, false
	}
	s, ok := r.open(w, req, claims, nil)
	return claims, s, ok
}

// delete ends the session and its upstream sessions.
func (r *Router) delete(w http.ResponseWriter, req *http.Request) {
	_, s, ok := r.openBodyless(w, req)
	if !ok {
		return
	}
	r.ended.Put(s.ID, s.Expiry(r.cfg.SessionTTL))
	r.streams.End(s.Key())
	auth := req.Header.Get("Authorization")
	for _, srv := range r.reg.Load().Servers() {
		up, ok := r.pool.Take(s.Key(), srv.Name)
		if !ok {
			continue
		}
		if a, err := r.fwd.UpstreamAuth(req.Context(), auth, srv.Name); err == nil {
			r.pool.Delete(req.Context(), &srv, a, up)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// mirror is what the headers of req say of its body.
func mirror(h http.Header) mcpparse.Mirror {
	m := mcpparse.Mirror{Version: h.Get("Mcp-Protocol-Version")} // canonical: Get allocates for any other spelling
	if v := h.Values("Mcp-Method"); len(v) > 0 {
		m.Method, m.HasMethod = strings.Join(v, ","), true
	}
	if v := h.Values("Mcp-Name"); len(v) > 0 {
		m.Name, m.HasName = strings.Join(v, ","), true
	}
	return m
}
