package telemetry

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/internal/audit"
)

func TestAuditEvent(t *testing.T) {
	now := time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rec  Record
		want audit.Event
	}{
		{
			name: "allowed tool call with an exchange",
			rec: Record{Allow: true, Reason: "allowed", Issuer: "https://idp", Subject: "alice", Client: "cli",
				Method: "tools/call", Server: "ns/kube", Name: "pods_list", Profile: "default", Target: "ns/kube",
				Steps: []exchange.StepInfo{{Grant: "token-exchange", Endpoint: "https://idp/token"}}},
			want: audit.Event{Time: now, Kind: audit.KindDecision, Issuer: "https://idp", Subject: "alice", ClientID: "cli",
				Method: "tools/call", Server: "ns/kube", Tool: "pods_list", Decision: "allow", Reason: "allowed",
				Profile: "default", Target: "ns/kube", Steps: []audit.Step{{Grant: "token-exchange", Endpoint: "https://idp/token"}},
				LatencyMS: 1.5, TraceID: "0af7651916cd43dd8448eb211c80319c", ArgumentNames: []string{"namespace"}},
		},
		{
			name: "denied prompt, its cause kept apart",
			rec:  Record{Status: 403, Reason: "prompt_denied", Cause: "policy_error", Method: "prompts/get", Name: "greet"},
			want: audit.Event{Time: now, Kind: audit.KindDecision, Method: "prompts/get", Prompt: "greet", Decision: "deny",
				Reason: "prompt_denied", Cause: "policy_error", Status: 403, LatencyMS: 1.5,
				TraceID: "0af7651916cd43dd8448eb211c80319c", ArgumentNames: []string{"namespace"}},
		},
		{
			name: "resource by its uri",
			rec:  Record{Allow: true, Reason: "allowed", Method: "resources/subscribe", Name: "file:///a"},
			want: audit.Event{Time: now, Kind: audit.KindDecision, Method: "resources/subscribe", Resource: "file:///a",
				Decision: "allow", Reason: "allowed", LatencyMS: 1.5, TraceID: "0af7651916cd43dd8448eb211c80319c",
				ArgumentNames: []string{"namespace"}},
		},
		{
			name: "any other method names its target as Name",
			rec:  Record{Allow: true, Reason: "allowed", Method: "completion/complete", Name: "greet"},
			want: audit.Event{Time: now, Kind: audit.KindDecision, Method: "completion/complete", Name: "greet",
				Decision: "allow", Reason: "allowed", LatencyMS: 1.5, TraceID: "0af7651916cd43dd8448eb211c80319c",
				ArgumentNames: []string{"namespace"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AuditEvent(&tt.rec, now, "0af7651916cd43dd8448eb211c80319c", []string{"namespace"}, 1500*time.Microsecond)
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("AuditEvent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestArgumentNames(t *testing.T) {
	tests := []struct {
		name string
		body string
		max  int
		want []string
	}{
		{name: "sorted names, never values", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"z":"secret","a":{"b":1}}}}`, want: []string{"a", "z"}},
		{name: "no arguments", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`},
		{name: "a batch", body: `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}}]`},
		{name: "not a message", body: `{"arguments":{"a":1}}`},
		{name: "over the size bound", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1}}}`, max: 16},
		{name: "empty", body: ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ArgumentNames([]byte(tt.body), tt.max); !cmp.Equal(got, tt.want) {
				t.Errorf("ArgumentNames = %q, want %q", got, tt.want)
			}
		})
	}
}
