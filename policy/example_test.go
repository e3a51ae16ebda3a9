package policy_test

import (
	"context"
	"fmt"

	"github.com/mcp-authz/mcp-authz/policy"
)

func Example() {
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{
		{
			Name:    "tool-roles",
			Servers: []string{"*"},
			CEL:     `mcp.method != "tools/call" || mcp.tool.name in token.resource_access[mcp.server].roles`,
		},
		{
			Name:    "admins-delete",
			Servers: []string{"mcp-test/kubernetes-mcp"},
			Rego: `package mcp.authz

default allow := {"allow": false, "reason": "admins_only"}

allow := {"allow": true} if not endswith(input.mcp.tool.name, "_delete")

allow := {"allow": true} if "admins" in input.identity.groups
`,
		},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	engine := policy.NewEngine(set)

	server := "mcp-test/kubernetes-mcp"
	in := &policy.Input{
		MCP:      policy.MCP{Method: "tools/call", Server: server, Tool: &policy.Tool{Name: "pods_list", Target: server}},
		Identity: map[string]any{"sub": "alice", "groups": []any{"dev"}},
		Token: map[string]any{"resource_access": map[string]any{
			server: map[string]any{"roles": []any{"pods_list", "pods_delete"}},
		}},
	}
	fmt.Printf("%+v\n", engine.Decide(context.Background(), in))

	in.MCP.Tool.Name = "pods_delete"
	fmt.Printf("%+v\n", engine.Decide(context.Background(), in))

	fmt.Println(engine.Filter(context.Background(), in, []policy.Target{
		{Server: server, Tool: "pods_list"},
		{Server: server, Tool: "pods_delete"},
		{Server: server, Tool: "pods_exec"},
	}))
	// Output:
	// {Allow:true Reason:allowed Policy:admins-delete Scopes:[]}
	// {Allow:false Reason:admins_only Policy:admins-delete Scopes:[]}
	// [true false false]
}
