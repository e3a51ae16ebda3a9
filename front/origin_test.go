package front

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// TestOriginAndHost: the front refuses an Origin present and not allowed,
// and a Host outside allowedHosts, with 403 and a JSON-RPC error, before
// authz is asked or anything is forwarded.
func TestOriginAndHost(t *testing.T) {
	var checks atomic.Int64
	ok := allow(nil)
	_, client := startAuthz(t, func(ctx context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		checks.Add(1)
		return ok(ctx, r)
	})
	up := startUpstream(t, nil)
	defaults := startFront(t, Config{}, client, up)
	listed := startFront(t, Config{AllowedOrigins: []string{"https://app.example.com", "http://[::1]:3000"}, AllowedHosts: []string{"127.0.0.1", "[::1]:8080"}}, client, up)
	tests := []struct {
		name   string
		url    string
		origin string
		host   string
		status int
	}{
		{name: "defaults: no Origin", url: defaults.URL, status: 200},
		{name: "defaults: no Origin, any Host", url: defaults.URL, host: "evil.example.com", status: 200},
		{name: "defaults: loopback Origin", url: defaults.URL, origin: "http://localhost:6274", status: 200},
		{name: "defaults: IPv6 loopback Origin", url: defaults.URL, origin: "http://[::1]:6274", status: 200},
		{name: "defaults: rebinding", url: defaults.URL, origin: "http://evil.example.com", host: "evil.example.com", status: 403},
		{name: "listed Origin", url: listed.URL, origin: "https://app.example.com", status: 200},
		{name: "listed IPv6 Origin", url: listed.URL, origin: "http://[::1]:3000", status: 200},
		{name: "listed IPv6 Origin, other port", url: listed.URL, origin: "http://[::1]:3001", status: 403},
		{name: "unlisted Origin", url: listed.URL, origin: "https://evil.example.com", status: 403},
		{name: "listed IPv6 Host", url: listed.URL, host: "[::1]:8080", status: 200},
		{name: "unlisted Host", url: listed.URL, host: "evil.example.com", status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, forwarded := checks.Load(), len(up.seen())
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			if err != nil {
				t.Fatal(err)
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == 403 {
				if !strings.Contains(string(body), `"jsonrpc":"2.0"`) || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("refusal %q (%s): want a JSON-RPC error", body, resp.Header.Get("Content-Type"))
				}
				if checks.Load() != before || len(up.seen()) != forwarded {
					t.Fatal("a refused request was checked or forwarded")
				}
			}
		})
	}
}
