package router

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
)

// maxRequestBytes bounds a client's request body.
const maxRequestBytes = 4 << 20

// protocolVersions are the versions the router speaks with clients, newest
// first. 2026-07-28 clients fall back to initialize when server/discover is
// refused.
var protocolVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26"}

// capabilities is what initialize answers.
const capabilities = `{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"listChanged":true}}`

// call is one client request the router is serving.
type call struct {
	req    *http.Request
	claims assertion.Claims
	body   []byte
	msg    *message
	sess   *session
	// auth is the Authorization header received: the caller's own token,
	// or, when claims.Credential names it, the token authz obtained for
	// claims.Server. Only the latter is ever sent upstream.
	auth string
}

func (r *Router) serveMCP(w http.ResponseWriter, req *http.Request) {
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
	s, err := r.sealer.open(sid)
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
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
		writeError(w, http.StatusBadRequest, nil, codeInvalidRequest, "batch not supported")
		return
	}
	msg, err := parseMessage(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, nil, codeParse, "not a JSON-RPC 2.0 message")
		return
	}
	if claims.Method != msg.Method {
		writeError(w, http.StatusUnauthorized, msg.ID, codeInvalidRequest, "request did not pass authorization")
		return
	}
	if msg.isRequest() {
		var buf [64]byte
		if _, ok := appendIDKey(buf[:0], msg.ID); !ok {
			// Its answer could not be matched: refused before anything runs.
			writeError(w, http.StatusBadRequest, nil, codeInvalidRequest, "invalid id: a string or an integer within ±(2^53-1)")
			return
		}
	}
	if !mirrorsBody(req.Header, msg) {
		writeError(w, http.StatusBadRequest, msg.ID, codeHeaderMismatch, "Mcp-Method or Mcp-Name does not match the body")
		return
	}
	r.metrics.requests.WithLabelValues(methodLabel(msg.Method)).Inc()
	c := &call{req: req, claims: claims, body: body, msg: msg, auth: req.Header.Get("Authorization")}
	switch {
	case msg.Method == "initialize" && msg.isRequest():
		r.initialize(w, c)
		return
	case msg.Method == "server/discover" && req.Header.Get("Mcp-Session-Id") == "":
		writeError(w, http.StatusOK, msg.ID, codeNoMethod, "method not found: use initialize")
		return
	}
	if c.sess, ok = r.open(w, req, claims, msg.ID); !ok {
		return
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
	case msg.isNotification():
		w.WriteHeader(http.StatusAccepted) // initialized was sent upstream at initialize
	case msg.isResponse():
		r.relayResponse(w, c)
	default:
		r.dispatch(w, c)
	}
}

func (r *Router) dispatch(w http.ResponseWriter, c *call) {
	switch c.msg.Method {
	case "ping":
		writeJSON(w, http.StatusOK, resultBody(c.msg.ID, []byte("{}")))
	case "tools/list":
		r.list(w, c, toolsKind)
	case "prompts/list":
		r.list(w, c, promptsKind)
	case "resources/list":
		r.list(w, c, resourcesKind)
	case "resources/templates/list":
		r.list(w, c, templatesKind)
	case "tools/call", "prompts/get":
		r.callNamed(w, c)
	case "resources/read":
		r.readResource(w, c)
	default:
		writeError(w, http.StatusOK, c.msg.ID, codeNoMethod, "method not found")
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
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      json.RawMessage `json:"clientInfo"`
	}
	if err := json.Unmarshal(c.msg.Params, &p); err != nil {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid initialize params")
		return
	}
	ci, _ := json.Marshal(clientInit{Capabilities: p.Capabilities, ClientInfo: p.ClientInfo})
	if len(ci) > maxClientInit {
		ci, _ = json.Marshal(clientInit{Capabilities: p.Capabilities})
		if len(ci) > maxClientInit {
			ci = nil
		}
	}
	s := &session{
		ID: randomID(), Issuer: c.claims.Issuer, Subject: c.claims.Subject, Version: negotiate(p.ProtocolVersion),
		Issued: r.now().Unix(), Up: map[string]upstreamSession{}, Client: ci,
	}
	s.key()
	c.sess = s
	servers := r.reg.Load().Servers()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range servers {
		srv := &servers[i]
		wg.Go(func() {
			auth, err := r.upstreamAuth(c.req.Context(), c.auth, srv.Name)
			if err != nil {
				// The caller's affair, not the server's: not counted.
				r.log.Debug("no upstream authorization", "server", srv.Name)
				return
			}
			up, err := r.initUpstream(c.req.Context(), srv, auth, s.Version, s.Client)
			if err != nil {
				r.upstreamFailed(srv, "initialize", err)
				return
			}
			mu.Lock()
			s.Up[srv.Name] = up
			mu.Unlock()
		})
	}
	wg.Wait()
	sid, err := r.sealer.seal(s)
	r.metrics.sessions.Inc()
	if err != nil {
		writeError(w, http.StatusInternalServerError, c.msg.ID, codeInternal, "internal error")
		return
	}
	res, _ := json.Marshal(struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      any             `json:"serverInfo"`
	}{s.Version, json.RawMessage(capabilities), map[string]string{"name": "mcp-authz", "version": "1"}})
	w.Header().Set("Mcp-Session-Id", sid)
	writeJSON(w, http.StatusOK, resultBody(c.msg.ID, res))
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

// upstreamFor returns the caller's session with srv: the one opened at
// initialize, or one this replica opened later (a server registered after
// initialize, or a re-initialise after the upstream ended the session),
// cached by (session, server). Another replica opens its own.
func (r *Router) upstreamFor(ctx context.Context, s *session, srv *registry.Server, auth string) (upstreamSession, error) {
	key := s.key() + "\x00" + srv.Name
	if up, ok := r.upstream.get(key); ok {
		return up, nil
	}
	if up, ok := s.Up[srv.Name]; ok {
		return up, nil
	}
	return r.reinit(ctx, s, srv, auth, upstreamSession{})
}

// reinit opens a new session with srv in place of old; concurrent requests
// for the same (session, server) share one initialize. An ended session
// (DELETE on this replica) is never given a new upstream session, not even
// by a request that was in flight when it ended.
func (r *Router) reinit(ctx context.Context, s *session, srv *registry.Server, auth string, old upstreamSession) (upstreamSession, error) {
	key := s.key() + "\x00" + srv.Name
	v, err, _ := r.inits.Do(key+"\x00"+old.ID, func() (any, error) {
		if r.isEnded(s) || !r.now().Before(r.sessionExpiry(s)) {
			return nil, errEnded
		}
		if up, ok := r.upstream.get(key); ok && up != old {
			return up, nil
		}
		up, err := r.initUpstream(ctx, srv, auth, s.Version, s.Client)
		if err != nil {
			r.upstreamFailed(srv, "initialize", err)
			return nil, err
		}
		r.upstream.put(key, up)
		// delete marks the session ended before it clears this cache: if it
		// ended meanwhile, the session just opened is ended here.
		if r.isEnded(s) {
			r.upstream.remove(key)
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.InitTimeout)
			defer cancel()
			r.deleteUpstream(dctx, srv, auth, up)
			return nil, errEnded
		}
		return up, nil
	})
	if err != nil {
		return upstreamSession{}, err
	}
	return v.(upstreamSession), nil
}

// errEnded is what reinit answers for an ended session: the caller's
// affair, not the server's (lists are not marked failed for it).
var errEnded = fmt.Errorf("%w: %w", errCaller, errSessionEnded)

// delete ends the session and its upstream sessions.
func (r *Router) delete(w http.ResponseWriter, req *http.Request) {
	claims, ok := r.trust(w, req, nil)
	if !ok {
		return
	}
	if claims.Method != "" {
		writeError(w, http.StatusUnauthorized, nil, codeInvalidRequest, "request did not pass authorization")
		return
	}
	s, ok := r.open(w, req, claims, nil)
	if !ok {
		return
	}
	r.ended.put(s.ID, r.sessionExpiry(s))
	r.streams.end(s.key())
	auth := req.Header.Get("Authorization")
	for _, srv := range r.reg.Load().Servers() {
		key := s.key() + "\x00" + srv.Name
		up, ok := r.upstream.get(key)
		if !ok {
			up, ok = s.Up[srv.Name]
		}
		r.upstream.remove(key)
		if !ok {
			continue
		}
		if a, err := r.upstreamAuth(req.Context(), auth, srv.Name); err == nil {
			r.deleteUpstream(req.Context(), &srv, a, up)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// mirrorsBody checks the 2026-07-28 Mcp-Method and Mcp-Name headers, when
// sent, against the body.
func mirrorsBody(h http.Header, m *message) bool {
	if v := h.Get("Mcp-Method"); v != "" && v != m.Method {
		return false
	}
	v := h.Get("Mcp-Name")
	if v == "" {
		return true
	}
	var p struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	_ = json.Unmarshal(m.Params, &p)
	switch m.Method {
	case "tools/call", "prompts/get":
		return v == p.Name
	case "resources/read":
		return v == p.URI
	}
	return true
}
