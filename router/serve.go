package router

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// maxRequestBytes bounds a client's request body.
const maxRequestBytes = 4 << 20

// protocolVersions are the versions with sessions (initialize) the router
// speaks with clients, newest first; statelessVersions are the others.
var protocolVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26"}

// capabilities is what initialize answers.
const capabilities = `{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"listChanged":true,"subscribe":true},"logging":{},"completions":{},"tasks":{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}}`

// call is one client request the router is serving.
type call struct {
	req    *http.Request
	claims assertion.Claims
	body   []byte
	msg    *mcpparse.Message // the body, decoded once
	sess   *session
	// auth is the Authorization header received: the caller's own token,
	// or, when claims.Credential names it, the token authz obtained for
	// claims.Server. Only the latter is ever sent upstream.
	auth string
	task *taskRef // the task of a task request, opened (tasks.go)
	// input is what a forwarded call keeps for input requests (mrtr.go).
	input *callInput
	// upID is the id the request went upstream with when it is not the
	// client's (ownID); nil: msg.ID.
	upID json.RawMessage
}

// upstreamID is the id c's request went upstream with: the upstream's
// answer is matched by it, and the client answered with msg.ID.
func (c *call) upstreamID() json.RawMessage {
	if c.upID != nil {
		return c.upID
	}
	return c.msg.ID
}

func (r *Router) serveMCP(w http.ResponseWriter, req *http.Request) {
	o := req.Header.Values("Origin")
	if err := r.origins.Check(strings.Join(o, ","), len(o) > 0, req.Host); err != nil {
		// DNS rebinding: refused before anything is read or opened.
		writeError(w, http.StatusForbidden, nil, codeInvalidRequest, err.Error())
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
		writeError(w, http.StatusMethodNotAllowed, nil, codeInvalidRequest, "method not allowed")
	}
}

// trust verifies the authz assertion for body; on failure it answers 401.
func (r *Router) trust(w http.ResponseWriter, req *http.Request, body []byte) (assertion.Claims, bool) {
	c, err := r.verifier.Verify(req.Header.Get(assertion.Header), body, r.now())
	if err != nil {
		r.log.Info("request refused", "reason", err.Error())
		writeError(w, http.StatusUnauthorized, nil, codeInvalidRequest, "request did not pass authorization")
		return c, false
	}
	return c, true
}

// open finds the caller's session; on failure it answers 400 or 404.
func (r *Router) open(w http.ResponseWriter, req *http.Request, claims assertion.Claims, id json.RawMessage) (*session, bool) {
	sid := req.Header.Get("Mcp-Session-Id")
	if sid == "" {
		writeError(w, http.StatusBadRequest, id, codeInvalidRequest, "missing Mcp-Session-Id")
		return nil, false
	}
	s, err := r.openSession(sid)
	if err == nil {
		switch {
		case !s.belongsTo(claims.Issuer, claims.Subject), r.isEnded(s), !r.now().Before(r.sessionExpiry(s)):
			err = errSession
		}
	}
	if err != nil {
		writeError(w, http.StatusNotFound, id, codeInvalidRequest, "session not found")
		return nil, false
	}
	return s, true
}

// openSession opens a sealed session id: from this replica's cache of ids
// it opened before (the id is the key: nothing is decoded), else unsealed
// and cached.
func (r *Router) openSession(sid string) (*session, error) {
	if s, ok := r.opened.get(sid); ok {
		return s, nil
	}
	s, err := r.sealer.open(sid)
	if err != nil {
		return nil, err
	}
	r.opened.put(sid, s)
	return s, nil
}

// isEnded reports whether this replica ended s (DELETE).
func (r *Router) isEnded(s *session) bool {
	_, ended := r.ended.get(s.ID)
	return ended
}

// sessionExpiry is when s stops being valid.
func (r *Router) sessionExpiry(s *session) time.Time {
	return time.Unix(s.Issued, 0).Add(r.cfg.SessionTTL)
}

func (r *Router) post(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxRequestBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, nil, codeInvalidRequest, "request too large")
		return
	}
	claims, ok := r.trust(w, req, body)
	if !ok {
		return
	}
	msg, err := r.parse(body)
	switch {
	case errors.Is(err, mcpparse.ErrBatch):
		writeError(w, http.StatusBadRequest, nil, codeInvalidRequest, "batch not supported")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, nil, codeParse, "not a JSON-RPC 2.0 message")
		return
	}
	if claims.Method != msg.Method {
		writeError(w, http.StatusUnauthorized, msg.ID, codeInvalidRequest, "request did not pass authorization")
		return
	}
	switch {
	case msg.Kind == mcpparse.KindRequest && !validID(msg.ID):
		// Its answer could not be matched: refused before anything runs.
		writeError(w, http.StatusBadRequest, nil, codeInvalidRequest, "invalid id: a string or an integer within ±(2^53-1)")
		return
	case string(msg.ID) == "null":
		// An error answering nothing: the router relays none.
		writeError(w, http.StatusBadRequest, nil, codeParse, "not a JSON-RPC 2.0 message")
		return
	}
	if err := mcpparse.CheckMirror(mirror(req.Header), &msg); err != nil {
		code, text := codeHeaderMismatch, "Mcp-Method, Mcp-Name or MCP-Protocol-Version does not match the body"
		if !errors.Is(err, mcpparse.ErrHeaderMismatch) {
			code, text = mcpparse.Code(err), "invalid params._meta"
		}
		writeError(w, http.StatusBadRequest, msg.ID, code, text)
		return
	}
	r.metrics.requests.WithLabelValues(methodLabel(msg.Method)).Inc()
	c := &call{req: req, claims: claims, body: body, msg: &msg, auth: req.Header.Get("Authorization")}
	if r.statelessRequest(w, c) {
		return
	}
	if msg.Method == "initialize" && msg.Kind == mcpparse.KindRequest {
		r.initialize(w, c)
		return
	}
	if msg.Kind == mcpparse.KindNotification && req.Header.Get("Mcp-Session-Id") == "" &&
		req.Header.Get("MCP-Protocol-Version") >= upstream.Stateless {
		// A stateless client's notification (2026-07-28): nothing to pass
		// on. Its notifications/cancelled is redundant: closing the
		// request's stream cancels it, and that cancels the upstream call.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if c.sess, ok = r.open(w, req, claims, msg.ID); !ok {
		return
	}
	if _, ok := r.levels.get(c.sess.key()); ok {
		// The session set a log level: an upstream session opened while
		// serving this request is given it if the policy allows (applyLevel).
		c.req = req.WithContext(context.WithValue(req.Context(), callerAuthKey{}, c.auth))
	}
	if v := req.Header.Get("MCP-Protocol-Version"); v != "" && !slices.Contains(protocolVersions, v) {
		writeError(w, http.StatusBadRequest, msg.ID, codeInvalidRequest, "unsupported MCP-Protocol-Version")
		return
	}
	switch {
	case msg.Method == "notifications/cancelled":
		r.cancel(w, c)
	case msg.Method == "notifications/roots/list_changed":
		w.WriteHeader(http.StatusAccepted)
		r.notifyAll(c)
	case msg.Kind == mcpparse.KindNotification:
		w.WriteHeader(http.StatusAccepted) // initialized was sent upstream at initialize
	case msg.Kind == mcpparse.KindResponse || msg.Kind == mcpparse.KindError:
		r.relayResponse(w, c)
	default:
		r.dispatch(w, c)
	}
}

// parse decodes a client's body: the one decode of it in the router, as
// strict as authz's (mcpparse). parsed counts decodes, for tests.
func (r *Router) parse(body []byte) (mcpparse.Message, error) {
	r.parsed.Add(1)
	return mcpparse.Parse(body, requestOptions)
}

func (r *Router) dispatch(w http.ResponseWriter, c *call) {
	defer r.traceCall(c)()
	switch c.msg.Method {
	case "ping":
		writeJSON(w, http.StatusOK, resultBody(c.msg.ID, []byte("{}")))
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
		r.taskRequest(w, c)
	case "tasks/list":
		r.listTasks(w, c)
	case "subscriptions/listen":
		r.listen(w, c)
	default:
		writeError(w, noMethodStatus(c), c.msg.ID, codeNoMethod, "method not found")
	}
}

func negotiate(requested string) string {
	if slices.Contains(protocolVersions, requested) {
		return requested
	}
	return protocolVersions[0]
}

// maxClientInit bounds what of the client's initialize the session keeps.
const maxClientInit = 2 << 10

func (r *Router) initialize(w http.ResponseWriter, c *call) {
	var f []mcpparse.Field
	var version string
	err := errors.New("no params")
	if c.msg.Params != nil {
		if f, err = mcpparse.Fields(c.msg.Params, requestOptions, "protocolVersion", "capabilities", "clientInfo"); err == nil && f[0].Raw != nil {
			version, err = mcpparse.String(f[0].Raw)
		}
	}
	if err != nil {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid initialize params")
		return
	}
	caps, info := nullable(f[1].Raw), nullable(f[2].Raw)
	if len(caps)+len(info) > maxClientInit {
		info = nil
		if len(caps) > maxClientInit {
			caps = nil
		}
	}
	// Upstream sessions are opened on first use, per server: none now.
	s := &session{
		ID: randomID(), Issuer: c.claims.Issuer, Subject: c.claims.Subject, Version: negotiate(version),
		Issued: r.now().Unix(), Caps: bytes.Clone(caps), Info: bytes.Clone(info),
	}
	s.key()
	sid, err := r.sealer.seal(s)
	r.metrics.sessions.Inc()
	if err != nil {
		writeError(w, http.StatusInternalServerError, c.msg.ID, codeInternal, "internal error")
		return
	}
	r.opened.put(sid, s)
	res, _ := json.Marshal(struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      any             `json:"serverInfo"`
	}{s.Version, json.RawMessage(capabilities), map[string]string{"name": "mcp-authz", "version": "1"}})
	w.Header().Set("Mcp-Session-Id", sid)
	writeJSON(w, http.StatusOK, resultBody(c.msg.ID, res))
}

// nullable is raw, or nil for a JSON null.
func nullable(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (r *Router) upstreamFailed(srv *registry.Server, op string, err error) {
	r.UpstreamFailures.Add(1)
	r.metrics.failures.WithLabelValues(srv.Name, methodLabel(op)).Inc()
	r.log.Warn("upstream failed", "server", srv.Name, "op", op, "error", err.Error())
}

// upstreamAuth is the Authorization for a call the router makes itself to
// server: what the Authorizer obtained for that server, or "" (none). The
// caller's own token is never sent upstream: without an Authorizer, or when
// it answers with the caller's token, upstream calls carry no Authorization.
func (r *Router) upstreamAuth(ctx context.Context, callerAuth, server string) (string, error) {
	if r.auth == nil {
		return "", nil
	}
	a, err := r.auth.UpstreamAuthorization(ctx, callerAuth, server)
	if err != nil {
		return "", err
	}
	if a == callerAuth {
		// An Authorizer that passes the caller's token through (no
		// exchange): it is still never sent upstream.
		return "", nil
	}
	return a, nil
}

// openBodyless trusts and opens the session of a request without a body
// (GET, DELETE): its assertion must name no method, as such a request
// carries no message. It has answered the request when ok is false.
func (r *Router) openBodyless(w http.ResponseWriter, req *http.Request) (assertion.Claims, *session, bool) {
	claims, ok := r.trust(w, req, nil)
	if !ok {
		return claims, nil, false
	}
	if claims.Method != "" {
		writeError(w, http.StatusUnauthorized, nil, codeInvalidRequest, "request did not pass authorization")
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
	r.ended.put(s.ID, r.sessionExpiry(s))
	r.streams.End(s.key())
	auth := req.Header.Get("Authorization")
	for _, srv := range r.reg.Load().Servers() {
		up, ok := r.pool.Take(s.key(), srv.Name)
		if !ok {
			continue
		}
		if a, err := r.upstreamAuth(req.Context(), auth, srv.Name); err == nil {
			r.deleteUpstream(req.Context(), &srv, a, up)
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
