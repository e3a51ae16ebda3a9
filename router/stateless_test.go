package router

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
)

// methodLog records the methods a server received and the session ids.
type methodLog struct {
	mu       sync.Mutex
	methods  []string
	sessions map[string]bool
}

func (l *methodLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		if m := r.Header.Get("Mcp-Method"); m != "" {
			l.methods = append(l.methods, m)
		}
		if l.sessions == nil {
			l.sessions = map[string]bool{}
		}
		if s := r.Header.Get("Mcp-Session-Id"); s != "" {
			l.sessions[s] = true
		}
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *methodLog) saw(method string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.methods, method)
}

// generationServer is a go-sdk server pinned to one generation: "legacy"
// keeps sessions and speaks only 2025 revisions, "modern" is stateless and
// speaks only 2026-07-28. Its "who" tool answers the caller's
// Authorization and the upstream session the call came on.
func generationServer(t *testing.T, gen string) (*httptest.Server, *methodLog) {
	opts := &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25", "2025-06-18", "2025-03-26"}}
	if gen == "modern" {
		opts = &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: gen, Version: "1"}, opts)
	mcp.AddTool(s, &mcp.Tool{Name: "who"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text(in.Text + "|" + req.Extra.Header.Get("Authorization") + "|" + req.Extra.Header.Get("Mcp-Session-Id")), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "secret_x"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text("x"), nil, nil
	})
	log := &methodLog{}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: gen == "modern"})
	srv := httptest.NewServer(log.wrap(h))
	t.Cleanup(srv.Close)
	return srv, log
}

// connectAs connects a go-sdk client speaking version through url.
func connectAs(t *testing.T, url string, key assertion.Key, subject, version string) *mcp.ClientSession {
	t.Helper()
	cs, _ := dial(t, url, key, subject, version, mcp.NewClient(&mcp.Implementation{Name: "gen-client", Version: "1"}, nil))
	return cs
}

// generations are the pairs of client revision and server kind ("legacy":
// sessions, "modern": stateless) the tests of both generations run.
var generations = []struct{ name, client, server string }{
	{"2025 client, 2025 server", "2025-11-25", "legacy"},
	{"2025 client, 2026 server", "2025-11-25", "modern"},
	{"2026 client, 2025 server", "2026-07-28", "legacy"},
	{"2026 client, 2026 server", "2026-07-28", "modern"},
}

// TestMixedGenerations: clients of both generations reach servers of both
// through the router; the router speaks to each server in its own
// generation (no initialize to a stateless server, a session with a legacy
// one) and answers the client in the client's.
func TestMixedGenerations(t *testing.T) {
	for _, tc := range generations {
		t.Run(tc.name, func(t *testing.T) {
			up, log := generationServer(t, tc.server)
			e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
			cs := connectAs(t, e.front.URL, e.key, "alice", tc.client)
			if got := cs.InitializeResult().ProtocolVersion; got != tc.client {
				t.Fatalf("negotiated %q, want %q", got, tc.client)
			}
			if got := toolNames(t, cs); !slices.Equal(got, []string{"up_who"}) {
				t.Errorf("tools %v", got)
			}
			for range 2 {
				res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "up_who", Arguments: map[string]any{"text": "hi"}})
				if err != nil {
					t.Fatal(err)
				}
				parts := strings.Split(resultText(t, res), "|")
				if parts[0] != "hi" || parts[1] != "Bearer up-ns/up" {
					t.Errorf("call: %q", parts)
				}
				if tc.server == "modern" && parts[2] != "" {
					t.Errorf("a stateless server got a session: %q", parts[2])
				}
			}
			switch tc.server {
			case "modern":
				if log.saw("initialize") {
					t.Error("the router sent initialize to a stateless server")
				}
			case "legacy":
				if !log.saw("initialize") || len(log.sessions) != 1 {
					t.Errorf("legacy server: methods %v sessions %d", log.methods, len(log.sessions))
				}
			}
		})
	}
}

// TestStatelessPerCaller: a 2026 caller's upstream session with a legacy
// server is its own: another caller never gets it, across replicas that
// share nothing (not even a session key) each request is served.
func TestStatelessPerCaller(t *testing.T) {
	up, log := generationServer(t, "legacy")
	e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
	r2 := newRouter(t, Config{SessionKeyFiles: []string{writeSessionKey(t, "zz")}}, Deps{Registry: e.reg, Authorizer: e.auth, AssertionKey: e.key})
	front2 := newServer(t, r2)
	sessionOf := map[string]string{}
	for _, front := range []string{e.front.URL, front2} {
		for _, who := range []string{"alice", "bob"} {
			cs := connectAs(t, front, e.key, who, "2026-07-28")
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "up_who", Arguments: map[string]any{"text": who}})
			if err != nil {
				t.Fatal(err)
			}
			sid := strings.Split(resultText(t, res), "|")[2]
			if sid == "" {
				t.Fatal("no upstream session")
			}
			for other, s := range sessionOf {
				if s == sid && !strings.HasSuffix(other, who) {
					t.Errorf("%s got %s's upstream session", who, other)
				}
			}
			sessionOf[front+" "+who] = sid
		}
	}
	if len(log.sessions) != 4 {
		t.Errorf("upstream sessions: %d, want one per caller and replica", len(log.sessions))
	}
}

// statelessBody is a 2026-07-28 request body.
func statelessBody(method, version, params string) string {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + version + `","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`
	if params == "" {
		params = "{" + meta + "}"
	} else {
		params = "{" + meta + "," + params + "}"
	}
	return `{"jsonrpc":"2.0","id":7,"method":"` + method + `","params":` + params + `}`
}

func statelessHeaders2026(method, name, version string) func(*http.Request) {
	return func(r *http.Request) {
		if version != "" {
			r.Header.Set("MCP-Protocol-Version", version)
		}
		if method != "" {
			r.Header.Set("Mcp-Method", method)
		}
		if name != "" {
			r.Header.Set("Mcp-Name", name)
		}
	}
}

type rpcAnswer struct {
	Result map[string]json.RawMessage `json:"result"`
	Error  *struct {
		Code int `json:"code"`
		Data struct {
			Supported []string `json:"supported"`
			Requested string   `json:"requested"`
		} `json:"data"`
	} `json:"error"`
}

func decodeAnswer(t *testing.T, r raw) rpcAnswer {
	t.Helper()
	var a rpcAnswer
	body := r.body
	if strings.HasPrefix(body, "event:") || strings.HasPrefix(body, "data:") {
		// SSE: the last data line is the answer.
		for line := range strings.Lines(body) {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				body = d
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("answer %d %q: %v", r.status, r.body, err)
	}
	return a
}

// TestStatelessRequests: what the router answers a stateless request by
// itself, and what it refuses.
func TestStatelessRequests(t *testing.T) {
	up, _ := generationServer(t, "modern")
	e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
	call := `"name":"up_who","arguments":{"text":"x"}`
	for _, tc := range []struct {
		name       string
		body       string
		mod        func(*http.Request)
		status     int
		code       int
		checkValue func(t *testing.T, a rpcAnswer)
	}{
		{"discover", statelessBody("server/discover", "2026-07-28", ""), statelessHeaders2026("server/discover", "", "2026-07-28"), 200, 0, func(t *testing.T, a rpcAnswer) {
			var v []string
			_ = json.Unmarshal(a.Result["supportedVersions"], &v)
			if !slices.Equal(v, supportedVersions) || string(a.Result["resultType"]) != `"complete"` || a.Result["capabilities"] == nil {
				t.Errorf("discover: %v", a.Result)
			}
		}},
		{"discover without a version", `{"jsonrpc":"2.0","id":7,"method":"server/discover"}`, statelessHeaders2026("server/discover", "", ""), 200, 0, nil},
		{"unsupported version", statelessBody("tools/list", "1900-01-01", ""), statelessHeaders2026("tools/list", "", "1900-01-01"), 400, -32022, func(t *testing.T, a rpcAnswer) {
			if !slices.Equal(a.Error.Data.Supported, supportedVersions) || a.Error.Data.Requested != "1900-01-01" {
				t.Errorf("data %+v", a.Error.Data)
			}
		}},
		{"a 2025 version without a session", statelessBody("tools/list", "2025-11-25", ""), statelessHeaders2026("tools/list", "", "2025-11-25"), 400, -32022, nil},
		{"version header differs", statelessBody("tools/list", "2026-07-28", ""), statelessHeaders2026("tools/list", "", "2025-11-25"), 400, -32020, nil},
		{"no version header", statelessBody("tools/list", "2026-07-28", ""), statelessHeaders2026("tools/list", "", ""), 400, -32020, nil},
		{"no Mcp-Method", statelessBody("tools/list", "2026-07-28", ""), statelessHeaders2026("", "", "2026-07-28"), 400, -32020, nil},
		{"no Mcp-Name", statelessBody("tools/call", "2026-07-28", call), statelessHeaders2026("tools/call", "", "2026-07-28"), 400, -32020, nil},
		{"version header without _meta", `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}`, statelessHeaders2026("tools/list", "", "2026-07-28"), 400, -32602, nil},
		// Removed in 2026-07-28: 404 with -32601, as for any unknown method.
		{"removed initialize", statelessBody("initialize", "2026-07-28", ""), statelessHeaders2026("initialize", "", "2026-07-28"), 404, -32601, nil},
		{"removed ping", statelessBody("ping", "2026-07-28", ""), statelessHeaders2026("ping", "", "2026-07-28"), 404, -32601, nil},
		{"removed logging/setLevel", statelessBody("logging/setLevel", "2026-07-28", `"level":"info"`), statelessHeaders2026("logging/setLevel", "", "2026-07-28"), 404, -32601, nil},
		{"removed resources/subscribe", statelessBody("resources/subscribe", "2026-07-28", `"uri":"x://a"`), statelessHeaders2026("resources/subscribe", "x://a", "2026-07-28"), 404, -32601, nil},
		{"removed resources/unsubscribe", statelessBody("resources/unsubscribe", "2026-07-28", `"uri":"x://a"`), statelessHeaders2026("resources/unsubscribe", "x://a", "2026-07-28"), 404, -32601, nil},
		{"list", statelessBody("tools/list", "2026-07-28", ""), statelessHeaders2026("tools/list", "", "2026-07-28"), 200, 0, func(t *testing.T, a rpcAnswer) {
			// Filtered per caller (secret_x hidden): private, whatever the server said.
			if string(a.Result["resultType"]) != `"complete"` || string(a.Result["cacheScope"]) != `"private"` || a.Result["ttlMs"] == nil {
				t.Errorf("list: %v", a.Result)
			}
			if strings.Contains(string(a.Result["tools"]), "secret") {
				t.Errorf("hidden tool listed: %s", a.Result["tools"])
			}
		}},
		{"call", statelessBody("tools/call", "2026-07-28", call), statelessHeaders2026("tools/call", "up_who", "2026-07-28"), 200, 0, func(t *testing.T, a rpcAnswer) {
			if !strings.Contains(string(a.Result["content"]), "x|Bearer up-ns/up|") || string(a.Result["resultType"]) != `"complete"` {
				t.Errorf("call: %v", a.Result)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice", tc.body, tc.mod)
			a := decodeAnswer(t, r)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			switch {
			case tc.code == 0 && a.Error != nil:
				t.Fatalf("error %s", r.body)
			case tc.code != 0 && (a.Error == nil || a.Error.Code != tc.code):
				t.Fatalf("want error %d: %s", tc.code, r.body)
			}
			if tc.checkValue != nil {
				tc.checkValue(t, a)
			}
		})
	}
}

// TestStatelessNotification: a stateless client's notification (its
// notifications/cancelled above all, redundant in 2026-07-28: closing the
// request's stream cancels it) is accepted with 202 and goes nowhere; one
// with neither a session nor the 2026 version header is still refused.
func TestStatelessNotification(t *testing.T) {
	up, log := generationServer(t, "modern")
	e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
	body := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}`
	r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice", body, statelessHeaders2026("notifications/cancelled", "", "2026-07-28"))
	if r.status != http.StatusAccepted || r.body != "" {
		t.Errorf("stateless notification: %d %q, want 202 and no body", r.status, r.body)
	}
	if log.saw("notifications/cancelled") {
		t.Error("the server heard the notification")
	}
	if r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice", body, nil); r.status != http.StatusBadRequest {
		t.Errorf("notification without session or version: %d, want 400", r.status)
	}
}
