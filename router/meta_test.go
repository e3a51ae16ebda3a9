package router

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// TestItemMeta: a server's category, hint and tags reach each of its list
// entries under _meta, merged with the _meta the server sent, whose keys
// always win; the rest of the entry is kept as sent.
func TestItemMeta(t *testing.T) {
	r := &Router{answer: upstream.AnswerOptions(1 << 20)}
	described := &registry.Server{Name: "ns/u", Prefix: "user_", Category: []string{"identity"}, Hint: `who "calls"`, Tags: []string{"per-user", "b"}}
	plain := &registry.Server{Name: "ns/p", Prefix: "p_"}
	const all = `"mcp-authz.dev/category":["identity"],"mcp-authz.dev/hint":"who \"calls\"","mcp-authz.dev/tags":["per-user","b"]`
	tests := []struct {
		name string
		k    *kind
		srv  *registry.Server
		in   string
		want string
	}{
		{name: "no _meta", k: toolsKind, srv: described,
			in:   `{"name":"whoami","inputSchema":{"type":"object"}}`,
			want: `{"_meta":{` + all + `},"name":"user_whoami","inputSchema":{"type":"object"}}`},
		{name: "empty _meta", k: toolsKind, srv: described,
			in:   `{"name":"whoami","_meta":{ }}`,
			want: `{"name":"user_whoami","_meta":{` + all + ` }}`},
		{name: "_meta of the server's own", k: toolsKind, srv: described,
			in:   `{"_meta":{"mcp-authz.dev/hint":"mine","x":1},"name":"whoami"}`,
			want: `{"_meta":{"mcp-authz.dev/category":["identity"],"mcp-authz.dev/tags":["per-user","b"],"mcp-authz.dev/hint":"mine","x":1},"name":"user_whoami"}`},
		{name: "all keys the server's own", k: toolsKind, srv: described,
			in:   `{"name":"whoami","_meta":{"mcp-authz.dev/category":"c","mcp-authz.dev/hint":null,"mcp-authz.dev/tags":[]}}`,
			want: `{"name":"user_whoami","_meta":{"mcp-authz.dev/category":"c","mcp-authz.dev/hint":null,"mcp-authz.dev/tags":[]}}`},
		{name: "_meta not an object", k: toolsKind, srv: described,
			in:   `{"name":"whoami","_meta":null}`,
			want: `{"name":"user_whoami","_meta":null}`},
		{name: "a resource", k: resourcesKind, srv: described,
			in:   `{"uri":"file:///a","name":"a"}`,
			want: `{"_meta":{` + all + `},"uri":"file:///a","name":"a"}`},
		{name: "a server without any", k: toolsKind, srv: plain,
			in:   `{"name":"whoami"}`,
			want: `{"name":"p_whoami"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it, ok := r.makeItem(tc.k, tc.srv, json.RawMessage(tc.in))
			if !ok {
				t.Fatal("item refused")
			}
			if string(it.raw) != tc.want {
				t.Errorf("item\n got %s\nwant %s", it.raw, tc.want)
			}
			if !json.Valid(it.raw) {
				t.Errorf("not JSON: %s", it.raw)
			}
		})
	}
}

// TestListMeta: through the router, a go-sdk client sees a server's
// registration in each of its tools' _meta, beside the tool's own.
func TestListMeta(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "u", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Meta: mcp.Meta{"example.com/own": "yes", metaHint: "the tool's"}}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
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
		"user_whoami": {"example.com/own": "yes", metaHint: "the tool's", metaCategory: []any{"identity"}, metaTags: []any{"per-user"}},
		"beta_add":    nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tools' _meta (-want +got):\n%s", diff)
	}
}
