package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestExchangeInput: policies read how the upstream token was made
// (profile, target, steps) in CEL and Rego alike; without an exchange the
// document is empty.
func TestExchangeInput(t *testing.T) {
	chained := toolCall("pods_list")
	chained.Exchange = &Exchange{Profile: "spoke", Target: "b", Steps: []ExchangeStep{
		{Grant: "token-exchange", Endpoint: "https://idp/realms/domain-a/protocol/openid-connect/token"},
		{Grant: "jwt-bearer", Endpoint: "https://idp/realms/domain-b/protocol/openid-connect/token"},
	}}
	tests := []struct {
		name string
		p    Policy
		in   *Input
		want bool
	}{
		{"cel: profile and target", Policy{Name: "p", CEL: `exchange.profile == "spoke" && exchange.target == "b"`}, chained, true},
		{"cel: the last step", Policy{Name: "p", CEL: `exchange.steps[1].grant == "jwt-bearer" && exchange.steps.size() == 2`}, chained, true},
		{"cel: no exchange", Policy{Name: "p", CEL: `!has(exchange.profile)`}, toolCall("pods_list"), true},
		{"cel: no exchange, profile required", Policy{Name: "p", CEL: `exchange.?profile.orValue("") == "spoke"`}, toolCall("pods_list"), false},
		{"rego: profile and target", Policy{Name: "p", Rego: "package mcp.authz\nallow if { input.exchange.profile == \"spoke\"; input.exchange.target == \"b\" }\n"}, chained, true},
		{"rego: steps", Policy{Name: "p", Rego: "package mcp.authz\nallow if { count(input.exchange.steps) == 2; input.exchange.steps[0].grant == \"token-exchange\" }\n"}, chained, true},
		{"rego: no exchange", Policy{Name: "p", Rego: "package mcp.authz\nallow if { not input.exchange.profile }\n"}, toolCall("pods_list"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile(Config{Policies: []Policy{tt.p}})
			if err != nil {
				t.Fatal(err)
			}
			if d := s.Decide(t.Context(), tt.in); d.Allow != tt.want || d.Reason == ReasonPolicyError {
				t.Errorf("Decide() = %+v, want allow %v", d, tt.want)
			}
		})
	}
}

// TestStepUp: a denial that names the scopes that would allow it, from a
// Rego result object or a policy's stepUpScopes (CEL and Rego); never
// offline_access; never on an allow or a policy error.
func TestStepUp(t *testing.T) {
	const hasWrite = `"pods:write" in token.?scope.orValue("").split(" ")`
	tests := []struct {
		name string
		ps   []Policy
		in   *Input
		want Decision
	}{
		{"cel stepUpScopes, denied", []Policy{{Name: "write", CEL: hasWrite, StepUpScopes: []string{"pods:write"}}}, toolCall("pods_delete"),
			Decision{Reason: ReasonInsufficientScope, Policy: "write", Scopes: []string{"pods:write"}}},
		{"cel stepUpScopes, allowed", []Policy{{Name: "write", CEL: hasWrite, StepUpScopes: []string{"pods:write"}}}, func() *Input {
			in := toolCall("pods_delete")
			in.Token["scope"] = "openid pods:write"
			return in
		}(), Decision{Allow: true, Reason: ReasonAllowed, Policy: "write"}},
		{"cel stepUpScopes, policy error is no step-up", []Policy{{Name: "write", CEL: `token.nope == "x"`, StepUpScopes: []string{"pods:write"}}}, toolCall("pods_delete"),
			Decision{Reason: ReasonPolicyError, Policy: "write"}},
		{"rego result object", []Policy{{Name: "write", Rego: "package mcp.authz\ndefault allow := {\"allow\": false, \"reason\": \"insufficient_scope\", \"scopes\": [\"pods:write\", \"offline_access\"]}\n"}}, toolCall("pods_delete"),
			Decision{Reason: ReasonInsufficientScope, Policy: "write", Scopes: []string{"pods:write"}}},
		{"rego scopes without a reason", []Policy{{Name: "write", Rego: "package mcp.authz\ndefault allow := {\"allow\": false, \"scopes\": [\"pods:write\"]}\n"}}, toolCall("pods_delete"),
			Decision{Reason: ReasonInsufficientScope, Policy: "write", Scopes: []string{"pods:write"}}},
		{"rego scopes with another reason are dropped", []Policy{{Name: "write", Rego: "package mcp.authz\ndefault allow := {\"allow\": false, \"reason\": \"nope\", \"scopes\": [\"pods:write\"]}\n"}}, toolCall("pods_delete"),
			Decision{Reason: "nope", Policy: "write"}},
		{"rego scopes on an allow", []Policy{{Name: "write", Rego: "package mcp.authz\ndefault allow := {\"allow\": true, \"scopes\": [\"pods:write\"]}\n"}}, toolCall("pods_delete"),
			Decision{Reason: ReasonPolicyError, Policy: "write"}},
		{"rego scope with a quote", []Policy{{Name: "write", Rego: "package mcp.authz\ndefault allow := {\"allow\": false, \"scopes\": [\"a\\\"b\"]}\n"}}, toolCall("pods_delete"),
			Decision{Reason: ReasonPolicyError, Policy: "write"}},
		{"rego plain false with stepUpScopes", []Policy{{Name: "write", Rego: "package mcp.authz\ndefault allow := false\n", StepUpScopes: []string{"pods:write"}}}, toolCall("pods_delete"),
			Decision{Reason: ReasonInsufficientScope, Policy: "write", Scopes: []string{"pods:write"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile(Config{Policies: tt.ps})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, s.Decide(t.Context(), tt.in)); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range [][]string{{"offline_access"}, {"a b"}, {""}} {
		p := Policy{Name: "p", CEL: "true", StepUpScopes: bad}
		if _, err := Compile(Config{Policies: []Policy{p}}); err == nil {
			t.Errorf("Compile with stepUpScopes %q succeeded", bad)
		}
		if err := (Config{Policies: []Policy{p}}).Validate(); err == nil {
			t.Errorf("Validate with stepUpScopes %q succeeded", bad)
		}
	}
}
