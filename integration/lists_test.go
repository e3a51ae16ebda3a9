//go:build integration

package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// perUserServer is a go-sdk MCP server on loopback that answers each user
// (the preferred_username of the token it receives, exchanged for it) with
// that user's own tools, prompts, resources and templates, as an upstream
// showing each user their private resources does. Its lists say they may
// be cached for an hour, publicly: the router must still keep them apart.
func perUserServer(t *testing.T) string {
	t.Helper()
	var mu sync.Mutex
	servers := map[string]*mcp.Server{}
	h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		user := tokenUser(r.Header.Get("Authorization"))
		mu.Lock()
		defer mu.Unlock()
		if s, ok := servers[user]; ok {
			return s
		}
		s := mcp.NewServer(&mcp.Implementation{Name: "per-user", Version: "1"}, &mcp.ServerOptions{
			SetCacheable: func(_ context.Context, _ mcp.Request, c *mcp.Cacheable) {
				c.TTLMs, c.CacheScope = int(time.Hour/time.Millisecond), "public"
			},
		})
		for _, tool := range []string{"pods_list", "pods_delete"} {
			mcp.AddTool(s, &mcp.Tool{Name: tool}, func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: user + ":" + tool}}}, nil, nil
			})
		}
		s.AddPrompt(&mcp.Prompt{Name: user + "_report"}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
		uri := "file:///" + user + "/notes"
		s.AddResource(&mcp.Resource{URI: uri, Name: "notes"}, func(context.Context, *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, Text: user}}}, nil
		})
		s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "file:///" + user + "/files/{name}", Name: "files"},
			func(_ context.Context, r *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
				return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: r.Params.URI, Text: user}}}, nil
			})
		servers[user] = s
		return s
	}, nil)
	return "http://" + serve(t, "", h).Addr + "/mcp"
}

// tokenUser reads preferred_username from a bearer JWT without verifying
// it (the router and authz did; here it only picks the answer).
func tokenUser(authorization string) string {
	raw := strings.TrimPrefix(authorization, "Bearer ")
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "anonymous"
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "anonymous"
	}
	var c struct {
		User string `json:"preferred_username"`
	}
	if json.Unmarshal(b, &c) != nil || c.User == "" {
		return "anonymous"
	}
	return c.User
}

// listsPolicy shows a tool to the holders of its role on the server, and a
// server's prompts, resources and templates to whoever holds any role
// there: which ones is up to the upstream.
const listsPolicy = `policies:
  - name: lists
    cel: >-
      has(token.resource_access) && mcp.server in token.resource_access &&
      (mcp.method != "tools/call" || mcp.tool.name in token.resource_access[mcp.server].roles)
`

// everyEntry lists all four kinds and returns their names and URIs, sorted.
func everyEntry(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	out := []string{}
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	for _, x := range tools.Tools {
		out = append(out, x.Name)
	}
	prompts, err := cs.ListPrompts(ctx, nil)
	if err != nil {
		t.Fatalf("prompts/list: %v", err)
	}
	for _, x := range prompts.Prompts {
		out = append(out, x.Name)
	}
	res, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatalf("resources/list: %v", err)
	}
	for _, x := range res.Resources {
		out = append(out, x.URI)
	}
	tmpls, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatalf("resources/templates/list: %v", err)
	}
	for _, x := range tmpls.ResourceTemplates {
		out = append(out, x.URITemplate)
	}
	slices.Sort(out)
	return out
}

// TestListsPerUser is issue 3's walk through front -> authz -> router with
// the dev provider: an upstream answers each user with their own entries
// and says its lists may be cached. The user mcp lists first, then alice
// (both hold roles on the server): alice sees her own prompts, resources
// and templates, never mcp's, and only the tools of her roles; bob, who
// holds no role, sees no tool, prompt, resource or template.
func TestListsPerUser(t *testing.T) {
	p := startIdP(t, "")
	up := perUserServer(t)
	// The upstream's resources are file:///: with exchange on, a resource
	// is listed only when a server's resourcePrefixes claim it (authz
	// finds the server of a resources/read by them alone).
	a := startAggregate(t, 1, identityConfig(p)+kubeServer(up)+"    resourcePrefixes: [\"file:///\"]\n"+listsPolicy)

	tokens := map[string]string{}
	for _, user := range []string{"mcp", "alice", "bob"} {
		tokens[user] = p.login(t, user)
	}
	tests := []struct {
		name string
		user string
		want []string
	}{
		{name: "mcp first, filling the router's caches", user: "mcp", want: []string{
			"file:///mcp/files/{name}", "file:///mcp/notes", "kube_mcp_report", "kube_pods_delete", "kube_pods_list",
		}},
		{name: "alice after mcp: her own entries only", user: "alice", want: []string{
			"file:///alice/files/{name}", "file:///alice/notes", "kube_alice_report", "kube_pods_list",
		}},
		{name: "bob without roles: nothing", user: "bob", want: []string{}},
		{name: "mcp again, from the cache", user: "mcp", want: []string{
			"file:///mcp/files/{name}", "file:///mcp/notes", "kube_mcp_report", "kube_pods_delete", "kube_pods_list",
		}},
		{name: "alice again, from the cache", user: "alice", want: []string{
			"file:///alice/files/{name}", "file:///alice/notes", "kube_alice_report", "kube_pods_list",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := connectAs(t, a.front, tokens[tt.user], nil)
			if diff := cmp.Diff(tt.want, everyEntry(t, cs)); diff != "" {
				t.Errorf("%s's entries (-want +got):\n%s", tt.user, diff)
			}
			// What is listed can be read.
			for _, uri := range tt.want {
				if !strings.HasPrefix(uri, "file:///") || strings.Contains(uri, "{") {
					continue
				}
				res, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: uri})
				if err != nil || len(res.Contents) != 1 || res.Contents[0].Text != tt.user {
					t.Errorf("resources/read %s: %v, %v", uri, res, err)
				}
			}
		})
	}
	for _, tok := range tokens {
		a.noTokenInLogs(t, tok)
	}
}
