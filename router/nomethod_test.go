package router

import (
	"net/http"
	"testing"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
)

// TestUnknownMethod: a method the router does not serve is -32601 in both
// generations, over HTTP 404 for a stateless request (streamable HTTP,
// 2026-07-28: "MUST respond with 404 Not Found and a JSON-RPC error with
// code -32601") and 200 in a session (2025-11-25, where the HTTP status of
// a JSON-RPC error is not specified), and no server is asked.
func TestUnknownMethod(t *testing.T) {
	up, log := generationServer(t, "modern")
	e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	for _, tc := range []struct {
		name   string
		sid    string
		body   string
		mod    func(*http.Request)
		status int
	}{
		{"stateless", "", statelessBody("nosuch/method", "2026-07-28", ""), statelessHeaders2026("nosuch/method", "", "2026-07-28"), http.StatusNotFound},
		{"stateless, a 2025 method name", "", statelessBody("sampling/createMessage", "2026-07-28", ""), statelessHeaders2026("sampling/createMessage", "", "2026-07-28"), http.StatusNotFound},
		{"session", sid, `{"jsonrpc":"2.0","id":7,"method":"nosuch/method","params":{}}`, nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, e.front.URL, e.key, http.MethodPost, tc.sid, "alice", tc.body, tc.mod)
			if r.status != tc.status {
				t.Errorf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if a := decodeAnswer(t, r); a.Error == nil || a.Error.Code != forward.CodeNoMethod {
				t.Errorf("want error -32601: %s", r.body)
			}
		})
	}
	if log.saw("nosuch/method") || log.saw("sampling/createMessage") {
		t.Error("a server was asked a method the router does not serve")
	}
}
