package catalog

import (
	"encoding/json"
	"testing"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// TestItemMeta: a server's category, hint and tags reach each of its list
// entries under _meta, merged with the _meta the server sent, whose keys
// always win; the rest of the entry is kept as sent.
func TestItemMeta(t *testing.T) {
	c := &Catalog{answer: upstream.AnswerOptions(1 << 20)}
	described := &registry.Server{Name: "ns/u", Prefix: "user_", Category: []string{"identity"}, Hint: `who "calls"`, Tags: []string{"per-user", "b"}}
	plain := &registry.Server{Name: "ns/p", Prefix: "p_"}
	const all = `"mcp-authz.dev/category":["identity"],"mcp-authz.dev/hint":"who \"calls\"","mcp-authz.dev/tags":["per-user","b"]`
	tests := []struct {
		name string
		k    *Kind
		srv  *registry.Server
		in   string
		want string
	}{
		{name: "no _meta", k: Tools, srv: described,
			in:   `{"name":"whoami","inputSchema":{"type":"object"}}`,
			want: `{"_meta":{` + all + `},"name":"user_whoami","inputSchema":{"type":"object"}}`},
		{name: "empty _meta", k: Tools, srv: described,
			in:   `{"name":"whoami","_meta":{ }}`,
			want: `{"name":"user_whoami","_meta":{` + all + ` }}`},
		{name: "_meta of the server's own", k: Tools, srv: described,
			in:   `{"_meta":{"mcp-authz.dev/hint":"mine","x":1},"name":"whoami"}`,
			want: `{"_meta":{"mcp-authz.dev/category":["identity"],"mcp-authz.dev/tags":["per-user","b"],"mcp-authz.dev/hint":"mine","x":1},"name":"user_whoami"}`},
		{name: "all keys the server's own", k: Tools, srv: described,
			in:   `{"name":"whoami","_meta":{"mcp-authz.dev/category":"c","mcp-authz.dev/hint":null,"mcp-authz.dev/tags":[]}}`,
			want: `{"name":"user_whoami","_meta":{"mcp-authz.dev/category":"c","mcp-authz.dev/hint":null,"mcp-authz.dev/tags":[]}}`},
		{name: "_meta not an object", k: Tools, srv: described,
			in:   `{"name":"whoami","_meta":null}`,
			want: `{"name":"user_whoami","_meta":null}`},
		{name: "a resource", k: Resources, srv: described,
			in:   `{"uri":"file:///a","name":"a"}`,
			want: `{"_meta":{` + all + `},"uri":"file:///a","name":"a"}`},
		{name: "a server without any", k: Tools, srv: plain,
			in:   `{"name":"whoami"}`,
			want: `{"name":"p_whoami"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it, ok := c.makeItem(tc.k, tc.srv, json.RawMessage(tc.in))
			if !ok {
				t.Fatal("item refused")
			}
			if string(it.Raw) != tc.want {
				t.Errorf("item\n got %s\nwant %s", it.Raw, tc.want)
			}
			if !json.Valid(it.Raw) {
				t.Errorf("not JSON: %s", it.Raw)
			}
		})
	}
}
