package authz

import (
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/policy"
)

// TestDecideCompletionAndSubscriptions: completion/complete and resources
// subscriptions are decided like the get or read they lead to, by the same
// policies, and carry the unprefixed prompt or the URI on.
func TestDecideCompletionAndSubscriptions(t *testing.T) {
	prompts := policy.Policy{Name: "prompts", CEL: `has(mcp.prompt) ? mcp.prompt.name == "greet" : (has(mcp.resource) ? mcp.resource.uri.startsWith("test://ok") : false)`}
	s := newTestServer(t, Config{}, prompts)
	complete := func(ref string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":` + ref + `,"argument":{"name":"a","value":"x"}}}`
	}
	sub := func(method, uri string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{"uri":"` + uri + `"}}`
	}
	tests := []struct {
		name     string
		body     string
		allow    bool
		server   string
		header   Header // the x-mcp-* header naming the target, when allowed
		wantCode int
	}{
		{name: "completion of an allowed prompt", body: complete(`{"type":"ref/prompt","name":"ev_greet"}`), allow: true, server: "mcp-test/everything", header: Header{HeaderPromptName, "greet"}},
		{name: "completion of a denied prompt", body: complete(`{"type":"ref/prompt","name":"ev_secret"}`), wantCode: 403},
		{name: "completion of an unknown server's prompt: same denial", body: complete(`{"type":"ref/prompt","name":"nope_greet"}`), wantCode: 403},
		{name: "completion of an allowed resource template", body: complete(`{"type":"ref/resource","uri":"test://ok/{id}"}`), allow: true, server: "mcp-test/everything", header: Header{HeaderResourceURI, "test://ok/{id}"}},
		{name: "completion of a denied resource template", body: complete(`{"type":"ref/resource","uri":"test://no/{id}"}`), wantCode: 403},
		{name: "completion with a bad ref", body: complete(`{"type":"ref/tool","name":"ev_greet"}`), wantCode: 400},
		{name: "subscribe allowed", body: sub("resources/subscribe", "test://ok/1"), allow: true, server: "mcp-test/everything", header: Header{HeaderResourceURI, "test://ok/1"}},
		{name: "subscribe denied", body: sub("resources/subscribe", "test://no/1"), wantCode: 403},
		{name: "unsubscribe denied", body: sub("resources/unsubscribe", "test://no/1"), wantCode: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Decide(t.Context(), post(tt.body))
			if d.Allow != tt.allow {
				t.Fatalf("allow %v (%s), want %v", d.Allow, d.Reason, tt.allow)
			}
			if !tt.allow {
				if d.Status != tt.wantCode {
					t.Fatalf("status %d, want %d", d.Status, tt.wantCode)
				}
				return
			}
			got := map[string]string{}
			for _, h := range d.Headers {
				got[h.Key] = h.Value
			}
			if got[HeaderServerName] != tt.server || got[tt.header.Key] != tt.header.Value {
				t.Fatalf("headers %v, want server %q and %v", got, tt.server, tt.header)
			}
		})
	}
}

// TestDecideMirrorHeaders: the 2026-07-28 headers are required and checked
// after decoding, the protocol version agrees with _meta, and an
// Mcp-Param header naming an argument must equal it.
func TestDecideMirrorHeaders(t *testing.T) {
	s := newTestServer(t, Config{})
	const v26 = "2026-07-28"
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ev_echo","arguments":{"region":"us-west","count":3}}}`
	call26 := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ev_echo","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	tests := []struct {
		name    string
		body    string
		headers map[string]string
		status  int // 0: allowed
		code    int
	}{
		{name: "2025 without headers", body: call, headers: map[string]string{"mcp-protocol-version": "2025-11-25"}},
		{name: "2026 with both", body: call, headers: map[string]string{"mcp-protocol-version": v26, "mcp-method": "tools/call", "mcp-name": "ev_echo"}},
		{name: "2026 with the name in base64", body: call, headers: map[string]string{"mcp-protocol-version": v26, "mcp-method": "tools/call", "mcp-name": "=?base64?ZXZfZWNobw==?="}},
		{name: "2026 without Mcp-Method", body: call, headers: map[string]string{"mcp-protocol-version": v26, "mcp-name": "ev_echo"}, status: 400, code: -32020},
		{name: "2026 without Mcp-Name", body: call, headers: map[string]string{"mcp-protocol-version": v26, "mcp-method": "tools/call"}, status: 400, code: -32020},
		{name: "2026 by _meta without headers", body: call26, status: 400, code: -32020},
		{name: "version header disagrees with _meta", body: call26, headers: map[string]string{"mcp-protocol-version": "2025-11-25", "mcp-method": "tools/call", "mcp-name": "ev_echo"}, status: 400, code: -32020},
		{name: "Mcp-Param equal", body: call, headers: map[string]string{"mcp-param-region": "us-west", "mcp-param-count": "3"}},
		{name: "Mcp-Param differs", body: call, headers: map[string]string{"mcp-param-region": "eu-central"}, status: 400, code: -32020},
		{name: "Mcp-Param integer differs", body: call, headers: map[string]string{"mcp-param-count": "4"}, status: 400, code: -32020},
		{name: "Mcp-Param naming no argument: left to the router", body: call, headers: map[string]string{"mcp-param-zone": "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Decide(t.Context(), post(tt.body, func(r *Request) {
				for k, v := range tt.headers {
					r.Headers[k] = v
				}
			}))
			if tt.status == 0 {
				if !d.Allow {
					t.Fatalf("denied %d %s", d.Status, d.Reason)
				}
				return
			}
			if d.Allow || d.Status != tt.status || d.Code != tt.code || string(d.ID) != "1" {
				t.Fatalf("got allow %v status %d code %d id %s, want %d %d", d.Allow, d.Status, d.Code, d.ID, tt.status, tt.code)
			}
		})
	}
}

// TestDecideOrigin: a request whose Origin is present and not allowed, or
// whose Host is outside allowedHosts, is denied 403 before anything else;
// a request without an Origin passes.
func TestDecideOrigin(t *testing.T) {
	defaults := newTestServer(t, Config{})
	listed := newTestServer(t, Config{AllowedOrigins: []string{"https://app.example.com", "http://[::1]:*"}, AllowedHosts: []string{"mcp.example.com", "[::1]:8080"}})
	list := `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`
	tests := []struct {
		name   string
		s      *Server
		origin string // "-" for none
		host   string
		method string
		reason string // "" when allowed
	}{
		{name: "defaults: no Origin", s: defaults, origin: "-", host: "evil.example.com"},
		{name: "defaults: loopback Origin", s: defaults, origin: "http://localhost:6274", host: "127.0.0.1:8080"},
		{name: "defaults: IPv6 loopback Origin", s: defaults, origin: "http://[::1]:6274", host: "[::1]:8080"},
		{name: "defaults: rebinding", s: defaults, origin: "http://evil.example.com", host: "evil.example.com", reason: ReasonOriginDenied},
		{name: "defaults: GET stream too", s: defaults, origin: "http://evil.example.com", host: "mcp.example.com", method: "GET", reason: ReasonOriginDenied},
		{name: "listed Origin", s: listed, origin: "https://app.example.com", host: "mcp.example.com"},
		{name: "listed IPv6 Origin any port", s: listed, origin: "http://[::1]:9999", host: "[::1]:8080"},
		{name: "unlisted Origin", s: listed, origin: "https://other.example.com", host: "mcp.example.com", reason: ReasonOriginDenied},
		{name: "unlisted Host", s: listed, origin: "-", host: "evil.example.com", reason: ReasonHostDenied},
		{name: "IPv6 Host other port", s: listed, origin: "-", host: "[::1]:9090", reason: ReasonHostDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(list, func(r *Request) {
				r.Host = tt.host
				if tt.origin != "-" {
					r.Headers["origin"] = tt.origin
				}
				if tt.method != "" {
					r.Method, r.Body = tt.method, nil
					delete(r.Headers, "content-length")
				}
			})
			d := tt.s.Decide(t.Context(), r)
			if tt.reason == "" {
				if !d.Allow {
					t.Fatalf("denied %d %s", d.Status, d.Reason)
				}
				return
			}
			if d.Allow || d.Status != 403 || d.Reason != tt.reason || d.Code != codeForbidden {
				t.Fatalf("got allow %v %d %s %d, want 403 %s", d.Allow, d.Status, d.Reason, d.Code, tt.reason)
			}
		})
	}
	if err := (Config{AllowedOrigins: []string{"app.example.com"}}).Validate(); err == nil || !strings.Contains(err.Error(), "allowedOrigins[0]") {
		t.Fatalf("Validate with a bad origin: %v, want an error at allowedOrigins[0]", err)
	}
}
