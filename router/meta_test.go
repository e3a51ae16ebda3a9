package router

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
)

// TestListMeta: through the router, a go-sdk client sees a server's
// registration in each of its tools' _meta, beside the tool's own.
func TestListMeta(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "u", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Meta: mcp.Meta{"example.com/own": "yes", catalog.MetaHint: "the tool's"}}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text("me"), nil, nil
	})
	u := serve(t, s, false)
	e := newEnv(t, nil,
		registry.Server{Name: "ns/u", Prefix: "user_", URL: u.URL, Category: []string{"identity"}, Hint: "Tools that depend on who calls", Tags: []string{"per-user"}},
		registry.Server{Name: "ns/beta", Prefix: "beta_", URL: betaServer(t).URL},
	)
	cs, _ := e.client("alice", nil)
	got := map[string]map[string]any{}
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		got[tool.Name] = tool.Meta
	}
	want := map[string]map[string]any{
		"user_whoami": {"example.com/own": "yes", catalog.MetaHint: "the tool's", catalog.MetaCategory: []any{"identity"}, catalog.MetaTags: []any{"per-user"}},
		"beta_add":    nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tools' _meta (-want +got):\n%s", diff)
	}
}
