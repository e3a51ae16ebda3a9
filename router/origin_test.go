package router

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/registry"
)

// TestOriginAndHost: a router reached directly refuses an Origin present and
// not allowed, and a Host outside allowedHosts, with 403 and a JSON-RPC
// error, before a session is opened.
func TestOriginAndHost(t *testing.T) {
	a := alphaServer(t)
	srv := registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL}
	defaults := newEnv(t, nil, srv)
	listed := newEnv(t, func(c *Config) {
		c.AllowedOrigins = []string{"https://app.example.com", "http://[::1]:*"}
		c.AllowedHosts = []string{"127.0.0.1", "mcp.example.com:8443", "[::1]:8081"}
	}, srv)
	tests := []struct {
		name   string
		e      *env
		origin string // "" for none
		host   string // "" for the test server's
		status int
	}{
		{name: "defaults: no Origin", e: defaults, status: 200},
		{name: "defaults: no Origin, any Host", e: defaults, host: "evil.example.com", status: 200},
		{name: "defaults: loopback Origin", e: defaults, origin: "http://127.0.0.1:6274", status: 200},
		{name: "defaults: localhost Origin", e: defaults, origin: "http://localhost:6274", status: 200},
		{name: "defaults: IPv6 loopback Origin", e: defaults, origin: "http://[::1]:6274", status: 200},
		{name: "defaults: rebinding", e: defaults, origin: "http://evil.example.com", host: "evil.example.com", status: 403},
		{name: "listed Origin", e: listed, origin: "https://app.example.com", status: 200},
		{name: "listed IPv6 Origin", e: listed, origin: "http://[::1]:3000", status: 200},
		{name: "unlisted Origin", e: listed, origin: "https://app.example.com:444", status: 403},
		{name: "loopback Origin not in the list", e: listed, origin: "http://localhost:6274", status: 403},
		{name: "listed Host with port", e: listed, host: "mcp.example.com:8443", status: 200},
		{name: "listed Host, other port", e: listed, host: "mcp.example.com:8444", status: 403},
		{name: "listed IPv6 Host", e: listed, host: "[::1]:8081", status: 200},
		{name: "unlisted Host", e: listed, host: "evil.example.com", status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.e.front.URL, tt.e.key, http.MethodPost, "", "alice", initBody, func(req *http.Request) {
				if tt.origin != "" {
					req.Header.Set("Origin", tt.origin)
				}
				if tt.host != "" {
					req.Host = tt.host
				}
			})
			if r.status != tt.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.status)
			}
			if tt.status == 403 && (!strings.Contains(r.body, `"jsonrpc":"2.0"`) || r.header.Get("Mcp-Session-Id") != "") {
				t.Fatalf("refusal %q with session %q: want a JSON-RPC error and no session", r.body, r.header.Get("Mcp-Session-Id"))
			}
		})
	}
	if err := (Config{AllowedHosts: []string{"::1"}}).Validate(); err == nil || !strings.Contains(err.Error(), "allowedHosts[0]") {
		t.Fatalf("Validate: %v, want an error at allowedHosts[0]", err)
	}
}
