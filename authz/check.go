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
//
// Which token travels on is the rule of no token passthrough:
//   - Attached to a server's route, every allowed request (any JSON-RPC
//     method, notification or response, GET and DELETE) carries a token
//     exchanged for that server (audience = the server), or no
//     Authorization at all: with exchange or identity off, the client's
//     authorization header is in headers_to_remove. A route naming a server
//     the registry does not hold is denied like an unknown tool.
//   - In front of the router (not attached), a request that targets one
//     server's tool, prompt or resource carries the token exchanged for it;
//     any other request keeps the caller's token, which goes to the router
//     only: the router is ours, and asks UpstreamAuthorization for the token
//     of each call it makes upstream.
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
	status    int    // HTTP status of a denial; 0 allows
	reason    string // the reason code the client sees
	cause     string // log and metric only: the reason code, when it is not reason
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
	// profile, target and steps are the exchange that made (or failed to
	// make) the upstream token, for the decision log.
	profile, target string
	steps           []exchange.StepInfo
}

// exchanged notes, for the decision log, the exchange that made tok.
func (v *verdict) exchanged(tok *exchange.Token) {
	if tok != nil {
		v.profile, v.target, v.steps = tok.Profile, tok.Target, tok.Steps
	}
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
	snap    *registry.Snapshot
	// route is the server of a per-route attachment (attached true); nil
	// when the route names no registered server.
	route    *registry.Server
	attached bool
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
	c.snap = s.reg.Load()
	c.route, c.attached = routeServer(c.snap, c)
	switch h.GetMethod() {
	case http.MethodPost:
	case http.MethodGet, http.MethodDelete:
		// The SSE stream and the end of a session carry no JSON-RPC message:
		// the caller is authenticated, the router or the server checks the
		// session. Attached to a route, it goes to the server itself.
		if c.attached && c.route == nil {
			return deny(http.StatusForbidden, ReasonToolDenied, codeForbidden).noServer()
		}
		tok, v := s.upstreamToken(ctx, c, c.route, nil)
		if v != nil {
			return v
		}
		return s.allow(c, tok)
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
	if _, q, ok := strings.Cut(c.http.GetPath(), "?"); ok && identity.TokenInQuery(q) {
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

// unauthorized is a 401 with the RFC 9728 challenge.
func (s *Server) unauthorized(c *call, reason string, invalid bool) *verdict {
	v := deny(http.StatusUnauthorized, reason, codeUnauthorized)
	v.challenge = `Bearer resource_metadata="` + s.metadataURL(c.http) + `"`
	if scope := scopeParam(s.cfg.Scopes); scope != "" {
		v.challenge += `, scope="` + scope + `"`
	}
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
// ok is false when a targeted message names no registered server, or when
// the route it came on names none.
func (s *Server) target(c *call, m *mcpparse.Message) (srv *registry.Server, name string, ok bool) {
	if c.attached && c.route == nil {
		return nil, "", false
	}
	if m.Kind != mcpparse.KindRequest || !targeted(m.Method) {
		return nil, "", true
	}
	if c.attached {
		return c.route, m.Name, true
	}
	snap := c.snap
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
func routeServer(snap *registry.Snapshot, c *call) (srv *registry.Server, attached bool) {
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
	srv, name, ok := s.target(c, m)
	if !ok {
		return forbidden(m, ReasonToolDenied, "no such server").about(m, nil, m.Name)
	}
	// The token goes to the server the request reaches: the route's when
	// attached, whatever the message, else the targeted one.
	upstream := srv
	if c.attached {
		upstream = c.route
	}
	tok, v := s.upstreamToken(ctx, c, upstream, m)
	if v != nil {
		v.id = m.ID
		return v.about(m, upstream, name)
	}
	if m.Kind == mcpparse.KindRequest && targeted(m.Method) {
		d := s.policy.Decide(ctx, s.input(c, m, srv, name, tok))
		if !d.Allow {
			reason, detail := d.Reason, d.Policy
			var cause string
			switch reason {
			case policy.ReasonNoPolicy:
				// Not "no policy for this server": that would tell a
				// caller which servers exist.
				reason, detail = ReasonToolDenied, "no policy applies"
			case policy.ReasonPolicyError:
				// Nor "policy_error": a policy that fails on a token
				// without roles for a server (resource_access[server])
				// would tell the caller that the server exists.
				reason, cause = ReasonToolDenied, policy.ReasonPolicyError
			}
			v := forbidden(m, reason, detail)
			v.cause = cause
			s.stepUp(v, c, d)
			v.exchanged(tok)
			return v.about(m, srv, name)
		}
	}
	return s.allowMessage(c, m, srv, name, tok)
}

// noServer notes, for the decision log, a route that names no registered
// server.
func (v *verdict) noServer() *verdict {
	v.detail = "route names no registered server"
	return v
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
		in.Exchange = exchangeInput(tok)
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

// allow is an OK answer that carries the caller's identity on, and the
// Authorization of ContextExtensionServer's rule: the token for the server
// when there is one (exchanged, or the caller's own only when its audience
// is that server alone: exchange's SkipWhenAudienceMatches); else, attached
// to a route, none; else (in front of the router) the client's header stays.
func (s *Server) allow(c *call, tok *exchange.Token) *verdict {
	v := &verdict{reason: ReasonAllowed}
	if c.caller != nil {
		v.issuer, v.subject, v.expiry = c.caller.Issuer, c.caller.Subject, c.caller.Expiry
	}
	switch {
	case tok != nil:
		v.exchanged(tok)
		v.credential = assertion.CredentialHash(tok.Authorization())
		v.setHeader("authorization", tok.Authorization())
	case c.attached:
		v.remove = append(v.remove, "authorization")
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
