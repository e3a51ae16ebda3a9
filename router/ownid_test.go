package router

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// TestStatelessSameIDs: one caller's stateless (2026-07-28) requests to a
// server that speaks only 2025 revisions share the router's upstream
// session with it; two clients of that caller (each numbering its ids from
// 1, as go-sdk's do) with calls in flight at once must both be answered,
// each with its own answer and its own id: the router gives each request
// an id of its own upstream (a go-sdk server refuses a duplicate id in
// flight).
func TestStatelessSameIDs(t *testing.T) {
	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	s := mcp.NewServer(&mcp.Implementation{Name: "legacy", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25"}})
	mcp.AddTool(s, &mcp.Tool{Name: "wait"}, func(ctx context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		return text(in.Text), nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(up.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/legacy", Prefix: "up_", URL: up.URL})

	var wg sync.WaitGroup
	answers := make([]rpcAnswer, 2)
	raws := make([]raw, 2)
	for i, text := range []string{"first", "second"} {
		wg.Go(func() {
			raws[i] = do(t, e.front.URL, e.key, http.MethodPost, "", "alice",
				statelessBody("tools/call", "2026-07-28", `"name":"up_wait","arguments":{"text":"`+text+`"}`),
				statelessHeaders2026("tools/call", "up_wait", "2026-07-28"))
		})
	}
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			close(release)
			wg.Wait()
			t.Fatalf("the calls did not both reach the server: %d %s / %d %s", raws[0].status, raws[0].body, raws[1].status, raws[1].body)
		}
	}
	close(release)
	wg.Wait()
	for i, text := range []string{"first", "second"} {
		answers[i] = decodeAnswer(t, raws[i])
		if raws[i].status != http.StatusOK || answers[i].Error != nil || !strings.Contains(string(answers[i].Result["content"]), text) {
			t.Errorf("call %q: %d %s", text, raws[i].status, raws[i].body)
		}
		if !strings.Contains(raws[i].body, `"id":7`) {
			t.Errorf("call %q answered with another id: %s", text, raws[i].body)
		}
	}
}
