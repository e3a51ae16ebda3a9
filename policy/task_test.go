package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// taskRequest is alice's method on a task of tool on kube.
func taskRequest(method, tool string) *Input {
	return &Input{
		MCP:      MCP{Method: method, Server: kube, Task: &Task{Server: kube, Tool: tool, Method: method}},
		Identity: map[string]any{"sub": "alice"},
	}
}

func TestDecideTask(t *testing.T) {
	const celRule = `has(mcp.task) && mcp.task.tool == "build" && mcp.task.server == "` + kube + `" && (mcp.task.method == "tasks/get" || identity.sub == "admin")`
	const regoRule = "package mcp.authz\n\nallow if {\n\tinput.mcp.task.tool == \"build\"\n\tinput.mcp.task.server == \"" + kube + "\"\n\tinput.mcp.task.method == \"tasks/get\"\n}\n"
	tests := []struct {
		name   string
		policy Policy
		in     *Input
		allow  bool
	}{
		{name: "cel get", policy: Policy{CEL: celRule}, in: taskRequest("tasks/get", "build"), allow: true},
		{name: "cel cancel", policy: Policy{CEL: celRule}, in: taskRequest("tasks/cancel", "build")},
		{name: "cel other tool", policy: Policy{CEL: celRule}, in: taskRequest("tasks/get", "deploy")},
		{name: "cel not a task", policy: Policy{CEL: celRule}, in: toolCall("build")},
		{name: "rego get", policy: Policy{Rego: regoRule}, in: taskRequest("tasks/get", "build"), allow: true},
		{name: "rego cancel", policy: Policy{Rego: regoRule}, in: taskRequest("tasks/cancel", "build")},
		{name: "rego other tool", policy: Policy{Rego: regoRule}, in: taskRequest("tasks/get", "deploy")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Name = "p"
			s := mustCompile(t, Config{Policies: []Policy{tt.policy}})
			if got := s.Decide(t.Context(), tt.in); got.Allow != tt.allow {
				t.Errorf("Decide = %+v, want allow %v", got, tt.allow)
			}
		})
	}
}

func TestParseInputTask(t *testing.T) {
	in, err := ParseInput([]byte(`{"mcp":{"method":"tasks/cancel","server":"ns/a","task":{"server":"ns/a","tool":"build","method":"tasks/cancel"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Task{Server: "ns/a", Tool: "build", Method: "tasks/cancel"}
	if diff := cmp.Diff(want, in.MCP.Task); diff != "" {
		t.Fatalf("task (-want +got):\n%s", diff)
	}
}
