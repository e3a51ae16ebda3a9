package policy

import (
	"fmt"
	"path/filepath"
	"testing"
)

// keycloakInput is alice's tools/call with a Keycloak-shaped exchanged token.
func keycloakInput() *Input {
	roles := []any{"configuration_view", "nodes_log", "nodes_stats_summary", "pods_delete", "resources_delete",
		"pods_run", "pods_exec", "helm_list", "pods_log", "resources_get", "resources_list", "nodes_top",
		"namespaces_list", "helm_uninstall", "configuration_contexts_list", "events_list", "pods_get",
		"helm_install", "pods_top", "resources_create_or_update", "pods_list_in_namespace", "pods_list"}
	in := toolCall("pods_list", roles...)
	for k, v := range map[string]any{
		"azp": "mcp-gateway", "exp": 1763123081.0, "iat": 1763121281.0, "iss": "https://keycloak.example.com/realms/mcp",
		"preferred_username": "mcp", "groups": []any{"accounting", "engineering", "mcp-users"},
	} {
		in.Token[k] = v
	}
	return in
}

func benchDecide(b *testing.B, file string) {
	s := mustCompile(b, Config{
		BaseDir:  filepath.Join("..", "examples", "policies", "keycloak-roles"),
		Policies: []Policy{{Name: "roles", File: file}},
	})
	in := keycloakInput()
	ctx := b.Context()
	if d := s.Decide(ctx, in); !d.Allow {
		b.Fatalf("Decide = %+v, want allow", d)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		s.Decide(ctx, in)
	}
}

// BenchmarkDecideCEL decides the Keycloak roles example in CEL (target < 5 µs/op).
func BenchmarkDecideCEL(b *testing.B) { benchDecide(b, "keycloak-roles.cel") }

// BenchmarkDecideRego decides the Keycloak roles example in Rego (target < 50 µs/op).
func BenchmarkDecideRego(b *testing.B) { benchDecide(b, "keycloak-roles.rego") }

func benchFilter(b *testing.B, file string) {
	s := mustCompile(b, Config{
		BaseDir:  filepath.Join("..", "examples", "policies", "keycloak-roles"),
		Policies: []Policy{{Name: "roles", File: file}},
	})
	in := keycloakInput()
	in.MCP = MCP{Method: "tools/list"}
	targets := make([]Target, 1000)
	for i := range targets {
		targets[i] = Target{Server: kube, Tool: fmt.Sprintf("tool_%d", i)}
	}
	targets[500].Tool = "pods_list"
	ctx := b.Context()
	if got := s.Filter(ctx, in, targets); !got[500] || got[0] {
		b.Fatalf("Filter: want only target 500 allowed")
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		s.Filter(ctx, in, targets)
	}
}

// BenchmarkFilter1000CEL filters 1,000 tools for one caller in CEL (target < 5 ms/op).
func BenchmarkFilter1000CEL(b *testing.B) { benchFilter(b, "keycloak-roles.cel") }

// BenchmarkFilter1000Rego filters 1,000 tools for one caller in Rego.
func BenchmarkFilter1000Rego(b *testing.B) { benchFilter(b, "keycloak-roles.rego") }

// BenchmarkDecideCELCostLimit measures the longest a CEL policy can run: an
// expression that exceeds CELCostLimit and denies.
func BenchmarkDecideCELCostLimit(b *testing.B) {
	s := mustCompile(b, Config{Policies: []Policy{{Name: "slow", CEL: `lists.range(4000).all(i, lists.range(4000).all(j, i + j >= 0))`}}})
	in := keycloakInput()
	ctx := b.Context()
	if d := s.Decide(ctx, in); d.Reason != ReasonPolicyError {
		b.Fatalf("Decide = %+v, want policy_error", d)
	}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		s.Decide(ctx, in)
	}
}

// BenchmarkDecideArguments measures policies that read arguments: at the
// MaxArgumentBytes bound (decoded), and far above it (refused undecoded).
func BenchmarkDecideArguments(b *testing.B) {
	list := func(n int) []byte {
		buf := []byte(`{"items":[`)
		for i := 0; len(buf) < n-32; i++ {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = fmt.Appendf(buf, `"item-%d"`, i)
		}
		return append(buf, "]}"...)
	}
	for _, bc := range []struct {
		name string
		args []byte
		want string
	}{
		{name: "64KiB", args: list(MaxArgumentBytes), want: ReasonToolDenied},
		{name: "8MiB", args: list(8 << 20), want: ReasonPolicyError},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := mustCompile(b, Config{Policies: []Policy{{Name: "args", CEL: `mcp.arguments.items.exists(x, x == "rm -rf")`}}})
			in := keycloakInput()
			in.MCP.Arguments = bc.args
			ctx := b.Context()
			if d := s.Decide(ctx, in); d.Reason != bc.want {
				b.Fatalf("Decide = %+v, want %s", d, bc.want)
			}
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				s.Decide(ctx, in)
			}
		})
	}
}
