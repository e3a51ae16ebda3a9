package router

import (
	"context"
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-authz/mcp-authz/registry"
)

// namedTools is a go-sdk MCP server whose tools answer with the server's
// name.
func namedTools(t *testing.T, server string, tools ...string) string {
	s := mcp.NewServer(&mcp.Implementation{Name: server, Version: "1"}, nil)
	for _, name := range tools {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(context.Context, *mcp.CallToolRequest, echoIn) (*mcp.CallToolResult, any, error) {
			return text(server), nil, nil
		})
	}
	return serve(t, s, true).URL
}

// TestListShadowedNames: with nested prefixes (kube_ and kube_admin_) and a
// server without one, a name one server advertises that resolves, prefixed,
// to another server is left out of the list (once, counted and logged) and
// the name stays the other server's: every listed name is called where the
// list says. Adding the server with the longer prefix takes effect at once.
func TestListShadowedNames(t *testing.T) {
	outer := registry.Server{Name: "ns/outer", Prefix: "kube_", URL: namedTools(t, "outer", "pods_list", "admin_delete")}
	inner := registry.Server{Name: "ns/inner", Prefix: "kube_admin_", URL: namedTools(t, "inner", "delete", "get")}
	bare := registry.Server{Name: "ns/bare", URL: namedTools(t, "bare", "hello", "kube_pods_list", "kube_admin_get")}
	e := newEnv(t, nil, outer, bare)
	shadowed := func(server string) float64 {
		return testutil.ToFloat64(e.router.metrics.shadowed.WithLabelValues(server, "tools/list"))
	}
	tests := []struct {
		name    string
		servers []registry.Server
		want    map[string]string // listed name -> the server that answers it
		counts  map[string]float64
	}{
		{
			name:    "kube_ and none",
			servers: []registry.Server{outer, bare},
			want: map[string]string{
				"kube_pods_list": "outer", "kube_admin_delete": "outer", "hello": "bare",
			},
			// bare's kube_pods_list and kube_admin_get: names of outer's
			counts: map[string]float64{"ns/bare": 2, "ns/outer": 0},
		},
		{
			name:    "kube_admin_ added",
			servers: []registry.Server{outer, inner, bare},
			want: map[string]string{
				"kube_pods_list": "outer", "kube_admin_delete": "inner", "kube_admin_get": "inner", "hello": "bare",
			},
			// outer's admin_delete, bare's two again (counters add up)
			counts: map[string]float64{"ns/bare": 2 + 2, "ns/outer": 1, "ns/inner": 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.store(tc.servers...)
			cs, _ := e.client("alice", nil)
			names := toolNames(t, cs)
			var want []string
			for n := range tc.want {
				want = append(want, n)
			}
			slices.Sort(want)
			slices.Sort(names)
			if diff := cmpStrings(want, names); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}
			for name, server := range tc.want {
				res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{"text": "x"}})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := resultText(t, res); got != server {
					t.Errorf("%s answered by %s, want %s", name, got, server)
				}
			}
			for server, n := range tc.counts {
				if got := shadowed(server); got != n {
					t.Errorf("shadowed names of %s counted %v, want %v", server, got, n)
				}
			}
		})
	}
}
