package router

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
)

// chatty is a go-sdk server with a tool that logs at three levels and a
// count of the roots/list_changed notifications it received.
func chatty(t *testing.T) (string, *atomic.Int32) {
	var roots atomic.Int32
	s := mcp.NewServer(&mcp.Implementation{Name: "chatty", Version: "1"}, &mcp.ServerOptions{
		RootsListChangedHandler: func(context.Context, *mcp.RootsListChangedRequest) { roots.Add(1) }, //nolint:staticcheck // roots are deprecated in 2026-07-28, still served to 2025 clients
	})
	mcp.AddTool(s, &mcp.Tool{Name: "logs"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		for _, l := range []mcp.LoggingLevel{"debug", "info", "error"} { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
			if err := req.Session.Log(ctx, &mcp.LoggingMessageParams{Level: l, Data: in.Text + " " + string(l)}); err != nil { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
				return nil, nil, err
			}
		}
		return text("logged"), nil, nil
	})
	return serve(t, s, false).URL, &roots
}

// TestFanOutDecided: logging/setLevel and notifications/roots/list_changed,
// which the router passes to every server of a session, reach only the
// servers the policy allows that method on (policy.Target.Method; here
// testAuthz denies them on servers named "muted"): a denied server never
// gets the level (go-sdk then sends no log at all), neither when the level
// is set nor when a session with it opens later, and never hears of roots.
func TestFanOutDecided(t *testing.T) {
	openURL, openRoots := chatty(t)
	mutedURL, mutedRoots := chatty(t)
	lateURL, _ := chatty(t)
	e := newEnv(t, nil,
		registry.Server{Name: "ns/open", Prefix: "open_", URL: openURL},
		registry.Server{Name: "ns/muted", Prefix: "muted_", URL: mutedURL})
	var mu sync.Mutex
	var logs []string
	client := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, &mcp.ClientOptions{LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
		mu.Lock()
		logs = append(logs, req.Params.Data.(string))
		mu.Unlock()
	}})
	sg := &signer{base: http.DefaultTransport, s: assertion.NewSigner(e.key), subject: "alice"}
	tr := &mcp.StreamableClientTransport{Endpoint: e.front.URL + "/mcp", HTTPClient: &http.Client{Transport: sg}, MaxRetries: -1}
	cs, err := client.Connect(t.Context(), tr, &mcp.ClientSessionOptions{ProtocolVersion: connectVersion})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	// Both upstream sessions exist before the level is set.
	for _, name := range []string{"open_logs", "muted_logs"} {
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{"text": "before"}}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := cs.SetLoggingLevel(t.Context(), &mcp.SetLoggingLevelParams{Level: "info"}); err != nil { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
		t.Fatalf("setLevel: %v", err)
	}
	// A server registered after the level was set: denied too.
	e.store(registry.Server{Name: "ns/open", Prefix: "open_", URL: openURL},
		registry.Server{Name: "ns/muted", Prefix: "muted_", URL: mutedURL},
		registry.Server{Name: "ns/muted-late", Prefix: "late_", URL: lateURL})
	for _, name := range []string{"muted_logs", "late_logs", "open_logs"} {
		if res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name, Arguments: map[string]any{"text": name}}); err != nil || resultText(t, res) != "logged" {
			t.Fatalf("%s: %v", name, err)
		}
	}
	waitFor(t, "the open server's messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(logs, ","), "open_logs error")
	})
	mu.Lock()
	if got := strings.Join(logs, ","); got != "open_logs info,open_logs error" {
		t.Errorf("logs %q, want only the open server's info and error (the level reached no muted server)", got)
	}
	mu.Unlock()

	client.AddRoots(&mcp.Root{URI: "file:///work", Name: "work"}) //nolint:staticcheck // roots are deprecated in 2026-07-28, still served to 2025 clients
	waitFor(t, "roots/list_changed at the open server", func() bool { return openRoots.Load() == 1 })
	// The open server heard it: had the muted one been sent it, it was sent
	// at the same time. Give it the same moment to arrive.
	time.Sleep(100 * time.Millisecond)
	if n := mutedRoots.Load(); n != 0 {
		t.Errorf("the muted server got %d roots/list_changed", n)
	}
}
