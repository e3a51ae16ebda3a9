package router

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// gamma is a go-sdk server with what the 2025 methods beyond calls need: a
// tool that logs, a prompt and a template that complete, resources to
// subscribe to, and a tool that mirrors an argument in a header.
type gamma struct {
	srv        *mcp.Server
	mu         sync.Mutex
	completed  []string // the ref names and URIs completion/complete saw
	subscribed []string
}

func newGamma(t *testing.T) (*gamma, string) {
	g := &gamma{}
	g.srv = mcp.NewServer(&mcp.Implementation{Name: "gamma", Version: "1"}, &mcp.ServerOptions{
		CompletionHandler: func(ctx context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			g.mu.Lock()
			g.completed = append(g.completed, req.Params.Ref.Type+" "+req.Params.Ref.Name+req.Params.Ref.URI)
			g.mu.Unlock()
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{req.Params.Argument.Value + "-1", req.Params.Argument.Value + "-2"}}}, nil
		},
		SubscribeHandler: func(ctx context.Context, req *mcp.SubscribeRequest) error {
			g.mu.Lock()
			g.subscribed = append(g.subscribed, req.Params.URI)
			g.mu.Unlock()
			return nil
		},
		UnsubscribeHandler: func(ctx context.Context, req *mcp.UnsubscribeRequest) error { return nil },
	})
	mcp.AddTool(g.srv, &mcp.Tool{Name: "logs"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		for _, l := range []mcp.LoggingLevel{"debug", "info", "error"} { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
			if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: l, Data: in.Text + " " + string(l)}); err != nil { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
				return nil, nil, err
			}
		}
		return text("logged"), nil, nil
	})
	g.srv.AddTool(&mcp.Tool{Name: "regional", InputSchema: json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("ok"), nil
		})
	g.srv.AddPrompt(&mcp.Prompt{Name: "greet", Arguments: []*mcp.PromptArgument{{Name: "who"}}}, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}}}, nil
	})
	for _, uri := range []string{"g://watched", "g://secret"} {
		g.srv.AddResource(&mcp.Resource{URI: uri, Name: strings.TrimPrefix(uri, "g://")}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "x"}}}, nil
		})
	}
	g.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "g://item/{id}", Name: "item"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "item"}}}, nil
	})
	return g, serve(t, g.srv, false).URL
}

// TestSetLevelAndLogging: logging/setLevel reaches the server (declared in
// initialize, answered {}), so the tool's notifications/message at or above
// the level reach the client on the call's stream; below it, none.
func TestSetLevelAndLogging(t *testing.T) {
	_, url := newGamma(t)
	_, url2 := newGamma(t) // registered later; started first, so closed after the client
	e := newEnv(t, nil, registry.Server{Name: "ns/gamma", Prefix: "gamma_", URL: url})
	var mu sync.Mutex
	var logs []string
	cs, _ := e.client("alice", &mcp.ClientOptions{LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
		mu.Lock()
		logs = append(logs, req.Params.Data.(string))
		mu.Unlock()
	}})
	if cs.InitializeResult().Capabilities.Logging == nil || cs.InitializeResult().Capabilities.Completions == nil || //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
		cs.InitializeResult().Capabilities.Resources == nil || !cs.InitializeResult().Capabilities.Resources.Subscribe {
		t.Fatalf("capabilities %+v: want logging, completions and resources.subscribe", cs.InitializeResult().Capabilities)
	}
	if err := cs.SetLoggingLevel(t.Context(), &mcp.SetLoggingLevelParams{Level: "info"}); err != nil { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
		t.Fatalf("setLevel: %v", err)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "gamma_logs", Arguments: map[string]any{"text": "m"}})
	if err != nil || resultText(t, res) != "logged" {
		t.Fatalf("call: %v", err)
	}
	// The client handles notifications apart from the answer: wait.
	waitFor(t, "the info and error messages, in order", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(logs, ",") == "m info,m error"
	})
	// Nothing more may follow (the debug message was below the level): a
	// negative check, so a window of time and no condition.
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if strings.Join(logs, ",") != "m info,m error" {
		t.Fatalf("logs %q, want only the info and error messages", logs)
	}
	logs = nil
	mu.Unlock()

	// A server registered after setLevel gets the level when the session
	// first uses it.
	e.store(registry.Server{Name: "ns/gamma", Prefix: "gamma_", URL: url}, registry.Server{Name: "ns/delta", Prefix: "delta_", URL: url2})
	if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "delta_logs", Arguments: map[string]any{"text": "late"}}); err != nil || resultText(t, res) != "logged" {
		t.Fatalf("call on the later server: %v", err)
	}
	waitFor(t, "the later server's info and error messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(logs, ",") == "late info,late error"
	})
}

// TestComplete: completion/complete reaches the prompt's server with the
// prefix stripped (ref/prompt) and the template's server (ref/resource).
func TestComplete(t *testing.T) {
	g, url := newGamma(t)
	e := newEnv(t, nil, registry.Server{Name: "ns/gamma", Prefix: "gamma_", URL: url}, registry.Server{Name: "ns/beta", Prefix: "beta_", URL: betaServer(t).URL})
	cs, _ := e.client("alice", nil)
	tests := []struct {
		name string
		ref  *mcp.CompleteReference
		seen string
	}{
		{name: "prompt", ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "gamma_greet"}, seen: "ref/prompt greet"},
		{name: "resource template", ref: &mcp.CompleteReference{Type: "ref/resource", URI: "g://item/{id}"}, seen: "ref/resource g://item/{id}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := cs.Complete(t.Context(), &mcp.CompleteParams{Ref: tt.ref, Argument: mcp.CompleteParamsArgument{Name: "who", Value: "bo"}})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(res.Completion.Values, ",") != "bo-1,bo-2" {
				t.Fatalf("values %v", res.Completion.Values)
			}
			g.mu.Lock()
			defer g.mu.Unlock()
			if len(g.completed) == 0 || g.completed[len(g.completed)-1] != tt.seen {
				t.Fatalf("server saw %q, want %q last", g.completed, tt.seen)
			}
		})
	}
	if _, err := cs.Complete(t.Context(), &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "nope_greet"}, Argument: mcp.CompleteParamsArgument{Name: "who", Value: "x"}}); err == nil {
		t.Fatal("completion of an unknown prompt succeeded")
	}
}

// TestSubscribe: resources/subscribe reaches the URI's server on the
// caller's session; notifications/resources/updated reach that session
// only, and only for URIs the policy lets it read.
func TestSubscribe(t *testing.T) {
	g, url := newGamma(t)
	e := newEnv(t, nil, registry.Server{Name: "ns/gamma", Prefix: "gamma_", URL: url})
	updates := func(subject string) (*mcp.ClientSession, chan string) {
		ch := make(chan string, 8)
		cs, _ := e.client(subject, &mcp.ClientOptions{ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) {
			ch <- req.Params.URI
		}})
		return cs, ch
	}
	alice, aliceUpdates := updates("alice")
	_, bobUpdates := updates("bob")
	for _, uri := range []string{"g://watched", "g://secret"} {
		if err := alice.Subscribe(t.Context(), &mcp.SubscribeParams{URI: uri}); err != nil {
			t.Fatalf("subscribe %s: %v", uri, err)
		}
	}
	g.mu.Lock()
	got := strings.Join(g.subscribed, ",")
	g.mu.Unlock()
	if got != "g://watched,g://secret" {
		t.Fatalf("server saw subscriptions %q", got)
	}
	// The GET stream relays the upstream's once that is open: retry until
	// the update arrives.
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		for _, uri := range []string{"g://secret", "g://watched"} {
			if err := g.srv.ResourceUpdated(t.Context(), &mcp.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case uri := <-aliceUpdates:
			if uri != "g://watched" {
				t.Fatalf("alice got an update of %s, which the policy hides", uri)
			}
			done = true
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("no update reached the subscriber")
		}
	}
	select {
	case uri := <-bobUpdates:
		t.Fatalf("bob, who did not subscribe, got an update of %s", uri)
	case <-time.After(300 * time.Millisecond):
	}
	if err := alice.Unsubscribe(t.Context(), &mcp.UnsubscribeParams{URI: "g://watched"}); err != nil {
		t.Fatalf("unsubscribe: %v", err)
	}
}

// TestParamHeaders: a tools/call's Mcp-Param-{Name} headers are checked
// against the arguments the tool marks with x-mcp-header.
func TestParamHeaders(t *testing.T) {
	_, url := newGamma(t)
	e := newEnv(t, nil, registry.Server{Name: "ns/gamma", Prefix: "gamma_", URL: url})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	call := func(tool, args string) string {
		return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`
	}
	tests := []struct {
		name    string
		body    string
		headers map[string]string
		status  int
	}{
		{name: "no header on 2025", body: call("gamma_regional", `{"region":"us"}`), status: 200},
		{name: "matching", body: call("gamma_regional", `{"region":"us"}`), headers: map[string]string{"Mcp-Param-Region": "us"}, status: 200},
		{name: "matching in base64", body: call("gamma_regional", `{"region":"us"}`), headers: map[string]string{"Mcp-Param-Region": "=?base64?dXM=?="}, status: 200},
		{name: "different", body: call("gamma_regional", `{"region":"us"}`), headers: map[string]string{"Mcp-Param-Region": "eu"}, status: 400},
		{name: "header for an absent argument", body: call("gamma_regional", `{"n":1}`), headers: map[string]string{"Mcp-Param-Region": "us"}, status: 400},
		{name: "another header missing", body: call("gamma_regional", `{"region":"us"}`), headers: map[string]string{"Mcp-Param-Zone": "a"}, status: 400},
		{name: "header on a tool that mirrors nothing", body: call("gamma_logs", `{"text":"x"}`), headers: map[string]string{"Mcp-Param-Text": "x"}, status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", tt.body, func(req *http.Request) {
				req.Header.Set("MCP-Protocol-Version", "2025-06-18")
				for k, v := range tt.headers {
					req.Header.Set(k, v)
				}
			})
			if r.status != tt.status {
				t.Fatalf("status %d (%s), want %d", r.status, r.body, tt.status)
			}
			if tt.status == 400 && !strings.Contains(r.body, "-32020") {
				t.Fatalf("body %s: want -32020", r.body)
			}
		})
	}
}
