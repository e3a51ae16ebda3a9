package router

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
)

// TestRouteRefusals: a server's own route that rate-limits (429, a
// Kuadrant RateLimitPolicy) or refuses (403) a call is passed on as such,
// with its Retry-After, not as a failed server; and it leaves the server
// in the caller's lists, where a failure would not.
func TestRouteRefusals(t *testing.T) {
	up, _ := generationServer(t, "modern")
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Mcp-Name") {
		case "limited":
			w.Header().Set("Retry-After", "7")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		case "refused":
			http.Error(w, "no", http.StatusForbidden)
		default:
			proxy.ServeHTTP(w, r)
		}
	})
	front := httptest.NewServer(route)
	t.Cleanup(front.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: front.URL})
	for _, tc := range []struct {
		tool       string
		status     int
		code       int
		retryAfter string
	}{
		{"limited", http.StatusTooManyRequests, forward.CodeRateLimited, "7"},
		{"refused", http.StatusForbidden, forward.CodeForbidden, ""},
		{"who", http.StatusOK, 0, ""},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice",
				statelessBody("tools/call", "2026-07-28", `"name":"up_`+tc.tool+`","arguments":{"text":"x"}`),
				statelessHeaders2026("tools/call", "up_"+tc.tool, "2026-07-28"))
			retry := r.header.Get("Retry-After")
			a := decodeAnswer(t, r)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.code != 0 && (a.Error == nil || a.Error.Code != tc.code) {
				t.Errorf("answer %s, want error %d", r.body, tc.code)
			}
			if retry != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", retry, tc.retryAfter)
			}
		})
	}
	if got := e.router.UpstreamFailures.Load(); got != 0 {
		t.Errorf("%d upstream failures counted for the route's refusals", got)
	}
}
