package authz_test

import (
	"context"
	"fmt"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// ExampleServer_Decide decides two tool calls in process, with no Envoy in
// between: one the policy allows and one it denies.
func ExampleServer_Decide() {
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:8089/mcp"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var reg registry.Registry
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{
		{Name: "no-delete", CEL: `mcp.tool.name != "pods_delete"`},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := authz.New(authz.Config{}, authz.Deps{Registry: &reg, Policy: policy.NewEngine(set)})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, tool := range []string{"kube_pods_list", "kube_pods_delete"} {
		d := s.Decide(context.Background(), &authz.Request{
			Method:  "POST",
			Path:    "/mcp",
			Host:    "mcp.example.com",
			Headers: map[string]string{"content-type": "application/json"},
			Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `"}}`),
		})
		if d.Allow {
			fmt.Println("allowed:", d.Headers)
			continue
		}
		fmt.Println("denied:", d.Status, string(d.Body()))
	}
	// Output:
	// allowed: [{x-mcp-method tools/call} {x-mcp-servername mcp-test/kubernetes-mcp} {x-mcp-toolname pods_list}]
	// denied: 403 {"jsonrpc":"2.0","id":1,"error":{"code":-32003,"message":"forbidden","data":{"reason":"tool_denied"}}}
}
