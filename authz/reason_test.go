package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
)

// TestDenialNamesItsKind: a refused prompts/get is prompt_denied and a
// refused resources/read, subscribe or unsubscribe resource_denied, not
// tool_denied; within each kind an unknown target, a forbidden one, one no
// policy names, one whose policy fails and one the token service will not
// exchange for get byte for byte the same answer, and the decision log
// (the metric label) still says which.
func TestDenialNamesItsKind(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	// Only mcp-test/everything has a policy: echo, the prompt simple and
	// test://ok are allowed; "boom" makes the policy fail.
	roles := policy.Policy{Name: "roles", Servers: []string{"mcp-test/everything"}, CEL: `
mcp.method == "tools/call" ? (mcp.tool.name == "boom" ? token.nope == 1 : mcp.tool.name == "echo") :
mcp.method == "prompts/get" ? (mcp.prompt.name == "boom" ? token.nope == 1 : mcp.prompt.name == "simple") :
(mcp.resource.uri == "test://boom" ? token.nope == 1 : mcp.resource.uri == "test://ok")`}
	s := newTokenServer(t, true, &recordingExchanger{}, Deps{Logger: log}, roles)
	refused := newTokenServer(t, true, refusingExchanger{allowed: "mcp-test/everything"}, Deps{Logger: log}, roles)
	const bearer = "Bearer " + callerToken

	tool := func(name string) string { return toolCall(name) }
	prompt := func(name string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"` + name + `"}}`
	}
	resource := func(method string) func(string) string {
		return func(uri string) string {
			return `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{"uri":"` + uri + `"}}`
		}
	}
	type target struct {
		name, cause string
		s           *Server
		arg         string // tool or prompt name, resource URI
	}
	tests := []struct {
		name    string
		reason  string
		body    func(string) string
		allowed string
		targets []target
	}{
		{
			name: "tools/call", reason: ReasonToolDenied, body: tool, allowed: "ev_echo",
			targets: []target{
				{"unknown", ReasonToolDenied, s, "nope_echo"},
				{"forbidden", ReasonToolDenied, s, "ev_other"},
				{"no policy", ReasonToolDenied, s, "tool_convert"},
				{"policy error", policy.ReasonPolicyError, s, "ev_boom"},
				{"exchange refused", ReasonExchangeDenied, refused, "kube_pods_list"},
			},
		},
		{
			name: "prompts/get", reason: ReasonPromptDenied, body: prompt, allowed: "ev_simple",
			targets: []target{
				{"unknown", ReasonPromptDenied, s, "nope_simple"},
				{"forbidden", ReasonPromptDenied, s, "ev_other"},
				{"no policy", ReasonPromptDenied, s, "tool_simple"},
				{"policy error", policy.ReasonPolicyError, s, "ev_boom"},
				{"exchange refused", ReasonExchangeDenied, refused, "kube_simple"},
			},
		},
	}
	for _, m := range []string{"resources/read", "resources/subscribe", "resources/unsubscribe"} {
		tests = append(tests, struct {
			name    string
			reason  string
			body    func(string) string
			allowed string
			targets []target
		}{
			name: m, reason: ReasonResourceDenied, body: resource(m), allowed: "test://ok",
			targets: []target{
				{"unknown", ReasonResourceDenied, s, "nope://ok"},
				{"forbidden", ReasonResourceDenied, s, "test://other"},
				{"policy error", policy.ReasonPolicyError, s, "test://boom"},
			},
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := s.Decide(t.Context(), post(tt.body(tt.allowed), header("authorization", bearer))); !d.Allow {
				t.Fatalf("%s %s: denied %s, want allowed", tt.name, tt.allowed, d.Reason)
			}
			want := `{"jsonrpc":"2.0","id":1,"error":{"code":-32003,"message":"forbidden","data":{"reason":"` + tt.reason + `"}}}`
			for _, tg := range tt.targets {
				t.Run(tg.name, func(t *testing.T) {
					logs.Reset()
					d := tg.s.Decide(t.Context(), post(tt.body(tg.arg), header("authorization", bearer)))
					if d.Status != http.StatusForbidden || string(d.Body()) != want {
						t.Errorf("%s: %d %s, want 403 %s", tg.arg, d.Status, d.Body(), want)
					}
					var line map[string]any
					if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
						t.Fatalf("decision log %q: %v", logs.String(), err)
					}
					if line["reason"] != tg.cause {
						t.Errorf("decision log reason = %v, want %s: %s", line["reason"], tg.cause, &logs)
					}
				})
			}
		})
	}
}

// failingVerifier refuses every token with err.
type failingVerifier struct{ err error }

func (v failingVerifier) Verify(context.Context, string) (*identity.Identity, error) {
	return nil, v.err
}

// TestUnauthenticatedCarriesID: a request refused because of its caller
// (401, or 503 when the identity provider is down) is answered with the
// JSON-RPC id of its body when the body is one readable message, so that a
// client can match the answer to its request; null otherwise.
func TestUnauthenticatedCarriesID(t *testing.T) {
	noToken := newTokenServer(t, true, nil, Deps{})
	expired := newTokenServer(t, false, nil, Deps{Verifier: failingVerifier{identity.ErrExpired}})
	down := newTokenServer(t, false, nil, Deps{Verifier: failingVerifier{identity.ErrUnavailable}})
	list := func(id string) string { return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/list"}` }
	tests := []struct {
		name   string
		s      *Server
		req    *Request
		status int
		id     string
	}{
		{name: "number", s: noToken, req: post(list("7")), status: 401, id: "7"},
		{name: "string", s: noToken, req: post(list(`"a-b"`)), status: 401, id: `"a-b"`},
		{name: "expired token", s: expired, req: post(list("8"), header("authorization", "Bearer x")), status: 401, id: "8"},
		{name: "token in the query", s: noToken, req: post(list("9"), func(r *Request) { r.Path = "/mcp?access_token=x" }), status: 401, id: "9"},
		{name: "identity provider down", s: down, req: post(list("10"), header("authorization", "Bearer x")), status: 503, id: "10"},
		{name: "notification", s: noToken, req: post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), status: 401, id: "null"},
		{name: "not JSON", s: noToken, req: post(`{"jsonrpc":"2.0","id":11,`), status: 401, id: "null"},
		{name: "not JSON-RPC", s: noToken, req: post(`{"id":12}`), status: 401, id: "null"},
		{name: "batch", s: noToken, req: post(`[` + list("13") + `]`), status: 401, id: "null"},
		{name: "GET", s: noToken, req: &Request{Method: "GET", Path: "/mcp", Host: "mcp.example.com"}, status: 401, id: "null"},
		// Cut on the way: refused as truncated before anything else.
		{name: "truncated", s: noToken, req: post(list("14"), header("content-length", "999")), status: 413, id: "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.s.Decide(t.Context(), tt.req)
			if d.Status != tt.status {
				t.Errorf("status %d (%s), want %d", d.Status, d.Reason, tt.status)
			}
			if want := `{"jsonrpc":"2.0","id":` + tt.id + `,`; !strings.HasPrefix(string(d.Body()), want) {
				t.Errorf("body %s, want it to start %s", d.Body(), want)
			}
		})
	}
}
