//go:build integration

//nolint:staticcheck // sampling is deprecated in 2026-07-28 (SEP-2577), still served: this test bridges it.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// startInputServer runs a go-sdk server of one generation whose confirm
// and secret_confirm tools ask the client (elicitation) and whose sample
// tool samples its model: "modern" speaks only 2026-07-28, statelessly,
// and asks with an InputRequiredResult (SEP-2322); "legacy" speaks only
// 2025 revisions, with sessions, and asks with server-to-client requests
// during the call. Each tool answers what it got, the requestState of the
// final request (modern) and that request's Authorization. It returns the
// server's MCP URL.
func startInputServer(t *testing.T, gen string) string {
	t.Helper()
	opts := &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25", "2025-06-18"}}
	if gen == "modern" {
		opts = &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: gen, Version: "1"}, opts)
	schema := &jsonschema.Schema{Type: "object", Properties: map[string]*jsonschema.Schema{"answer": {Type: "string"}}}
	sampling := &mcp.CreateMessageParams{MaxTokens: 10, Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "capital of France?"}}}}
	type in struct {
		Text string `json:"text"`
	}
	done := func(req *mcp.CallToolRequest, got string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: got + "|" + req.Params.RequestState + "|" + req.Extra.Header.Get("Authorization")}}}
	}
	for _, name := range []string{"confirm", "secret_confirm", "sample"} {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, arg in) (*mcp.CallToolResult, any, error) {
			if gen == "legacy" {
				e, err := req.Session.Elicit(ctx, &mcp.ElicitParams{Message: arg.Text, RequestedSchema: schema})
				if err != nil {
					return nil, nil, err
				}
				return done(req, fmt.Sprint("confirm:", e.Action, ":", e.Content["answer"])), nil, nil
			}
			if name == "sample" {
				r, ok := req.Params.InputResponses["llm"].(*mcp.CreateMessageWithToolsResult)
				if !ok {
					return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"llm": sampling}}, nil, nil
				}
				return done(req, fmt.Sprint("sample:", r.Model, ":", r.Content[0].(*mcp.TextContent).Text)), nil, nil
			}
			e, ok := req.Params.InputResponses["confirm"].(*mcp.ElicitResult)
			if !ok {
				return &mcp.CallToolResult{
					InputRequests: mcp.InputRequestMap{"confirm": &mcp.ElicitParams{Message: arg.Text, RequestedSchema: schema}},
					RequestState:  "state:" + arg.Text,
				}, nil, nil
			}
			return done(req, fmt.Sprint("confirm:", e.Action, ":", e.Content["answer"])), nil, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: gen == "modern"})
	return "http://" + serve(t, "", h).Addr + "/mcp"
}

// inputOptions answers elicitation "yes" and sampling "Paris" (model m1);
// legacy leaves go-sdk's own MRTR handling off, as a 2025 client has none.
func inputOptions(legacy bool) *mcp.ClientOptions {
	o := &mcp.ClientOptions{
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "yes"}}, nil
		},
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m1", Role: "assistant", Content: &mcp.TextContent{Text: "Paris"}}, nil
		},
	}
	if legacy {
		o.MultiRoundTrip = &mcp.MultiRoundTripOptions{Disabled: true}
	}
	return o
}

// connectVersion connects a go-sdk client with token speaking version
// ("" for go-sdk's default, 2026-07-28).
func connectVersion(t *testing.T, endpoint, token, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	var so *mcp.ClientSessionOptions
	if version != "" {
		so = &mcp.ClientSessionOptions{ProtocolVersion: version}
	}
	return dial(t, mcp.NewClient(&mcp.Implementation{Name: "e2e-mrtr", Version: "1"}, opts), bearerTransport(endpoint, token), so)
}

// statelessCall is a 2026-07-28 tools/call of name from a client that
// declares elicitation and sampling, with more params members.
func statelessCall(id int, name, more string) string {
	p := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"sampling":{}},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}},"name":%q,"arguments":{"text":"sure?"}`, id, name)
	if more != "" {
		p += "," + more
	}
	return p + "}}"
}

// rpc is a JSON-RPC answer, from JSON or the last event of SSE.
type rpc struct {
	Result map[string]json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// postStateless posts a 2026-07-28 tools/call of name with token and
// returns the HTTP status and the answer.
func postStateless(t *testing.T, endpoint, token, name, body string) (int, rpc) {
	t.Helper()
	resp, b := post(t.Context(), t, endpoint, body, map[string]string{
		"Authorization": "Bearer " + token, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": name,
	})
	data := string(b)
	if strings.HasPrefix(data, "event:") || strings.HasPrefix(data, "data:") {
		for line := range strings.Lines(string(b)) {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				data = d
			}
		}
	}
	var a rpc
	if err := json.Unmarshal([]byte(data), &a); err != nil {
		t.Fatalf("answer %d %q: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, a
}

// TestMRTR is issue 12's multi round-trip requests (SEP-2322) through front
// -> authz -> router with the dev provider's token exchange and real go-sdk
// clients and servers: between 2026-07-28 peers the InputRequiredResult
// and the retry pass through and the retry is authorized as a new request
// (refused for another caller, for the tool it names, and once the policy
// stops allowing the tool); a 2025-11-25 client reaches a server that
// speaks only 2026-07-28 (the router asks it and retries), and a
// 2026-07-28 client reaches a server that speaks only 2025 revisions (the
// router holds the upstream call for the retry).
func TestMRTR(t *testing.T) {
	p := startIdP(t, "")
	modern, legacy := startInputServer(t, "modern"), startInputServer(t, "legacy")
	policyPath := writeFile(t, t.TempDir(), "mrtr.cel", `mcp.method != "tools/call" || (identity.preferred_username == "alice" && !mcp.tool.name.startsWith("secret"))`)
	a := startAggregate(t, 1, identityConfig(p)+fmt.Sprintf(`servers:
  - name: mcp-test/weather
    prefix: weather_
    url: %s
  - name: default/mcp-tool
    prefix: tool_
    url: %s
policies:
  - name: mrtr
    file: %s
`, modern, legacy, policyPath))
	alice, bob := p.login(t, "alice"), p.login(t, "bob")

	for _, tc := range []struct{ name, version, tool, want string }{
		{"2026 client, 2026 server, elicitation", "", "weather_confirm", "confirm:accept:yes|state:sure?|Bearer "},
		{"2026 client, 2026 server, sampling", "", "weather_sample", "sample:m1:Paris||Bearer "},
		{"2025 client, 2026 server, elicitation", sessionVersion, "weather_confirm", "confirm:accept:yes|state:sure?|Bearer "},
		{"2025 client, 2026 server, sampling", sessionVersion, "weather_sample", "sample:m1:Paris||Bearer "},
		{"2026 client, 2025 server, elicitation", "", "tool_confirm", "confirm:accept:yes||Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := connectVersion(t, a.front, alice, tc.version, inputOptions(tc.version != ""))
			got, err := callTool(t, cs, &mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{"text": "sure?"}})
			if err != nil || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q %v, want %q and the exchanged token", got, err, tc.want)
			}
			if strings.Contains(got, alice) {
				t.Error("the caller's own token reached the server")
			}
		})
	}

	t.Run("held call bound to its caller and tool", func(t *testing.T) {
		status, first := postStateless(t, a.front, alice, "tool_confirm", statelessCall(1, "tool_confirm", ""))
		var state string
		_ = json.Unmarshal(first.Result["requestState"], &state)
		if status != http.StatusOK || string(first.Result["resultType"]) != `"input_required"` || state == "" {
			t.Fatalf("first: %d %+v", status, first)
		}
		retry := func(name string) string {
			return statelessCall(2, name, `"inputResponses":{"mcp-authz":{"action":"accept","content":{"answer":"ok"}}},"requestState":`+string(first.Result["requestState"]))
		}
		other := "A"
		if state[10] == 'A' {
			other = "B"
		}
		tampered := strings.Replace(retry("tool_confirm"), state, state[:10]+other+state[11:], 1)
		if _, got := postStateless(t, a.front, alice, "tool_confirm", tampered); got.Error == nil || got.Error.Code != -32602 {
			t.Errorf("tampered requestState: %+v", got)
		}
		if status, got := postStateless(t, a.front, bob, "tool_confirm", retry("tool_confirm")); status != http.StatusForbidden {
			t.Errorf("bob's retry: %d %+v", status, got)
		}
		if _, got := postStateless(t, a.front, alice, "tool_sample", retry("tool_sample")); got.Error == nil || got.Error.Code != -32602 {
			t.Errorf("retry naming another tool: %+v", got)
		}
		status, got := postStateless(t, a.front, alice, "tool_confirm", retry("tool_confirm"))
		if status != http.StatusOK || got.Error != nil || !strings.Contains(string(got.Result["content"]), "confirm:accept:ok") {
			t.Fatalf("alice's retry: %d %+v", status, got)
		}
	})

	// Last: it changes the policy.
	t.Run("retry authorized as a new request", func(t *testing.T) {
		status, first := postStateless(t, a.front, alice, "weather_confirm", statelessCall(1, "weather_confirm", ""))
		if status != http.StatusOK || string(first.Result["resultType"]) != `"input_required"` || string(first.Result["requestState"]) != `"state:sure?"` {
			t.Fatalf("first: %d %+v", status, first)
		}
		retry := func(name string) string {
			return statelessCall(2, name, `"inputResponses":{"confirm":{"action":"accept","content":{"answer":"ok"}}},"requestState":`+string(first.Result["requestState"]))
		}
		for _, tc := range []struct{ name, token, tool string }{
			{"another caller", bob, "weather_confirm"},
			{"a tool the policy denies", alice, "weather_secret_confirm"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, got := postStateless(t, a.front, tc.token, tc.tool, retry(tc.tool))
				if status != http.StatusForbidden || got.Error == nil || !strings.Contains(string(got.Error.Data), "tool_denied") {
					t.Errorf("%d %+v", status, got)
				}
			})
		}
		status, got := postStateless(t, a.front, alice, "weather_confirm", retry("weather_confirm"))
		if status != http.StatusOK || !strings.Contains(string(got.Result["content"]), "confirm:accept:ok|state:sure?|Bearer ") {
			t.Fatalf("alice's retry: %d %+v", status, got)
		}
		replaceFile(t, policyPath, `mcp.method != "tools/call" || mcp.tool.name == "sample"`)
		waitFor(t, "the edited policy to refuse the retry", 10*time.Second, func() bool {
			status, _ := postStateless(t, a.front, alice, "weather_confirm", retry("weather_confirm"))
			return status == http.StatusForbidden
		})
	})
	a.noTokenInLogs(t, alice)
}
