//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// forecastServer is a go-sdk server registered as mcp-test/weather (a
// client of the dev realm, so authz can exchange for it): get_forecast logs
// at info and mirrors its region argument in Mcp-Param-Region; prompts
// greet and secret_prompt complete; w://watched and w://secret can be
// subscribed to.
type forecastServer struct {
	url string
	srv *mcp.Server
	mu  sync.Mutex
	got []string // completion refs and subscriptions, as the server saw them
}

func startForecastServer(t *testing.T) *forecastServer {
	t.Helper()
	f := &forecastServer{}
	note := func(s string) {
		f.mu.Lock()
		f.got = append(f.got, s)
		f.mu.Unlock()
	}
	f.srv = mcp.NewServer(&mcp.Implementation{Name: "weather", Version: "1"}, &mcp.ServerOptions{
		CompletionHandler: func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			note("complete " + req.Params.Ref.Name + req.Params.Ref.URI)
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{req.Params.Argument.Value + "ville"}}}, nil
		},
		SubscribeHandler: func(_ context.Context, req *mcp.SubscribeRequest) error {
			note("subscribe " + req.Params.URI)
			return nil
		},
		UnsubscribeHandler: func(_ context.Context, req *mcp.UnsubscribeRequest) error {
			note("unsubscribe " + req.Params.URI)
			return nil
		},
	})
	f.srv.AddTool(&mcp.Tool{Name: "get_forecast", InputSchema: json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`)},
		func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			for _, l := range []mcp.LoggingLevel{"debug", "info"} { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
				if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: l, Data: "forecast " + string(l)}); err != nil { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
					return nil, err
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sunny"}}}, nil
		})
	for _, name := range []string{"greet", "secret_prompt"} {
		f.srv.AddPrompt(&mcp.Prompt{Name: name, Arguments: []*mcp.PromptArgument{{Name: "city"}}}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hi"}}}}, nil
		})
	}
	for _, uri := range []string{"w://watched", "w://secret"} {
		f.srv.AddResource(&mcp.Resource{URI: uri, Name: strings.TrimPrefix(uri, "w://")}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "x"}}}, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return f.srv }, nil)
	f.url = "http://" + serve(t, "", h).Addr + "/mcp"
	return f
}

func (f *forecastServer) saw(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.got, s)
}

// protocolPolicy allows tools by role, prompts and resources (and so
// their completions and subscriptions) unless named secret, and a log level
// on the two servers of the test (logging/setLevel is decided per server it
// reaches).
const protocolPolicy = `policies:
  - name: protocol
    cel: >-
      mcp.method == "logging/setLevel" ? mcp.server in ["mcp-test/weather", "mcp-test/everything"] :
      mcp.method == "tools/call" ? mcp.tool.name in token.resource_access[mcp.server].roles :
      has(mcp.prompt) ? !mcp.prompt.name.startsWith("secret") :
      has(mcp.resource) ? !mcp.resource.uri.contains("secret") : false
`

// TestProtocol2025 walks the 2025 methods beyond calls, Origin and Host,
// and the mirrored headers through front -> authz -> router with the dev
// provider's token exchange, a go-sdk client, a go-sdk server and
// server-everything: logging/setLevel and notifications/message on the
// call's stream, completion/complete by prompt and by template,
// resources/subscribe and updates only for what the policy lets the
// caller read, 403 for a foreign Origin at the front and at a router
// reached directly, and 400 -32020 for headers that do not mirror the body.
func TestProtocol2025(t *testing.T) {
	evURL, _ := startEverything(t)
	p := startIdP(t, "")
	weather := startForecastServer(t)
	a := startAggregate(t, 1, identityConfig(p)+fmt.Sprintf(`servers:
  - name: mcp-test/weather
    prefix: weather_
    url: %s
    resourcePrefixes: ["w://"]
  - name: mcp-test/everything
    prefix: ev_
    url: %s
    resourcePrefixes: ["demo://"]
`, weather.url, evURL)+protocolPolicy)
	token := p.login(t, "alice")

	var mu sync.Mutex
	var logs, updates []string
	alice := connectAs(t, a.front, token, &mcp.ClientOptions{
		LoggingMessageHandler: func(_ context.Context, r *mcp.LoggingMessageRequest) { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
			mu.Lock()
			defer mu.Unlock()
			logs = append(logs, fmt.Sprint(r.Params.Data))
		},
		ResourceUpdatedHandler: func(_ context.Context, r *mcp.ResourceUpdatedNotificationRequest) {
			mu.Lock()
			defer mu.Unlock()
			updates = append(updates, r.Params.URI)
		},
	})
	seen := func(what string, list *[]string, match func(string) bool) {
		t.Helper()
		if !until(time.Now().Add(5*time.Second), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.ContainsFunc(*list, match)
		}) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s never arrived; got %q", what, *list)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*callTimeout)
	defer cancel()

	t.Run("logging", func(t *testing.T) {
		caps := alice.InitializeResult().Capabilities
		if caps.Logging == nil || caps.Completions == nil || caps.Resources == nil || !caps.Resources.Subscribe { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
			t.Fatalf("initialize declares %+v: want logging, completions, resources.subscribe", caps)
		}
		if err := alice.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
			t.Fatalf("setLevel: %v", err)
		}
		if got, err := callTool(t, alice, &mcp.CallToolParams{Name: "weather_get_forecast", Arguments: map[string]any{"region": "us"}}); err != nil || got != "sunny" {
			t.Fatalf("get_forecast: %q %v", got, err)
		}
		seen("the go-sdk server's info message", &logs, func(s string) bool { return s == "forecast info" })
		mu.Lock()
		debug := slices.Contains(logs, "forecast debug")
		mu.Unlock()
		if debug {
			t.Error("a debug message below the level set reached the client")
		}
	})

	t.Run("completion", func(t *testing.T) {
		res, err := alice.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "weather_greet"}, Argument: mcp.CompleteParamsArgument{Name: "city", Value: "spring"}})
		if err != nil || !slices.Equal(res.Completion.Values, []string{"springville"}) || !weather.saw("complete greet") {
			t.Fatalf("go-sdk prompt: %+v %v", res, err)
		}
		if _, err := alice.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "weather_secret_prompt"}, Argument: mcp.CompleteParamsArgument{Name: "city", Value: "x"}}); err == nil {
			t.Error("completion of a prompt the policy denies succeeded")
		}
		if weather.saw("complete secret_prompt") {
			t.Error("a denied completion reached the server")
		}
		res, err = alice.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "ev_completable-prompt"}, Argument: mcp.CompleteParamsArgument{Name: "department", Value: "Eng"}})
		if err != nil || !slices.Equal(res.Completion.Values, []string{"Engineering"}) {
			t.Fatalf("server-everything prompt: %+v %v", res, err)
		}
	})

	t.Run("subscriptions", func(t *testing.T) {
		for _, uri := range []string{"w://watched", "demo://resource/static/document/architecture.md"} {
			if err := alice.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}); err != nil {
				t.Fatalf("subscribe %s: %v", uri, err)
			}
		}
		if !weather.saw("subscribe w://watched") {
			t.Error("the go-sdk server saw no subscription")
		}
		// server-everything acknowledges a subscription with an info message.
		seen("server-everything's acknowledgement", &logs, func(s string) bool { return strings.Contains(s, "Received Subscribe Resource request") })
		if err := alice.Subscribe(ctx, &mcp.SubscribeParams{URI: "w://secret"}); err == nil || weather.saw("subscribe w://secret") {
			t.Errorf("subscription to a URI the policy denies: %v", err)
		}
		// The GET stream relays the server's once open: send until one
		// arrives (seen below fails the test if none ever does).
		until(time.Now().Add(5*time.Second), func() bool {
			if err := weather.srv.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: "w://watched"}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			return len(updates) > 0
		})
		seen("the update of w://watched", &updates, func(s string) bool { return s == "w://watched" })
		if err := alice.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "w://watched"}); err != nil || !weather.saw("unsubscribe w://watched") {
			t.Errorf("unsubscribe: %v", err)
		}
	})

	t.Run("origin and host", func(t *testing.T) {
		init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
		for _, tc := range []struct {
			name, url, origin string
			status            int
		}{
			{name: "front, loopback origin", url: a.front, origin: "http://localhost:6274", status: 200},
			{name: "front, IPv6 loopback origin", url: a.front, origin: "http://[::1]:6274", status: 200},
			{name: "front, foreign origin", url: a.front, origin: "http://evil.example.com", status: 403},
			{name: "router directly, foreign origin", url: "http://" + a.lb.backends[0] + "/mcp", origin: "http://evil.example.com", status: 403},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := post(ctx, t, tc.url, init, map[string]string{"Authorization": "Bearer " + token, "Origin": tc.origin})
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
				}
				if tc.status == 403 && (!strings.Contains(string(body), `"jsonrpc":"2.0"`) || resp.Header.Get("Mcp-Session-Id") != "") {
					t.Fatalf("refusal %s: want a JSON-RPC error and no session", body)
				}
			})
		}
	})

	t.Run("mirrored headers", func(t *testing.T) {
		call := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"weather_get_forecast","arguments":{"region":"us"}}}`
		base := map[string]string{"Authorization": "Bearer " + token, "Mcp-Session-Id": alice.ID(), "MCP-Protocol-Version": "2025-11-25"}
		for _, tc := range []struct {
			name    string
			headers map[string]string
			status  int
		}{
			{name: "matching Mcp-Param", headers: map[string]string{"Mcp-Param-Region": "us"}, status: 200},
			{name: "matching base64 Mcp-Name", headers: map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "=?base64?d2VhdGhlcl9nZXRfZm9yZWNhc3Q=?="}, status: 200},
			{name: "Mcp-Name of another tool (authz)", headers: map[string]string{"Mcp-Name": "weather_other"}, status: 400},
			{name: "Mcp-Param differs (authz)", headers: map[string]string{"Mcp-Param-Region": "eu"}, status: 400},
			{name: "Mcp-Param the tool does not declare (router)", headers: map[string]string{"Mcp-Param-Zone": "a"}, status: 400},
			{name: "2026 version without Mcp-Method (authz)", headers: map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Name": "weather_get_forecast"}, status: 400},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := map[string]string{}
				for k, v := range base {
					h[k] = v
				}
				for k, v := range tc.headers {
					h[k] = v
				}
				resp, body := post(ctx, t, a.front, call, h)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
				}
				if tc.status == 400 && !strings.Contains(string(body), "-32020") {
					t.Fatalf("body %s: want -32020", body)
				}
			})
		}
	})
	a.noTokenInLogs(t, token)
}
