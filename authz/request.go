package authz

import (
	"encoding/json"
	"time"

	"github.com/mcp-authz/mcp-authz/exchange"
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

// Request is one HTTP request as authz sees it: what Envoy's ext_authz
// filter, or the built-in front, sends of a client's request.
type Request struct {
	// Method is the HTTP method.
	Method string
	// Path is the request path with its query.
	Path string
	// Host is the request's host (:authority), with any :port.
	Host string
	// Scheme is http or https; "" means http.
	Scheme string
	// Headers are the request headers keyed by lower-case name, the values
	// of a repeated header joined with ",". Decide does not modify them.
	Headers map[string]string
	// Body is the request body as received; Decide does not modify it.
	Body []byte
	// BodyTruncated reports that the body was cut before it reached authz
	// (Envoy's x-envoy-auth-partial-body: true). Such a body is denied with
	// 413 and never parsed.
	BodyTruncated bool
	// ContextExtensions are the settings of the route the request came on
	// (Envoy's per-route check_settings.context_extensions). authz reads
	// ContextExtensionServer; a nil map means none.
	ContextExtensions map[string]string
}

// Header is a header to set on an allowed request, replacing any header of
// that name the client sent.
type Header struct {
	Key   string
	Value string
}

// Decision is the answer to one Request: allowed, with the headers to set
// and remove, or denied with an HTTP status and a JSON-RPC error (Body) that
// an MCP client understands.
type Decision struct {
	// Allow reports an allowed request.
	Allow bool
	// Status is the HTTP status of a denial; 0 when allowed.
	Status int
	// Reason is the reason code the client sees (the Reason… constants):
	// ReasonAllowed when allowed.
	Reason string
	// Code is the JSON-RPC error code of a denial.
	Code int
	// ID is the JSON-RPC id of the denied request exactly as sent (it shares
	// memory with Request.Body); nil when there is none to answer to.
	ID json.RawMessage
	// Challenge is the WWW-Authenticate value of a 401.
	Challenge string
	// Headers are the headers to set on an allowed request, in order: the
	// Authorization for the upstream, if any, then the x-mcp-* headers.
	Headers []Header
	// Remove lists the headers to remove from an allowed request after
	// Headers and Assertion are set (as Envoy does): every client-sent
	// x-mcp-* header the answer does not set, and the client's
	// authorization where ContextExtensionServer's rule says none goes on.
	Remove []string
	// Assertion is the signed assertion for the router, to be set as header
	// assertion.Header (x-mcp-authz) after Headers; "" when authz has no
	// signer.
	Assertion string

	cause  string // log and metric only: the reason code, when it is not Reason
	detail string // log only: why, beyond the reason

	// What the request was for and who sent it, for the decision log and
	// the assertion.
	issuer  string
	subject string
	client  string    // azp or client_id claim, for the audit trail
	expiry  time.Time // of the caller's token
	method  string
	server  string
	name    string
	// credential names the Authorization set for server (the router
	// forwards only that one), if any.
	credential string
	// profile, target and steps are the exchange that made (or failed to
	// make) the upstream token, for the decision log.
	profile, target string
	steps           []exchange.StepInfo
}

// exchanged notes, for the decision log, the exchange that made tok.
func (d *Decision) exchanged(tok *exchange.Token) {
	if tok != nil {
		d.profile, d.target, d.steps = tok.Profile, tok.Target, tok.Steps
	}
}

func deny(status int, reason string, code int) *Decision {
	return &Decision{Status: status, Reason: reason, Code: code}
}

func (d *Decision) setHeader(k, v string) {
	if d.Headers == nil {
		// authorization and three x-mcp-* headers at most: one allocation.
		d.Headers = make([]Header, 0, 4)
	}
	d.Headers = append(d.Headers, Header{Key: k, Value: v})
}

// sets reports whether the answer sets header k.
func (d *Decision) sets(k string) bool {
	for _, h := range d.Headers {
		if h.Key == k {
			return true
		}
	}
	return false
}
