package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFilterEveryKind: prompts and resources (and resource templates, as
// their uriTemplate) are filtered as the prompts/get and resources/read that
// would use them, by both engines, the same as Decide decides those
// requests; a target naming no entry, or two, is never visible.
func TestFilterEveryKind(t *testing.T) {
	const other = "a/other"
	targets := []Target{
		{Server: kube, Tool: "pods_list"},
		{Server: kube, Prompt: "greet"},
		{Server: kube, Prompt: "admin_report"},
		{Server: kube, Resource: "file:///public/readme"},
		{Server: kube, Resource: "file:///private/alice"},
		{Server: kube, Resource: "file:///public/notes/{name}"},
		{Server: other, Prompt: "greet"},
		{Server: kube},                                     // names nothing
		{Server: kube, Tool: "pods_list", Prompt: "greet"}, // names two
	}
	const cel = `mcp.server == "` + kube + `" && (
		(mcp.method == "tools/call" && mcp.tool.name == "pods_list" && mcp.tool.target == mcp.server) ||
		(mcp.method == "prompts/get" && !has(mcp.tool) && !has(mcp.resource) && mcp.prompt.name == "greet") ||
		(mcp.method == "resources/read" && !has(mcp.tool) && !has(mcp.prompt) && mcp.resource.uri.startsWith("file:///public/")))`
	const rego = `package mcp.authz

allow if {
	input.mcp.server == "` + kube + `"
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "pods_list"
}

allow if {
	input.mcp.server == "` + kube + `"
	input.mcp.method == "prompts/get"
	not input.mcp.tool
	input.mcp.prompt.name == "greet"
}

allow if {
	input.mcp.server == "` + kube + `"
	input.mcp.method == "resources/read"
	not input.mcp.prompt
	startswith(input.mcp.resource.uri, "file:///public/")
}
`
	want := []bool{true, true, false, true, false, true, false, false, false}
	tests := []struct {
		name   string
		config Config
		want   []bool
	}{
		{name: "cel", config: Config{Policies: []Policy{{Name: "kinds", CEL: cel}}}, want: want},
		{name: "rego", config: Config{Policies: []Policy{{Name: "kinds", Rego: rego}}}, want: want},
		{
			name:   "default allow still hides malformed targets",
			config: Config{Default: "allow"},
			want:   []bool{true, true, true, true, true, true, true, false, false},
		},
		{name: "default deny", config: Config{}, want: make([]bool, len(targets))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustCompile(t, tt.config)
			in := toolCall("", "pods_list")
			in.MCP = MCP{Method: "prompts/list"}
			got := s.Filter(t.Context(), in, targets)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Filter (-want +got):\n%s", diff)
			}
			if in.MCP.Method != "prompts/list" || in.MCP.Tool != nil || in.MCP.Prompt != nil || in.MCP.Resource != nil {
				t.Errorf("Filter changed its input: %+v", in.MCP)
			}
			// Can see if and only if can use: each visible entry is
			// exactly what Decide allows for the request that uses it,
			// built as authz builds it.
			for i, tg := range targets[:7] {
				use := toolCall("", "pods_list")
				use.MCP = MCP{Server: tg.Server}
				switch {
				case tg.Tool != "":
					use.MCP.Method, use.MCP.Tool = "tools/call", &Tool{Name: tg.Tool, Target: tg.Server}
				case tg.Prompt != "":
					use.MCP.Method, use.MCP.Prompt = "prompts/get", &Prompt{Name: tg.Prompt}
				default:
					use.MCP.Method, use.MCP.Resource = "resources/read", &Resource{URI: tg.Resource}
				}
				if d := s.Decide(t.Context(), use); d.Allow != got[i] {
					t.Errorf("target %+v: Filter says %t, Decide says %+v", tg, got[i], d)
				}
			}
		})
	}
}

// TestFilterServerMethods: a method that targets a server alone
// (logging/setLevel, notifications/roots/list_changed, which the router
// passes to every server of a session) is evaluated as that method with
// mcp.server and no entry, by both engines; a Method beside an entry, or
// one that needs an entry, is never allowed. Targets of both shapes mixed
// in one call each see their own document.
func TestFilterServerMethods(t *testing.T) {
	const other = "a/other"
	targets := []Target{
		{Server: kube, Tool: "pods_list"},
		{Server: kube, Method: "logging/setLevel"},
		{Server: kube, Tool: "pods_list"},
		{Server: other, Method: "logging/setLevel"},
		{Server: kube, Method: "notifications/roots/list_changed"},
		{Server: kube, Method: "tools/call"},                  // needs a tool
		{Server: kube, Method: "logging/setLevel", Tool: "x"}, // names two
	}
	const cel = `mcp.server == "` + kube + `" && (
		(mcp.method == "tools/call" && mcp.tool.name == "pods_list") ||
		(mcp.method in ["logging/setLevel", "notifications/roots/list_changed"] && !has(mcp.tool) && !has(mcp.prompt) && !has(mcp.resource)))`
	const rego = `package mcp.authz

allow if {
	input.mcp.server == "` + kube + `"
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "pods_list"
}

allow if {
	input.mcp.server == "` + kube + `"
	input.mcp.method in {"logging/setLevel", "notifications/roots/list_changed"}
	not input.mcp.tool
	not input.mcp.resource
}
`
	want := []bool{true, true, true, false, true, false, false}
	for _, tt := range []struct {
		name   string
		config Config
	}{
		{"cel", Config{Policies: []Policy{{Name: "methods", CEL: cel}}}},
		{"rego", Config{Policies: []Policy{{Name: "methods", Rego: rego}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := mustCompile(t, tt.config)
			in := toolCall("", "pods_list")
			in.MCP = MCP{Method: "logging/setLevel"}
			if diff := cmp.Diff(want, s.Filter(t.Context(), in, targets)); diff != "" {
				t.Errorf("Filter (-want +got):\n%s", diff)
			}
		})
	}
}
