package authz

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// ContextExtensionServer is the Envoy context extension (per-route
// check_settings.context_extensions) that names the registered server a route
// leads to. With it, or with a request host that a server registered as its
// hostname, authz is attached per route (Kuadrant AuthPolicy style) and tool
// names in the body are taken unprefixed.
const ContextExtensionServer = "mcp-server"

// Headers authz sets on an allowed request (Kuadrant mcp-gateway compatible).
const (
	HeaderMethod      = "x-mcp-method"
	HeaderServerName  = "x-mcp-servername"
	HeaderToolName    = "x-mcp-toolname"
	HeaderPromptName  = "x-mcp-promptname"
	HeaderResourceURI = "x-mcp-resourceuri"
)

// Check implements envoy.service.auth.v3.AuthorizationServer. It never
// returns an error: every failure is a denial with a reason.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	v := s.check(ctx, req)
	s.record(ctx, v, time.Since(start))
	return v.response(), nil
}

// verdict is the outcome of one Check: a denial (status != 0) or the headers
// of an OK answer.
type verdict struct {
	status    int // HTTP status of a denial; 0 allows
	reason    string
	code      int    // JSON-RPC error code of a denial
	id        []byte // JSON-RPC id of the request, as sent
	challenge string // WWW-Authenticate of a 401
	detail    string // log only: why, beyond the reason
	set       []*corev3.HeaderValueOption
	remove    []string
	issuer    string
	subject   string
	expiry    time.Time // of the caller's token
	method    string
	server    string
	name      string

	// credential names the Authorization set for server (the router
	// forwards only that one), if any.
	credential string
}

func deny(status int, reason string, code int) *verdict {
	return &verdict{status: status, reason: reason, code: code}
}

// call is one request as authz sees it.
type call struct {
	http    *authv3.AttributeContext_HttpRequest
	headers map[string]string
	ext     map[string]string
	body    []byte
	caller  *identity.Identity
	raw     string // the caller's bearer token
}

func (s *Server) check(ctx context.Context, req *authv3.CheckRequest) *verdict {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return deny(http.StatusBadRequest, ReasonInvalidRequest, -32600)
	}
	c := &call{http: h, headers: headerMap(h), ext: req.GetAttributes().GetContextExtensions()}
	c.body = h.GetRawBody()
	if len(c.body) == 0 && h.GetBody() != "" {
		c.body = []byte(h.GetBody())
	}
	v := s.run(ctx, c)
	if v.status == 0 {
		s.finish(c, v)
	}
	return v
}

func (s *Server) run(ctx context.Context, c *call) *verdict {
	h := c.http
	if v := s.checkBody(c); v != nil {
		return v
	}
	if v := s.authenticate(ctx, c); v != nil {
		return v
	}
	switch h.GetMethod() {
	case http.MethodPost:
	case http.MethodGet, http.MethodDelete:
		// The SSE stream and the end of a session carry no JSON-RPC message:
		// the caller is authenticated, the router checks the session.
		return s.allow(c, nil)
	default:
		return deny(http.StatusMethodNotAllowed, ReasonInvalidRequest, -32600)
	}
	if len(c.body) == 0 {
		return deny(http.StatusBadRequest, ReasonBodyMissing, mcpparse.CodeParseError)
	}
	opts := mcpparse.Options{MaxBytes: s.cfg.MaxBodyBytes}
	if mcpparse.IsBatch(c.body) {
		if !s.cfg.AllowBatch {
			return deny(http.StatusBadRequest, ReasonBatchRejected, mcpparse.Code(mcpparse.ErrBatch))
		}
		msgs, err := mcpparse.ParseBatch(c.body, opts)
		if err != nil {
			return parseDenial(err)
		}
		return s.batch(ctx, c, msgs)
	}
	msg, err := mcpparse.Parse(c.body, opts)
	if err != nil {
		return parseDenial(err)
	}
	if v := checkMirrorHeaders(c.headers, &msg); v != nil {
		return v
	}
	return s.decide(ctx, c, &msg)
}

// checkBody refuses a body that is not whole: Envoy marks a body it cut at
// with_request_body.max_request_bytes with x-envoy-auth-partial-body: true
// (allow_partial_message), and a body shorter than its content-length was
// cut on the way. Such a body is never parsed as if whole.
func (s *Server) checkBody(c *call) *verdict {
	if c.headers["x-envoy-auth-partial-body"] == "true" {
		return deny(http.StatusRequestEntityTooLarge, ReasonBodyTruncated, -32600)
	}
	if cl, ok := c.headers["content-length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(c.body) {
			return deny(http.StatusRequestEntityTooLarge, ReasonBodyTruncated, -32600)
		}
	}
	if len(c.body) > s.cfg.MaxBodyBytes {
		return deny(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, -32600)
	}
	return nil
}

// authenticate validates the caller's bearer token when identity is on.
func (s *Server) authenticate(ctx context.Context, c *call) *verdict {
	if s.verify == nil {
		return nil
	}
	if _, q, ok := strings.Cut(c.http.GetPath(), "?"); ok && hasQueryToken(q) {
		return s.unauthorized(c, ReasonTokenInQuery, true)
	}
	raw, err := identity.BearerToken(c.headers["authorization"])
	if err != nil {
		reason, _ := identityReason(err)
		return s.unauthorized(c, reason, reason != ReasonTokenMissing)
	}
	id, err := s.verify.Verify(ctx, raw)
	if err != nil {
		reason, status := identityReason(err)
		if status != http.StatusUnauthorized {
			return deny(status, reason, rpcCode(status))
		}
		return s.unauthorized(c, reason, true)
	}
	c.caller, c.raw = id, raw
	return nil
}

// hasQueryToken reports whether a query string carries an OAuth token, which
// must never travel in a URL (RFC 6750 section 5.3, MCP authorization).
func hasQueryToken(q string) bool {
	for part := range strings.SplitSeq(q, "&") {
		k, _, _ := strings.Cut(part, "=")
		if k == "access_token" || k == "token" {
			return true
		}
	}
	return false
}

// unauthorized is a 401 with the RFC 9728 challenge.
func (s *Server) unauthorized(c *call, reason string, invalid bool) *verdict {
	v := deny(http.StatusUnauthorized, reason, codeUnauthorized)
	v.challenge = `Bearer resource_metadata="` + s.metadataURL(c.http) + `"`
	if invalid {
		v.challenge += `, error="invalid_token"`
	}
	return v
}

// metadataURL is the protected-resource metadata URL of the resource the
// request is for: the configured one, else the path-suffixed well-known URL
// of RFC 9728 section 3.1.
func (s *Server) metadataURL(h *authv3.AttributeContext_HttpRequest) string {
	if s.cfg.ResourceMetadataURL != "" {
		return s.cfg.ResourceMetadataURL
	}
	scheme := h.GetScheme()
	if scheme == "" {
		scheme = "http"
	}
	path, _, _ := strings.Cut(h.GetPath(), "?")
	if path == "/" {
		path = ""
	}
	return scheme + "://" + h.GetHost() + "/.well-known/oauth-protected-resource" + path
}

func parseDenial(err error) *verdict {
	code := mcpparse.Code(err)
	reason := ReasonInvalidRequest
	if code == mcpparse.CodeParseError {
		reason = ReasonParseError
	}
	return deny(http.StatusBadRequest, reason, code)
}

// checkMirrorHeaders enforces MCP 2026-07-28: Mcp-Method and Mcp-Name, when
// sent, must agree with the body.
func checkMirrorHeaders(h map[string]string, m *mcpparse.Message) *verdict {
	if v, ok := h["mcp-method"]; ok && v != m.Method {
		return mismatch(m)
	}
	if v, ok := h["mcp-name"]; ok {
		name := m.Name
		if name == "" {
			name = m.URI
		}
		if v != name {
			return mismatch(m)
		}
	}
	return nil
}

func mismatch(m *mcpparse.Message) *verdict {
	v := deny(http.StatusBadRequest, ReasonHeaderMismatch, mcpparse.CodeHeaderMismatch)
	v.id = m.ID
	return v
}

// targeted reports whether a method names one tool, prompt or resource of one
// server, and so is exchanged for and decided by policy.
func targeted(method string) bool {
	switch method {
	case "tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe":
		return true
	}
	return false
}

// target finds the server a message is for and the name it has there.
// ok is false when a targeted message names no registered server.
func (s *Server) target(snap *registry.Snapshot, c *call, m *mcpparse.Message) (srv *registry.Server, name string, ok bool) {
	if m.Kind != mcpparse.KindRequest || !targeted(m.Method) {
		return nil, "", true
	}
	perRoute, attached := s.routeServer(snap, c)
	if attached {
		if perRoute == nil {
			return nil, "", false
		}
		return perRoute, m.Name, true
	}
	if m.URI != "" {
		srv, found := snap.ResolveURI(m.URI)
		// A resource no registration claims is routed by the router, which
		// knows it from the lists; it cannot get a token of its own.
		return srv, "", found || s.xchg == nil
	}
	srv, name, found := snap.Resolve(m.Name)
	return srv, name, found
}

// routeServer is the server of a per-route attachment: named by the context
// extension, or registered for the request's host. attached is false when
// authz sits in front of the router.
func (s *Server) routeServer(snap *registry.Snapshot, c *call) (srv *registry.Server, attached bool) {
	if name, ok := c.ext[ContextExtensionServer]; ok {
		srv, _ := snap.Server(name)
		return srv, true
	}
	if srv, ok := snap.ByHost(c.http.GetHost()); ok {
		return srv, true
	}
	return nil, false
}

// decide answers one message.
func (s *Server) decide(ctx context.Context, c *call, m *mcpparse.Message) *verdict {
	snap := s.reg.Load()
	srv, name, ok := s.target(snap, c, m)
	if !ok {
		return forbidden(m, ReasonToolDenied, "no such server").about(m, nil, m.Name)
	}
	var tok *exchange.Token
	if srv != nil && s.xchg != nil && c.caller != nil {
		t, err := s.xchg.Exchange(ctx, exchange.Request{
			SubjectToken:    c.raw,
			SubjectExpiry:   c.caller.Expiry,
			SubjectAudience: c.caller.Audience,
			Audience:        srv.Audience,
			Scopes:          srv.Scopes,
		})
		if err != nil {
			reason, status := exchangeReason(err)
			v := deny(status, reason, rpcCode(status))
			v.id = m.ID
			return v.about(m, srv, name)
		}
		tok = t
	}
	if m.Kind == mcpparse.KindRequest && targeted(m.Method) {
		d := s.policy.Decide(ctx, s.input(c, m, srv, name, tok))
		if !d.Allow {
			reason, detail := d.Reason, d.Policy
			if reason == policy.ReasonNoPolicy {
				// Not "no policy for this server": that would tell a
				// caller which servers exist.
				reason, detail = ReasonToolDenied, "no policy applies"
			}
			return forbidden(m, reason, detail).about(m, srv, name)
		}
	}
	return s.allowMessage(c, m, srv, name, tok)
}

// about records, for the decision log, what a denied message was for.
func (v *verdict) about(m *mcpparse.Message, srv *registry.Server, name string) *verdict {
	v.method, v.name = m.Method, name
	if name == "" {
		v.name = m.URI
	}
	if srv != nil {
		v.server = srv.Name
	}
	return v
}

func forbidden(m *mcpparse.Message, reason, detail string) *verdict {
	if reason == "" {
		reason = ReasonToolDenied
	}
	v := deny(http.StatusForbidden, reason, codeForbidden)
	v.id, v.detail = m.ID, detail
	return v
}

// input is the policy input document of one message.
func (s *Server) input(c *call, m *mcpparse.Message, srv *registry.Server, name string, tok *exchange.Token) *policy.Input {
	in := &policy.Input{
		Request: policy.Request{
			Method:  c.http.GetMethod(),
			Path:    c.http.GetPath(),
			Host:    c.http.GetHost(),
			Headers: c.headers,
		},
		MCP: policy.MCP{Method: m.Method, Arguments: m.Arguments},
	}
	if srv != nil {
		in.MCP.Server = srv.Name
	}
	switch m.Method {
	case "tools/call":
		in.MCP.Tool = &policy.Tool{Name: name, Target: in.MCP.Server}
	case "prompts/get":
		in.MCP.Prompt = &policy.Prompt{Name: name}
	default:
		if m.URI != "" {
			in.MCP.Resource = &policy.Resource{URI: m.URI}
		}
	}
	if c.caller != nil {
		in.Identity = c.caller.Claims
	}
	if tok != nil {
		in.Token = tok.Claims
	}
	return in
}

// allowMessage is the OK answer for one message: the x-mcp-* headers, the
// exchanged token and the assertion for the router.
func (s *Server) allowMessage(c *call, m *mcpparse.Message, srv *registry.Server, name string, tok *exchange.Token) *verdict {
	v := s.allow(c, tok)
	v.method = m.Method
	if m.Method != "" {
		v.setHeader(HeaderMethod, m.Method)
	}
	if srv != nil {
		v.server = srv.Name
		v.setHeader(HeaderServerName, srv.Name)
	}
	switch {
	case m.Method == "tools/call":
		v.name = name
		v.setHeader(HeaderToolName, name)
	case m.Method == "prompts/get":
		v.name = name
		v.setHeader(HeaderPromptName, name)
	case m.URI != "":
		v.name = m.URI
		v.setHeader(HeaderResourceURI, m.URI)
	}
	return v
}

// allow is an OK answer that carries the caller's identity on: the exchanged
// token when there is one (else the client's Authorization header stays).
func (s *Server) allow(c *call, tok *exchange.Token) *verdict {
	v := &verdict{reason: ReasonAllowed}
	if c.caller != nil {
		v.issuer, v.subject, v.expiry = c.caller.Issuer, c.caller.Subject, c.caller.Expiry
	}
	if tok != nil && tok.Exchanged {
		v.credential = assertion.CredentialHash("Bearer " + tok.AccessToken)
		v.setHeader("authorization", "Bearer "+tok.AccessToken)
	}
	return v
}

func (v *verdict) setHeader(k, val string) {
	v.set = append(v.set, &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: val},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	})
}

// finish adds the router assertion and lists the client-sent x-mcp-* headers
// that the answer does not set itself. Envoy applies an OK answer's headers
// before its headers_to_remove, so a header authz sets must not be removed.
func (s *Server) finish(c *call, v *verdict) {
	if s.signer != nil {
		a, err := s.signer.Sign(assertion.Claims{
			Method:       v.method,
			Server:       v.server,
			Tool:         v.name,
			Issuer:       v.issuer,
			Subject:      v.subject,
			CallerExpiry: v.expiry,
			Credential:   v.credential,
			BodyHash:     assertion.BodyHash(c.body),
			IssuedAt:     s.now(),
		})
		if err != nil {
			*v = *deny(http.StatusInternalServerError, ReasonInternal, -32603)
			return
		}
		v.setHeader(assertion.Header, a)
	}
	for k := range c.headers {
		if !strings.HasPrefix(k, "x-mcp-") || v.sets(k) {
			continue
		}
		v.remove = append(v.remove, k)
	}
}

func (v *verdict) sets(k string) bool {
	for _, h := range v.set {
		if h.GetHeader().GetKey() == k {
			return true
		}
	}
	return false
}

// headerMap returns the request headers keyed by lower-case name. Envoy sends
// them in headers (repeated headers joined with ",") or, with
// encode_raw_headers, in header_map, where a repeated header is joined here
// the same way.
func headerMap(h *authv3.AttributeContext_HttpRequest) map[string]string {
	if hm := h.GetHeaderMap(); len(h.GetHeaders()) == 0 && hm != nil {
		m := make(map[string]string, len(hm.GetHeaders()))
		for _, kv := range hm.GetHeaders() {
			k := strings.ToLower(kv.GetKey())
			val := kv.GetValue()
			if val == "" {
				val = string(kv.GetRawValue())
			}
			if prev, ok := m[k]; ok {
				val = prev + "," + val
			}
			m[k] = val
		}
		return m
	}
	return h.GetHeaders()
}
