package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
	"github.com/mcp-authz/mcp-authz/policy"
)

const (
	auditTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
	auditCaller  = "caller-secret-token-abc"
	auditMinted  = "minted-secret-token-xyz"
	auditArgText = "argument-value-never-logged"
)

// profileExchanger answers as exchange.Client does for a two-step profile:
// a token whose Steps name grants and endpoints; it refuses the audience
// refused.
type profileExchanger struct{ refused string }

func (x profileExchanger) Exchange(_ context.Context, r exchange.Request) (*exchange.Token, error) {
	if r.Audience == x.refused {
		return nil, &exchange.RetrieveError{StatusCode: 400, ErrorCode: "access_denied"}
	}
	return &exchange.Token{
		AccessToken: auditMinted, Exchanged: true, Claims: map[string]any{"aud": r.Audience},
		Profile: "federated", Target: r.Audience,
		Steps: []exchange.StepInfo{
			{Grant: exchange.GrantTokenExchange, Endpoint: "https://idp.a.example/token"},
			{Grant: exchange.GrantJWTBearer, Endpoint: "https://idp.b.example/token"},
		},
	}, nil
}

// auditedServer is a Server whose decisions go to an audit writer; the
// writer runs until the test ends.
func auditedServer(t *testing.T, c audit.Config, v Verifier) (*Server, *audit.Writer, *syncbuf.Buffer) {
	t.Helper()
	out := &syncbuf.Buffer{}
	w, err := audit.New(c, audit.Deps{Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	s := newTokenServer(t, false, profileExchanger{refused: "mcp-test/everything"}, Deps{Verifier: v, Audit: w},
		policy.Policy{Name: "p", Servers: []string{"*"}, CEL: `mcp.tool.name != "pods_delete"`})
	return s, w, out
}

// events waits until the output holds n events and returns them.
func events(t *testing.T, out *syncbuf.Buffer, n int) ([]map[string]any, []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b := out.Bytes()
		lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
		if len(b) > 0 && len(lines) >= n {
			var evs []map[string]any
			for _, l := range lines {
				var m map[string]any
				if err := json.Unmarshal(l, &m); err != nil {
					t.Fatalf("event %q: %v", l, err)
				}
				evs = append(evs, m)
			}
			return evs, b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events in 5s, want %d: %s", len(lines), n, b)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAuditDecisions(t *testing.T) {
	alice := &identity.Identity{Issuer: "https://idp.a.example", Subject: "alice", Expiry: time.Now().Add(time.Hour),
		Claims: map[string]any{"azp": "agent-1", "sub": "alice"}}
	withCaller := func(r *Request) {
		r.Headers["authorization"] = "Bearer " + auditCaller
		r.Headers["traceparent"] = "00-" + auditTrace + "-00f067aa0ba902b7-01"
	}
	call := func(name string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":{"ns":"` + auditArgText + `","all":true}}}`
	}
	tests := []struct {
		name     string
		verifier Verifier
		req      *Request
		want     map[string]any // fields of the one event
		args     bool           // argument_names with the switch on
	}{
		{
			name: "allow with exchange steps", verifier: fixedVerifier{alice},
			req: post(call("kube_pods_list"), withCaller),
			want: map[string]any{"decision": "allow", "reason": ReasonAllowed, "tool": "pods_list", "server": "mcp-test/kubernetes-mcp",
				"issuer": "https://idp.a.example", "subject": "alice", "client_id": "agent-1", "trace_id": auditTrace,
				"method": "tools/call", "profile": "federated", "target": "mcp-test/kubernetes-mcp"},
			args: true,
		},
		{
			name: "policy denial", verifier: fixedVerifier{alice},
			req: post(call("kube_pods_delete"), withCaller),
			want: map[string]any{"decision": "deny", "reason": ReasonToolDenied, "status": 403.0, "tool": "pods_delete",
				"subject": "alice", "client_id": "agent-1", "profile": "federated"},
			args: true,
		},
		{
			name: "exchange denial", verifier: fixedVerifier{alice},
			req: post(call("ev_echo"), withCaller),
			want: map[string]any{"decision": "deny", "reason": ReasonToolDenied, "cause": ReasonExchangeDenied, "status": 403.0,
				"server": "mcp-test/everything", "subject": "alice"},
			args: true,
		},
		{
			name: "unknown tool", verifier: fixedVerifier{alice},
			req:  post(call("nope_x"), withCaller),
			want: map[string]any{"decision": "deny", "reason": ReasonToolDenied, "status": 403.0, "subject": "alice"},
			args: true,
		},
		{
			name: "token missing", verifier: fixedVerifier{alice},
			req:  post(call("kube_pods_list")),
			want: map[string]any{"decision": "deny", "reason": ReasonTokenMissing, "status": 401.0},
		},
		{
			name: "token invalid", verifier: failingVerifier{identity.ErrExpired},
			req:  post(call("kube_pods_list"), withCaller),
			want: map[string]any{"decision": "deny", "reason": ReasonTokenExpired, "status": 401.0, "trace_id": auditTrace},
		},
		{
			name: "identity provider down", verifier: failingVerifier{identity.ErrUnavailable},
			req:  post(call("kube_pods_list"), withCaller),
			want: map[string]any{"decision": "deny", "reason": ReasonIdPUnavailable, "status": 503.0},
		},
		{
			name: "parse error", verifier: fixedVerifier{alice},
			req:  post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_x","arguments":{"ns":"`+auditArgText+`"}`, withCaller),
			want: map[string]any{"decision": "deny", "reason": ReasonParseError, "status": 400.0},
		},
		{
			name: "origin denied", verifier: fixedVerifier{alice},
			req:  post(call("kube_pods_list"), withCaller, header("origin", "https://evil.example")),
			want: map[string]any{"decision": "deny", "reason": ReasonOriginDenied, "status": 403.0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, names := range []bool{false, true} {
				s, _, out := auditedServer(t, audit.Config{ArgumentNames: names}, tt.verifier)
				d := s.Decide(t.Context(), tt.req)
				if d.Allow != (tt.want["decision"] == "allow") {
					t.Fatalf("decision %+v", d)
				}
				evs, raw := events(t, out, 1)
				if len(evs) != 1 {
					t.Fatalf("%d events, want 1: %s", len(evs), raw)
				}
				e := evs[0]
				if e["schema"] != audit.Schema || e["kind"] != audit.KindDecision || e["time"] == nil || e["latency_ms"] == nil {
					t.Errorf("event header: %v", e)
				}
				for k, v := range tt.want {
					if e[k] != v {
						t.Errorf("%s = %v, want %v (event %s)", k, e[k], v, raw)
					}
				}
				for _, secret := range []string{auditCaller, auditMinted, auditArgText, "Bearer"} {
					if bytes.Contains(raw, []byte(secret)) {
						t.Errorf("event holds %q: %s", secret, raw)
					}
				}
				args, hasArgs := e["argument_names"]
				if hasArgs != (names && tt.args) {
					t.Errorf("argumentNames %v: argument_names %v", names, args)
				}
				if hasArgs && !slices.Equal(toStrings(args), []string{"all", "ns"}) {
					t.Errorf("argument_names = %v, want [all ns]", args)
				}
			}
		})
	}
}

func TestAuditExchangeSteps(t *testing.T) {
	alice := &identity.Identity{Issuer: "https://idp.a.example", Subject: "alice", Claims: map[string]any{"client_id": "cli"}}
	s, _, out := auditedServer(t, audit.Config{}, fixedVerifier{alice})
	s.Decide(t.Context(), post(toolCall("kube_pods_list"), header("authorization", "Bearer "+auditCaller)))
	evs, raw := events(t, out, 1)
	steps, _ := json.Marshal(evs[0]["steps"])
	want := `[{"endpoint":"https://idp.a.example/token","grant":"` + exchange.GrantTokenExchange + `"},{"endpoint":"https://idp.b.example/token","grant":"` + exchange.GrantJWTBearer + `"}]`
	if string(steps) != want {
		t.Errorf("steps = %s, want %s", steps, want)
	}
	if evs[0]["client_id"] != "cli" {
		t.Errorf("client_id from client_id claim: %s", raw)
	}
}

// TestAuditRequired: with audit.required, an allowed request whose event
// cannot be queued is denied 503 audit_unavailable; without it, it passes
// and the drop is counted.
func TestAuditRequired(t *testing.T) {
	alice := &identity.Identity{Issuer: "https://idp.a.example", Subject: "alice"}
	for _, required := range []bool{true, false} {
		t.Run(map[bool]string{true: "required", false: "best effort"}[required], func(t *testing.T) {
			// Buffer 1 and no Start: the first event fills the queue.
			w, err := audit.New(audit.Config{Required: required, Buffer: 1}, audit.Deps{Stdout: &syncbuf.Buffer{}})
			if err != nil {
				t.Fatal(err)
			}
			s := newTokenServer(t, false, nil, Deps{Verifier: fixedVerifier{alice}, Audit: w})
			req := post(toolCall("kube_pods_list"), header("authorization", "Bearer "+auditCaller))
			if d := s.Decide(t.Context(), req); !d.Allow {
				t.Fatalf("first request: %+v", d)
			}
			d := s.Decide(t.Context(), req)
			if !required {
				if !d.Allow {
					t.Fatalf("best effort denied: %+v", d)
				}
				return
			}
			if d.Allow || d.Status != http.StatusServiceUnavailable || d.Reason != ReasonAuditUnavailable || string(d.ID) != "1" {
				t.Fatalf("required, queue full: %+v", d)
			}
			if len(d.Headers) != 0 || d.Assertion != "" {
				t.Errorf("denial carries headers or an assertion: %+v", d)
			}
		})
	}
}

func toStrings(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, x := range a {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}
