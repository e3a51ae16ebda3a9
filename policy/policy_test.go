package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const kube = "mcp-test/kubernetes-mcp"

// toolCall is a tools/call of tool on kube by alice, whose exchanged token has roles.
func toolCall(tool string, roles ...any) *Input {
	return &Input{
		Request: Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Headers: map[string]string{
			"authorization": "Bearer secret", "Cookie": "c=secret", "x-mcp-authz": "secret",
			"proxy-authorization": "secret", "mcp-session-id": "s1",
		}},
		MCP:      MCP{Method: "tools/call", Server: kube, Tool: &Tool{Name: tool, Target: kube}},
		Identity: map[string]any{"sub": "alice", "groups": []any{"dev"}},
		Token: map[string]any{
			"aud":             kube,
			"resource_access": map[string]any{kube: map[string]any{"roles": roles}},
		},
	}
}

func mustCompile(t testing.TB, c Config) *Set {
	t.Helper()
	s, err := Compile(c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func TestDecide(t *testing.T) {
	huge := append(append([]byte(`{"blob":"`), strings.Repeat("x", 2*MaxArgumentBytes)...), `"}`...)
	withArgs := func(in *Input, args string) *Input {
		in.MCP.Arguments = json.RawMessage(args)
		return in
	}
	tests := []struct {
		name   string
		policy Policy
		in     *Input
		want   Decision
	}{
		{
			name:   "cel allows",
			policy: Policy{CEL: `mcp.tool.name in token.resource_access[mcp.server].roles`},
			in:     toolCall("pods_list", "pods_list"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "cel denies",
			policy: Policy{CEL: `mcp.tool.name in token.resource_access[mcp.server].roles`},
			in:     toolCall("pods_delete", "pods_list"),
			want:   Decision{Reason: ReasonToolDenied},
		},
		{
			name:   "cel agentgateway rule with jwt",
			policy: Policy{CEL: `jwt.sub == "alice" && mcp.tool.name == "get_me" && mcp.tool.target == "` + kube + `"`},
			in:     toolCall("get_me"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "cel identity and jwt are the same",
			policy: Policy{CEL: `identity == jwt && "dev" in identity.groups`},
			in:     toolCall("x"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "cel no such key",
			policy: Policy{CEL: `jwt.missing == "x"`},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "cel type error",
			policy: Policy{CEL: `jwt.sub + 1 == 2`},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "cel absent tool",
			policy: Policy{CEL: `mcp.tool.name == "x"`},
			in:     &Input{MCP: MCP{Method: "tools/list"}},
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "cel has on absent tool",
			policy: Policy{CEL: `!has(mcp.tool) && mcp.server == "" && token == {}`},
			in:     &Input{MCP: MCP{Method: "tools/list"}},
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "cel string and list extensions",
			policy: Policy{CEL: `mcp.tool.name.split("_")[0] == "pods" && ["b", "a"].sort() == ["a", "b"]`},
			in:     toolCall("pods_list"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "cel cost limit exceeded",
			policy: Policy{CEL: `jwt.items.all(x, jwt.items.all(y, x >= 0))`},
			in: func() *Input {
				in := toolCall("x")
				items := make([]any, 1000)
				for i := range items {
					items[i] = float64(i)
				}
				in.Identity["items"] = items
				return in
			}(),
			want: Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "cel secret headers hidden",
			policy: Policy{CEL: `request.headers == {"mcp-session-id": "s1"} && request.method == "POST" && request.host == "mcp.example.com"`},
			in:     toolCall("x"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "cel reads small arguments",
			policy: Policy{CEL: `mcp.arguments.namespace == "default"`},
			in:     withArgs(toolCall("x"), `{"namespace":"default"}`),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "cel huge arguments deny a policy that reads them",
			policy: Policy{CEL: `!has(mcp.arguments) || mcp.arguments.size() < 10`},
			in:     withArgs(toolCall("x"), string(huge)),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "cel huge arguments ignored by a policy that does not read them",
			policy: Policy{CEL: `mcp.tool.name == "x"`},
			in:     withArgs(toolCall("x"), string(huge)),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "cel invalid arguments deny a policy that reads them",
			policy: Policy{CEL: `!has(mcp.arguments)`},
			in:     withArgs(toolCall("x"), `{"a":`),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego allows",
			policy: Policy{Rego: "package mcp.authz\n\nallow if input.mcp.tool.name in input.token.resource_access[input.mcp.server].roles\n"},
			in:     toolCall("pods_list", "pods_list"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "rego denies",
			policy: Policy{Rego: "package mcp.authz\n\ndefault allow := false\n\nallow if input.mcp.tool.name == \"y\"\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonToolDenied},
		},
		{
			name:   "rego undefined",
			policy: Policy{Rego: "package mcp.authz\n\nallow if input.mcp.tool.name == \"y\"\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego non-boolean allow",
			policy: Policy{Rego: "package mcp.authz\n\nallow := \"yes\"\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego reason object allows",
			policy: Policy{Rego: "package mcp.authz\n\nallow := {\"allow\": true}\n"},
			in:     toolCall("x"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "rego reason object denies with its reason",
			policy: Policy{Rego: "package mcp.authz\n\nallow := {\"allow\": false, \"reason\": \"outside_hours\"}\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: "outside_hours"},
		},
		{
			name:   "rego reason object without reason",
			policy: Policy{Rego: "package mcp.authz\n\nallow := {\"allow\": false}\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonToolDenied},
		},
		{
			name:   "rego reason object with non-boolean allow",
			policy: Policy{Rego: "package mcp.authz\n\nallow := {\"allow\": \"true\"}\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego reason that is not a code",
			policy: Policy{Rego: "package mcp.authz\n\nallow := {\"allow\": false, \"reason\": concat(\" \", [\"sub\", input.identity.sub])}\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego reason that is not a string",
			policy: Policy{Rego: "package mcp.authz\n\nallow := {\"allow\": true, \"reason\": 7}\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego type error",
			policy: Policy{Rego: "package mcp.authz\n\nallow if startswith(input.identity.groups, \"d\")\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego conflicting values",
			policy: Policy{Rego: "package mcp.authz\n\nallow := true if input.identity.sub == \"alice\"\n\nallow := false if input.identity.sub == \"alice\"\n"},
			in:     toolCall("x"),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego custom query",
			policy: Policy{Rego: "package tools\n\ndecision := {\"allow\": input.identity.sub == \"alice\"}\n", Query: "data.tools.decision"},
			in:     toolCall("x"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "rego secret headers hidden",
			policy: Policy{Rego: "package mcp.authz\n\nallow if input.request.headers == {\"mcp-session-id\": \"s1\"}\n"},
			in:     toolCall("x"),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "rego reads small arguments",
			policy: Policy{Rego: "package mcp.authz\n\nallow if input.mcp.arguments.namespace == \"default\"\n"},
			in:     withArgs(toolCall("x"), `{"namespace":"default"}`),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "rego huge arguments deny a policy that reads them",
			policy: Policy{Rego: "package mcp.authz\n\ndefault allow := true\n\nallow := false if count(input.mcp.arguments) > 10\n"},
			in:     withArgs(toolCall("x"), string(huge)),
			want:   Decision{Reason: ReasonPolicyError},
		},
		{
			name:   "rego huge arguments ignored by a policy that does not read them",
			policy: Policy{Rego: "package mcp.authz\n\nallow if input.mcp.tool.name == \"x\"\n"},
			in:     withArgs(toolCall("x"), string(huge)),
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:   "rego empty token",
			policy: Policy{Rego: "package mcp.authz\n\nallow if input.token == {}\n"},
			in:     &Input{MCP: MCP{Method: "initialize"}},
			want:   Decision{Allow: true, Reason: ReasonAllowed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Name = "p"
			s := mustCompile(t, Config{Policies: []Policy{tt.policy}})
			tt.want.Policy = "p"
			if got := s.Decide(t.Context(), tt.in); !cmp.Equal(got, tt.want) {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecideScopes(t *testing.T) {
	allowAll := func(name string, servers ...string) Policy {
		return Policy{Name: name, Servers: servers, CEL: "true"}
	}
	denyAll := func(name string, servers ...string) Policy {
		return Policy{Name: name, Servers: servers, Rego: "package mcp.authz\n\nallow := false\n"}
	}
	tests := []struct {
		name   string
		config Config
		server string
		want   Decision
	}{
		{name: "no policies deny", config: Config{}, server: kube, want: Decision{Reason: ReasonNoPolicy}},
		{name: "no policies, default deny", config: Config{Default: "deny"}, server: kube, want: Decision{Reason: ReasonNoPolicy}},
		{name: "no policies, default allow", config: Config{Default: "allow"}, server: kube, want: Decision{Allow: true, Reason: ReasonNoPolicy}},
		{
			name:   "policy for another server leaves the default",
			config: Config{Policies: []Policy{denyAll("other", "a/b")}, Default: "allow"},
			server: kube,
			want:   Decision{Allow: true, Reason: ReasonNoPolicy},
		},
		{
			name:   "named policy applies to its server",
			config: Config{Policies: []Policy{denyAll("kube", "a/b", kube)}, Default: "allow"},
			server: kube,
			want:   Decision{Reason: ReasonToolDenied, Policy: "kube"},
		},
		{
			name:   "named policy does not apply to methods without a server",
			config: Config{Policies: []Policy{denyAll("kube", kube)}, Default: "allow"},
			server: "",
			want:   Decision{Allow: true, Reason: ReasonNoPolicy},
		},
		{
			name:   "global policy applies without a server",
			config: Config{Policies: []Policy{denyAll("global", "*")}, Default: "allow"},
			server: "",
			want:   Decision{Reason: ReasonToolDenied, Policy: "global"},
		},
		{
			name:   "global policy with empty servers applies everywhere",
			config: Config{Policies: []Policy{allowAll("global")}},
			server: "x/y",
			want:   Decision{Allow: true, Reason: ReasonAllowed, Policy: "global"},
		},
		{
			name:   "all must allow: named deny after global allow",
			config: Config{Policies: []Policy{allowAll("global", "*"), denyAll("kube", kube)}},
			server: kube,
			want:   Decision{Reason: ReasonToolDenied, Policy: "kube"},
		},
		{
			name:   "all must allow: global deny after named allow",
			config: Config{Policies: []Policy{allowAll("kube", kube), denyAll("global")}},
			server: kube,
			want:   Decision{Reason: ReasonToolDenied, Policy: "global"},
		},
		{
			name:   "first deny wins",
			config: Config{Policies: []Policy{denyAll("first"), denyAll("second")}},
			server: kube,
			want:   Decision{Reason: ReasonToolDenied, Policy: "first"},
		},
		{
			name:   "all allow: the last one is named",
			config: Config{Policies: []Policy{allowAll("global"), allowAll("kube", kube)}},
			server: kube,
			want:   Decision{Allow: true, Reason: ReasonAllowed, Policy: "kube"},
		},
		{
			name:   "a server without named policies gets the global ones",
			config: Config{Policies: []Policy{allowAll("kube", kube), denyAll("global")}},
			server: "x/y",
			want:   Decision{Reason: ReasonToolDenied, Policy: "global"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustCompile(t, tt.config)
			in := &Input{MCP: MCP{Method: "tools/call", Server: tt.server}}
			if got := s.Decide(t.Context(), in); !cmp.Equal(got, tt.want) {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.rego"), []byte("package mcp.authz\n\nallow if {\n\tinput.x ==\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p.txt"), []byte("true"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.cel"), []byte("// comment\njwt.sub ==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		config Config
		want   []string // substrings of the error
	}{
		{name: "non-bool cel", config: Config{Policies: []Policy{{Name: "p", CEL: `jwt.sub`}}}, want: []string{`"p"`, "want bool"}},
		{name: "string cel", config: Config{Policies: []Policy{{Name: "p", CEL: `"yes"`}}}, want: []string{"string", "want bool"}},
		{name: "cel syntax", config: Config{Policies: []Policy{{Name: "p", CEL: `jwt.sub ==`}}}, want: []string{`"p"`, "cel"}},
		{name: "cel unknown variable", config: Config{Policies: []Policy{{Name: "p", CEL: `user.sub == "x"`}}}, want: []string{"undeclared reference"}},
		{name: "bad rego inline", config: Config{Policies: []Policy{{Name: "p", Rego: "package mcp.authz\nallow if {"}}}, want: []string{`"p"`, "p.rego:"}},
		{name: "bad rego file names file and line", config: Config{BaseDir: dir, Policies: []Policy{{Name: "f", File: "bad.rego"}}}, want: []string{`"f"`, "bad.rego:"}},
		{name: "bad cel file names file and line", config: Config{BaseDir: dir, Policies: []Policy{{Name: "f", File: "bad.cel"}}}, want: []string{`"f"`, "bad.cel:3:"}},
		{name: "rego type error names line", config: Config{Policies: []Policy{{Name: "p", Rego: "package mcp.authz\n\nallow if foo(input.x)\n"}}}, want: []string{"p.rego:3:", "undefined function foo"}},
		{name: "rego wrong package", config: Config{Policies: []Policy{{Name: "p", Rego: "package other\n\nallow := true\n"}}}, want: []string{"want mcp.authz"}},
		{name: "rego without allow", config: Config{Policies: []Policy{{Name: "p", Rego: "package mcp.authz\n\ndeny := true\n"}}}, want: []string{"no rule allow"}},
		{name: "rego http.send", config: Config{Policies: []Policy{{Name: "p", Rego: "package mcp.authz\n\nallow if http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1\"}).status_code == 200\n"}}}, want: []string{"http.send"}},
		{name: "rego v0 syntax", config: Config{Policies: []Policy{{Name: "p", Rego: "package mcp.authz\n\nallow { true }\n"}}}, want: []string{"rego_parse_error"}},
		{name: "no name", config: Config{Policies: []Policy{{CEL: "true"}}}, want: []string{"name is required"}},
		{name: "duplicate name", config: Config{Policies: []Policy{{Name: "p", CEL: "true"}, {Name: "p", CEL: "true"}}}, want: []string{"duplicate"}},
		{name: "two sources", config: Config{Policies: []Policy{{Name: "p", CEL: "true", Rego: "package mcp.authz\nallow := true"}}}, want: []string{"exactly one"}},
		{name: "no source", config: Config{Policies: []Policy{{Name: "p"}}}, want: []string{"exactly one"}},
		{name: "query on cel", config: Config{Policies: []Policy{{Name: "p", CEL: "true", Query: "data.x"}}}, want: []string{"rego only"}},
		{name: "missing file", config: Config{BaseDir: dir, Policies: []Policy{{Name: "p", File: "nope.cel"}}}, want: []string{"nope.cel"}},
		{name: "file kind", config: Config{BaseDir: dir, Policies: []Policy{{Name: "p", File: "p.txt"}}}, want: []string{".cel or .rego"}},
		{name: "empty server", config: Config{Policies: []Policy{{Name: "p", CEL: "true", Servers: []string{" "}}}}, want: []string{"empty name"}},
		{name: "bad default", config: Config{Default: "maybe"}, want: []string{"maybe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.config)
			if err == nil {
				t.Fatal("Compile: want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCompileFiles(t *testing.T) {
	dir := filepath.Join("..", "examples", "policies", "keycloak-roles")
	for _, file := range []string{"keycloak-roles.cel", "keycloak-roles.rego"} {
		t.Run(file, func(t *testing.T) {
			s := mustCompile(t, Config{BaseDir: dir, Policies: []Policy{{Name: "roles", File: file}}})
			in := toolCall("pods_list", "pods_list")
			if got, want := s.Decide(t.Context(), in), (Decision{Allow: true, Reason: ReasonAllowed, Policy: "roles"}); !cmp.Equal(got, want) {
				t.Errorf("pods_list: Decide = %+v, want %+v", got, want)
			}
			in = toolCall("pods_delete", "pods_list")
			if got, want := s.Decide(t.Context(), in), (Decision{Reason: ReasonToolDenied, Policy: "roles"}); !cmp.Equal(got, want) {
				t.Errorf("pods_delete: Decide = %+v, want %+v", got, want)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	targets := []Target{
		{Server: kube, Tool: "pods_list"},
		{Server: kube, Tool: "pods_delete"},
		{Server: "a/other", Tool: "pods_list"},
		{Server: "b/open", Tool: "anything"},
		{Server: kube, Tool: "tool_roled"},
	}
	tests := []struct {
		name   string
		config Config
		want   []bool
	}{
		{
			name: "cel",
			config: Config{Policies: []Policy{{Name: "roles", CEL: `mcp.method == "tools/call" && mcp.server == mcp.tool.target &&
				cel.bind(roles, token.?resource_access[?mcp.server].?roles.orValue([]), mcp.tool.name in roles || "tool:" + mcp.tool.name in roles)`}}},
			want: []bool{true, false, false, false, true},
		},
		{
			name: "rego",
			config: Config{Policies: []Policy{{Name: "roles", File: "keycloak-roles.rego"}},
				BaseDir: filepath.Join("..", "examples", "policies", "keycloak-roles")},
			want: []bool{true, false, false, false, true},
		},
		{
			name: "scoped policies and default allow",
			config: Config{Default: "allow", Policies: []Policy{
				{Name: "kube", Servers: []string{kube}, CEL: `mcp.tool.name == "pods_list"`},
				{Name: "other", Servers: []string{"a/other"}, CEL: `false`},
			}},
			want: []bool{true, false, false, true, false},
		},
		{
			name: "policies that read the whole mcp document",
			config: Config{Policies: []Policy{
				{Name: "cel", CEL: `!has(mcp.arguments) && mcp.size() == 3 && mcp.tool.name in ["pods_list", "anything"] + (mcp.server == "a/other" ? ["pods_delete"] : [])`},
				{Name: "rego", Rego: "package mcp.authz\n\nallow if { m := input.mcp; m.tool.name != \"tools_delete\"; count(m) == 3 }\n"},
			}},
			want: []bool{true, false, true, true, false},
		},
		{name: "default deny", config: Config{}, want: []bool{false, false, false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustCompile(t, tt.config)
			in := toolCall("", "pods_list", "tool:tool_roled")
			in.MCP = MCP{Method: "tools/list"}
			got := s.Filter(t.Context(), in, targets)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter (-want +got):\n%s", diff)
			}
			if in.MCP.Method != "tools/list" || in.MCP.Tool != nil {
				t.Errorf("Filter changed its input: %+v", in.MCP)
			}
			for i, tg := range targets {
				call := toolCall(tg.Tool, "pods_list", "tool:tool_roled")
				call.MCP = MCP{Method: "tools/call", Server: tg.Server, Tool: &Tool{Name: tg.Tool, Target: tg.Server}}
				if d := s.Decide(t.Context(), call); d.Allow != got[i] {
					t.Errorf("target %v: Filter says %t, Decide says %+v", tg, got[i], d)
				}
			}
		})
	}
}

func TestEngine(t *testing.T) {
	var e Engine
	in := toolCall("x")
	if got, want := e.Decide(t.Context(), in), (Decision{Reason: ReasonNoPolicy}); !cmp.Equal(got, want) {
		t.Errorf("zero Engine: Decide = %+v, want %+v", got, want)
	}
	if got := e.Filter(t.Context(), in, []Target{{Server: kube, Tool: "x"}}); !cmp.Equal(got, []bool{false}) {
		t.Errorf("zero Engine: Filter = %v, want [false]", got)
	}
	allow := mustCompile(t, Config{Policies: []Policy{{Name: "allow", CEL: "true"}}})
	deny := mustCompile(t, Config{Policies: []Policy{{Name: "deny", CEL: "false"}}})
	e2 := NewEngine(allow)
	if d := e2.Decide(t.Context(), in); !d.Allow || d.Policy != "allow" {
		t.Errorf("NewEngine(allow): Decide = %+v", d)
	}
	e2.Store(deny)
	if e2.Load() != deny {
		t.Error("Load after Store: not the stored set")
	}
	if d := e2.Decide(t.Context(), in); d.Allow || d.Policy != "deny" {
		t.Errorf("after Store(deny): Decide = %+v", d)
	}
	if got := e2.Filter(t.Context(), in, []Target{{Server: kube, Tool: "x"}}); !cmp.Equal(got, []bool{false}) {
		t.Errorf("after Store(deny): Filter = %v, want [false]", got)
	}
	if v := e.Load().Version(); v != 0 {
		t.Errorf("zero Engine: Load().Version() = %d, want 0", v)
	}
	if va, vd := allow.Version(), deny.Version(); va == 0 || vd <= va {
		t.Errorf("Version of two Sets compiled in turn = %d, %d: want nonzero and growing", va, vd)
	}
	if e2.Load().Version() != deny.Version() {
		t.Errorf("Load().Version() after Store = %d, want the stored set's %d", e2.Load().Version(), deny.Version())
	}
	if d := (*Set)(nil).Decide(t.Context(), in); d.Allow {
		t.Errorf("nil Set: Decide = %+v", d)
	}
	if d := allow.Decide(t.Context(), nil); d.Allow {
		t.Errorf("nil input: Decide = %+v", d)
	}
}

func TestRegoCanceledContext(t *testing.T) {
	s := mustCompile(t, Config{Policies: []Policy{{Name: "p", Rego: "package mcp.authz\n\nallow := true\n"}}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if d := s.Decide(ctx, toolCall("x")); d.Allow || d.Reason != ReasonPolicyError {
		t.Errorf("canceled context: Decide = %+v, want a policy_error deny", d)
	}
	// A long evaluation stops at the deadline and denies.
	s = mustCompile(t, Config{Policies: []Policy{{Name: "p", Rego: "package mcp.authz\n\nallow if count([x | some x in numbers.range(1, 100000000); x > 0]) > 0\n"}}})
	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if d := s.Decide(ctx, toolCall("x")); d.Allow || d.Reason != ReasonPolicyError {
		t.Errorf("deadline: Decide = %+v, want a policy_error deny", d)
	}
	// Without a deadline, RegoTimeout bounds it.
	if d := s.Decide(t.Context(), toolCall("x")); d.Allow || d.Reason != ReasonPolicyError {
		t.Errorf("no deadline: Decide = %+v, want a policy_error deny", d)
	}
}

func TestReadsArguments(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   bool
	}{
		{name: "cel field", policy: Policy{CEL: `mcp.tool.name == "x"`}, want: false},
		{name: "cel arguments", policy: Policy{CEL: `mcp.arguments.a == 1`}, want: true},
		{name: "cel has arguments", policy: Policy{CEL: `has(mcp.arguments)`}, want: true},
		{name: "cel index", policy: Policy{CEL: `mcp["method"] == "x"`}, want: false},
		{name: "cel index arguments", policy: Policy{CEL: `mcp["arguments"] == {}`}, want: true},
		{name: "cel optional select", policy: Policy{CEL: `mcp.?arguments.hasValue()`}, want: true},
		{name: "cel computed index", policy: Policy{CEL: `mcp["argu" + "ments"] == {}`}, want: true},
		{name: "cel whole mcp", policy: Policy{CEL: `mcp.size() > 0`}, want: true},
		{name: "cel macro over mcp", policy: Policy{CEL: `mcp.exists(k, k == "x")`}, want: true},
		{name: "rego field", policy: Policy{Rego: "package mcp.authz\n\nallow if input.mcp.tool.name == \"x\"\n"}, want: false},
		{name: "rego arguments", policy: Policy{Rego: "package mcp.authz\n\nallow if input.mcp.arguments.a == 1\n"}, want: true},
		{name: "rego bracket arguments", policy: Policy{Rego: "package mcp.authz\n\nallow if input[\"mcp\"][\"arguments\"]\n"}, want: true},
		{name: "rego whole input", policy: Policy{Rego: "package mcp.authz\n\nallow if { x := input; x.mcp.arguments }\n"}, want: true},
		{name: "rego whole mcp", policy: Policy{Rego: "package mcp.authz\n\nallow if { m := input.mcp; m.arguments }\n"}, want: true},
		{name: "rego variable key", policy: Policy{Rego: "package mcp.authz\n\nallow if { some k; input.mcp[k] == 1 }\n"}, want: true},
		{name: "rego walk", policy: Policy{Rego: "package mcp.authz\n\nallow if { walk(input, [_, v]); v == 1 }\n"}, want: true},
		{name: "rego import", policy: Policy{Rego: "package mcp.authz\n\nimport input.mcp\n\nallow if mcp.arguments\n"}, want: true},
		{name: "rego other parts", policy: Policy{Rego: "package mcp.authz\n\nallow if { input.identity.sub == \"a\"; input.token[\"aud\"] == \"b\" }\n"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := compileOne(Config{}, tt.policy)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if got := ev.readsArguments(); got != tt.want {
				t.Errorf("readsArguments = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestParseInput(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    *Input
		wantErr bool
	}{
		{
			name: "tool target defaults to server",
			json: `{"mcp":{"method":"tools/call","server":"a/b","tool":{"name":"t"},"arguments":{"x":1}},"identity":{"sub":"s"}}`,
			want: &Input{
				MCP:      MCP{Method: "tools/call", Server: "a/b", Tool: &Tool{Name: "t", Target: "a/b"}, Arguments: json.RawMessage(`{"x":1}`)},
				Identity: map[string]any{"sub": "s"},
			},
		},
		{name: "unknown key", json: `{"mcp":{"tool_name":"t"}}`, wantErr: true},
		{name: "trailing data", json: `{} {}`, wantErr: true},
		{name: "not an object", json: `[]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInput([]byte(tt.json))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseInput error = %v, wantErr %t", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseInput (-want +got):\n%s", diff)
			}
		})
	}
}

// TestConcurrentDecide runs decisions from many goroutines while the Set in
// force is swapped (run with -race).
func TestConcurrentDecide(t *testing.T) {
	rego := mustCompile(t, Config{BaseDir: filepath.Join("..", "examples", "policies", "keycloak-roles"),
		Policies: []Policy{{Name: "roles", File: "keycloak-roles.rego"}}})
	cel := mustCompile(t, Config{BaseDir: filepath.Join("..", "examples", "policies", "keycloak-roles"),
		Policies: []Policy{{Name: "roles", File: "keycloak-roles.cel"}}})
	e := NewEngine(rego)
	done := make(chan struct{})
	errs := make(chan string, 8)
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				tool, want := "pods_list", true
				if (g+i)%2 == 0 {
					tool, want = "pods_delete", false
				}
				if d := e.Decide(t.Context(), toolCall(tool, "pods_list")); d.Allow != want {
					errs <- fmt.Sprintf("%s: Decide = %+v", tool, d)
					return
				}
				if got := e.Filter(t.Context(), toolCall("", "pods_list"), []Target{{Server: kube, Tool: "pods_list"}, {Server: kube, Tool: "pods_delete"}}); !got[0] || got[1] {
					errs <- fmt.Sprintf("Filter = %v", got)
					return
				}
			}
		}()
	}
	for i := range 100 {
		if i%2 == 0 {
			e.Store(cel)
		} else {
			e.Store(rego)
		}
	}
	for range 4 {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestConfigFiles(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "abs.rego")
	c := Config{BaseDir: "conf", Policies: []Policy{
		{Name: "a", File: "a.cel"}, {Name: "b", CEL: "true"}, {Name: "c", File: abs},
	}}
	if diff := cmp.Diff([]string{filepath.Join("conf", "a.cel"), abs}, c.Files()); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
}
