//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// genServers is the servers: config of a legacy and a modern startGenServer:
// mcp-test/weather (prefix weather_, resources w://) and
// mcp-test/kubernetes-mcp (prefix kube_, resources k://).
func genServers(legacy, modern *goServer) string {
	return fmt.Sprintf(`servers:
  - name: mcp-test/weather
    prefix: weather_
    url: %s
    resourcePrefixes: ["w://"]
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s
    resourcePrefixes: ["k://"]
`, legacy.url, modern.url)
}

// startGenServer runs a go-sdk v1.8.0 server pinned to one generation:
// "legacy" keeps sessions and speaks only 2025 revisions; "modern" is
// stateless and speaks only 2026-07-28. Each tool answers "<gen>:<tool>",
// each resource and the template <scheme>://items/{id} (scheme: the first
// URI's) "<gen>:<uri>", each prompt a message "<gen>:<prompt>", a
// completion "<gen>:<value>"; it accepts subscriptions. more adds to it.
func startGenServer(t *testing.T, name, gen string, tools, uris, prompts []string, more ...func(*mcp.Server)) *goServer {
	t.Helper()
	opts := &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25", "2025-06-18", "2025-03-26"}}
	if gen == "modern" {
		opts = &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}}
	}
	opts.CompletionHandler = func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
		return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{gen + ":" + req.Params.Argument.Value}}}, nil
	}
	opts.SubscribeHandler = func(context.Context, *mcp.SubscribeRequest) error { return nil }
	opts.UnsubscribeHandler = func(context.Context, *mcp.UnsubscribeRequest) error { return nil }
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, opts)
	for _, tool := range tools {
		mcp.AddTool(s, &mcp.Tool{Name: tool, Description: tool + " of " + name},
			func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: gen + ":" + tool}}}, nil, nil
			})
	}
	for _, uri := range uris {
		s.AddResource(&mcp.Resource{URI: uri, Name: uri}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: gen + ":" + req.Params.URI}}}, nil
		})
	}
	for _, p := range prompts {
		s.AddPrompt(&mcp.Prompt{Name: p}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: gen + ":" + p}}}}, nil
		})
	}
	if len(uris) > 0 {
		scheme, _, _ := strings.Cut(uris[0], "://")
		s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: scheme + "://items/{id}", Name: "items"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: gen + ":" + req.Params.URI}}}, nil
		})
	}
	for _, f := range more {
		f(s)
	}
	g := &goServer{name: name}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: gen == "modern"})
	g.srv = serve(t, "", g.record(h))
	g.url = "http://" + g.srv.Addr + "/mcp"
	return g
}

// tsStep is one step of tsclient.mjs: its result or its error.
type tsStep struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// tsOutput is what tsclient.mjs prints.
type tsOutput struct {
	Version string `json:"version"`
	Tools   struct {
		Result []string `json:"result"`
		Error  any      `json:"error"`
	} `json:"tools"`
	Calls   []tsStep `json:"calls"`
	Reads   []tsStep `json:"reads"`
	Prompts []tsStep `json:"prompts"`
}

// runTSClient runs integration/testdata/tsclient.mjs with plan as token's
// bearer (through the environment, not the command line) and decodes what
// it prints; the test skips without the SDK (MCP_AUTHZ_TSSDK).
func runTSClient(t *testing.T, token string, plan map[string]any) tsOutput {
	t.Helper()
	modules := os.Getenv("MCP_AUTHZ_TSSDK")
	if modules == "" {
		t.Skip("MCP_AUTHZ_TSSDK is not set (make e2e sets it to the node_modules of the pinned TypeScript SDK)")
	}
	p, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*callTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", repoFile("integration/testdata/tsclient.mjs"), string(p))
	cmd.Env = append(os.Environ(), "MCP_AUTHZ_TSSDK="+modules, "TSCLIENT_TOKEN="+token)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tsclient %s: %v\nstdout: %s\nstderr: %s", plan["sdk"], err, out, stderr.String())
	}
	var o tsOutput
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("tsclient output %q: %v", out, err)
	}
	t.Logf("tsclient %s: %s", plan["sdk"], out)
	return o
}

// stepText is the first text of a step's result: a tool's content, a
// resource's contents or a prompt's first message; "" on an error.
func stepText(t *testing.T, s tsStep) string {
	t.Helper()
	if s.Error != nil {
		return ""
	}
	var r struct {
		Content  []struct{ Text string } `json:"content"`
		Contents []struct{ Text string } `json:"contents"`
		Messages []struct {
			Content struct{ Text string } `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(s.Result, &r); err != nil {
		t.Fatalf("step result %s: %v", s.Result, err)
	}
	switch {
	case len(r.Content) > 0:
		return r.Content[0].Text
	case len(r.Contents) > 0:
		return r.Contents[0].Text
	case len(r.Messages) > 0:
		return r.Messages[0].Content.Text
	}
	return ""
}

// tsPolicy grants tools by the roles of the exchanged token, and prompts
// and resources unless their name or URI says secret.
const tsPolicy = `policies:
  - name: ts
    cel: >-
      mcp.method == "tools/call" ? mcp.tool.name in token.resource_access[mcp.server].roles :
      has(mcp.prompt) ? !mcp.prompt.name.startsWith("secret") :
      has(mcp.resource) ? !mcp.resource.uri.contains("secret") : false
`

// TestTypeScriptClient is build item 6 with the TypeScript SDK as the
// client: through front -> authz -> router (dev provider, token exchange)
// to two go-sdk v1.8.0 servers, one speaking only 2025-11-25 (sessions),
// one only 2026-07-28 (stateless), the newest @modelcontextprotocol/sdk
// (1.x, 2025-11-25) and its successor @modelcontextprotocol/client (2.x,
// which negotiates 2026-07-28 by server/discover) as alice list tools, call
// one on each server, read a resource and get a prompt of each. She sees
// the prefixed names of what her roles grant only; a call of a tool she is
// not granted, a read and a prompt the policy denies are refused and never
// reach a server; each server is spoken to in its own generation.
func TestTypeScriptClient(t *testing.T) {
	p := startIdP(t, "")
	legacy := startGenServer(t, "mcp-test/weather", "legacy",
		[]string{"get_forecast", "get_alerts"}, []string{"w://report", "w://secret"}, []string{"greet", "secret_prompt"})
	modern := startGenServer(t, "mcp-test/kubernetes-mcp", "modern",
		[]string{"pods_list", "pods_delete"}, []string{"k://status", "k://secret"}, []string{"summary"})
	a := startAggregate(t, 1, identityConfig(p)+genServers(legacy, modern)+tsPolicy)
	alice := p.login(t, "alice")

	for _, tc := range []struct {
		name, sdk, version string
	}{
		{"sdk 1.x, 2025-11-25", "sdk", "2025-11-25"},
		{"client 2.x, 2026-07-28", "client", "2026-07-28"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seenLegacy, seenModern := len(legacy.requests()), len(modern.requests())
			o := runTSClient(t, alice, map[string]any{
				"sdk": tc.sdk, "url": a.front,
				"calls": []map[string]any{
					{"name": "weather_get_forecast", "arguments": map[string]any{}},
					{"name": "kube_pods_list", "arguments": map[string]any{}},
					{"name": "weather_get_alerts", "arguments": map[string]any{}},
					{"name": "kube_pods_delete", "arguments": map[string]any{}},
				},
				"reads": []string{"w://report", "k://status", "w://secret", "k://secret"},
				"prompts": []map[string]any{
					{"name": "weather_greet"}, {"name": "kube_summary"}, {"name": "weather_secret_prompt"},
				},
			})
			if o.Version != tc.version {
				t.Errorf("negotiated %q, want %q", o.Version, tc.version)
			}
			if o.Tools.Error != nil {
				t.Fatalf("tools/list: %v", o.Tools.Error)
			}
			if diff := cmp.Diff([]string{"kube_pods_list", "weather_get_forecast"}, o.Tools.Result); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}
			var got []string
			for _, steps := range [][]tsStep{o.Calls, o.Reads, o.Prompts} {
				for _, s := range steps {
					got = append(got, stepText(t, s))
				}
			}
			want := []string{
				"legacy:get_forecast", "modern:pods_list", "", "",
				"legacy:w://report", "modern:k://status", "", "",
				"legacy:greet", "modern:summary", "",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("results, \"\" for a refusal (-want +got):\n%s", diff)
			}
			for i, s := range slices.Concat(o.Calls[2:], o.Reads[2:], o.Prompts[2:]) {
				if s.Error == nil || !strings.Contains(s.Error.Message, "denied") {
					t.Errorf("denied step %d: %+v, want an error naming the denial", i, s)
				}
			}
			for _, up := range []*goServer{legacy, modern} {
				for _, r := range up.requests()[map[*goServer]int{legacy: seenLegacy, modern: seenModern}[up]:] {
					if r.tool == "get_alerts" || r.tool == "pods_delete" || strings.Contains(r.body, "secret") {
						t.Errorf("%s received a denied %s: %s", up.name, r.method, r.body)
					}
				}
			}
			// Each server in its own generation, whatever the client's.
			if n := modern.count(seenModern, "initialize"); n != 0 {
				t.Errorf("the 2026-07-28 server got %d initialize", n)
			}
			for _, tc := range []struct {
				up         *goServer
				tool, want string
				session    bool
			}{
				{modern, "pods_list", "2026-07-28", false},
				{legacy, "get_forecast", "2025-11-25", true},
			} {
				calls := tc.up.calls(tc.tool)
				if len(calls) == 0 {
					t.Errorf("%s received no call of %s", tc.up.name, tc.tool)
					continue
				}
				h := calls[len(calls)-1].header
				if v, sid := h.Get("MCP-Protocol-Version"), h.Get("Mcp-Session-Id"); v != tc.want || (sid != "") != tc.session {
					t.Errorf("%s's call came as %q, session %q", tc.up.name, v, sid)
				}
			}
		})
	}
	a.noTokenInLogs(t, alice)
}
