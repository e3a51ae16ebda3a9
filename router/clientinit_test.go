package router

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// TestClientInitLimit: a client's capabilities and clientInfo are kept
// whole up to maxClientInit bytes together, and reach the servers as sent
// (an upstream initialize carries them); over it the request is refused
// with -32602 naming the limit (a 2025 initialize with 200, as its other
// invalid params; a stateless request with 400, as its other invalid
// _meta), no session is created and no server is contacted. Never cut.
func TestClientInitLimit(t *testing.T) {
	// pad is a title (in clientInfo) or an experimental capability that
	// makes capabilities and clientInfo n bytes together.
	const mark = "padpadpad"
	pad := func(n int, inCaps bool) (caps, info string) {
		caps, info = `{}`, `{"name":"raw","version":"1"}`
		if inCaps {
			caps = `{"experimental":{"pad":"` + mark + strings.Repeat("x", n-len(caps)-len(info)-len(`{"experimental":{"pad":""}}`)+len(`{}`)-len(mark)) + `"}}`
		} else {
			info = `{"name":"raw","version":"1","title":"` + mark + strings.Repeat("x", n-len(caps)-len(info)-len(`,"title":""`)-len(mark)) + `"}`
		}
		if len(caps)+len(info) != n {
			t.Fatalf("padded to %d, want %d", len(caps)+len(info), n)
		}
		return caps, info
	}
	const call = `"name":"leg_echo","arguments":{"text":"x"}`
	for _, tc := range []struct {
		name      string
		stateless bool
		size      int
		inCaps    bool
		accepted  bool
	}{
		{name: "2025 initialize at the limit", size: maxClientInit, accepted: true},
		{name: "2025 initialize a byte over", size: maxClientInit + 1},
		{name: "2025 initialize, capabilities alone over", size: maxClientInit + 1, inCaps: true},
		{name: "2026 request at the limit", stateless: true, size: maxClientInit, accepted: true},
		{name: "2026 request a byte over", stateless: true, size: maxClientInit + 1},
		{name: "2026 request, capabilities alone over", stateless: true, size: maxClientInit + 1, inCaps: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A server of sessions only: the router initializes an upstream
			// session with the client's capabilities and clientInfo, for a
			// stateless caller too.
			s := mcp.NewServer(&mcp.Implementation{Name: "legacy", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25"}})
			mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
				return text(in.Text), nil, nil
			})
			up := record(t, s, false)
			e := newEnv(t, nil, registry.Server{Name: "ns/leg", Prefix: "leg_", URL: up.URL})
			caps, info := pad(tc.size, tc.inCaps)
			var r raw
			var sid string
			if tc.stateless {
				body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
					`"io.modelcontextprotocol/clientCapabilities":` + caps + `,"io.modelcontextprotocol/clientInfo":` + info + `},` + call + `}}`
				r = do(t, e.front.URL, e.key, http.MethodPost, "", "alice", body, statelessHeaders2026("tools/call", "leg_echo", "2026-07-28"))
			} else {
				body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":` + caps + `,"clientInfo":` + info + `}}`
				r = do(t, e.front.URL, e.key, http.MethodPost, "", "alice", body, nil)
				sid = r.header.Get("Mcp-Session-Id")
			}
			a := decodeAnswer(t, r)
			if !tc.accepted {
				want := http.StatusOK
				if tc.stateless {
					want = http.StatusBadRequest
				}
				if r.status != want || a.Error == nil || a.Error.Code != -32602 || !strings.Contains(r.body, strconv.Itoa(maxClientInit)+" bytes") {
					t.Fatalf("answer %d %s, want %d with -32602 naming the limit", r.status, r.body, want)
				}
				if sid != "" {
					t.Errorf("a session was created: %q", sid)
				}
				if got := up.requests(); len(got) != 0 {
					t.Errorf("the server was contacted: %+v", got)
				}
				return
			}
			if r.status != http.StatusOK || a.Error != nil {
				t.Fatalf("answer %d %s", r.status, r.body)
			}
			if !tc.stateless {
				body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{` + call + `}}`
				if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", body, nil); r.status != http.StatusOK || !strings.Contains(r.body, `"text":"x"`) {
					t.Fatalf("call: %d %s", r.status, r.body)
				}
			}
			var inits int
			for _, s := range up.requests() {
				if s.rpc == "initialize" {
					inits++
					if !strings.Contains(s.body, mark) {
						t.Errorf("the upstream initialize lost the client's padded field: %.200s", s.body)
					}
				}
			}
			if inits != 1 {
				t.Errorf("%d upstream initializes, want 1", inits)
			}
		})
	}
}
