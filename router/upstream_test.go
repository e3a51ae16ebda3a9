package router

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
)

// badServer is a fake MCP server: a real one cannot be made to misbehave on
// demand. It initializes and lists properly; each tool fails its call in
// its own way.
func badServer(t *testing.T) *httptest.Server {
	tools := []string{"garbage", "nonmcp", "wrongid", "http500", "slow", "cutoff", "unauth", "html"}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		b, _ := io.ReadAll(r.Body)
		m, err := mcpparse.Parse(b, mcpparse.Options{})
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		answer := func(result string) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(forward.ResultBody(m.ID, []byte(result)))
		}
		switch m.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "bad-1")
			answer(`{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"bad","version":"1"}}`)
			return
		case "notifications/initialized":
			w.WriteHeader(http.StatusAccepted)
			return
		case "tools/list":
			var list []string
			for _, n := range tools {
				list = append(list, `{"name":"`+n+`","inputSchema":{"type":"object"}}`)
			}
			answer(`{"tools":[` + strings.Join(list, ",") + `]}`)
			return
		case "tools/call":
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(forward.ErrorBody(m.ID, forward.CodeNoMethod, "method not found"))
			return
		}
		switch m.Name { // no name: no tool answers
		case "garbage":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("<<garbage>>"))
		case "nonmcp":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"hello":"world"}`))
		case "wrongid":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(forward.ResultBody(json.RawMessage(`"other"`), []byte(`{"content":[]}`)))
		case "http500":
			w.WriteHeader(http.StatusInternalServerError)
		case "slow":
			<-r.Context().Done()
		case "cutoff":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"x\"}}\n\n"))
			http.NewResponseController(w).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		case "unauth":
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="http://bad/.well-known/oauth-protected-resource"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html></html>"))
		}
	})
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestUpstreamMisbehaves(t *testing.T) {
	a, bad := alphaServer(t), badServer(t)
	e := newEnv(t, func(c *Config) { c.CallTimeout = 300 * time.Millisecond },
		registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL},
		registry.Server{Name: "ns/bad", Prefix: "bad_", URL: bad.URL},
	)
	cs, _ := e.client("alice", nil)
	for _, tool := range []string{"garbage", "nonmcp", "wrongid", "http500", "slow", "cutoff", "html"} {
		t.Run(tool, func(t *testing.T) {
			_, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "bad_" + tool, Arguments: map[string]any{}})
			if err == nil || !strings.Contains(err.Error(), "upstream") {
				t.Fatalf("err = %v, want a JSON-RPC error about the upstream", err)
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "alpha_echo", Arguments: map[string]any{"text": "still"}})
			if err != nil {
				t.Fatalf("session did not survive: %v", err)
			}
			if got := resultText(t, res); !strings.HasPrefix(got, "still|") {
				t.Errorf("got %q", got)
			}
		})
	}
	t.Run("a server without prompts is no failure", func(t *testing.T) {
		before := e.router.UpstreamFailures.Load()
		if _, err := cs.ListPrompts(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		if n := e.router.UpstreamFailures.Load(); n != before {
			t.Errorf("%d upstream failures for method not found", n-before)
		}
	})
	t.Run("unauthorized upstream", func(t *testing.T) {
		sid := initRaw(t, e.front.URL, e.key, "alice")
		r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice",
			`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"bad_unauth","arguments":{}}}`, nil)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("WWW-Authenticate"), "resource_metadata=") {
			t.Errorf("status %d, WWW-Authenticate %q", r.status, r.header.Get("WWW-Authenticate"))
		}
	})
}

// TestUpstreamDown kills one upstream: the other's tools stay listed and
// callable.
func TestUpstreamDown(t *testing.T) {
	e, _, b := twoServers(t, nil)
	cs, _ := e.client("alice", nil)
	b.Listener.Close()
	b.CloseClientConnections()
	failures := e.router.UpstreamFailures.Load()
	want := []string{"alpha_ask", "alpha_echo", "alpha_progress", "alpha_slow"}
	if got := toolNames(t, cs); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("tools %v, want %v", got, want)
	}
	after := e.router.UpstreamFailures.Load()
	if after == failures {
		t.Error("the failing server was not counted")
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(e.router); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "mcp_authz_router_upstream_failures_total"); err != nil || n == 0 {
		t.Errorf("failure series: %d, %v", n, err)
	}
	if v := testutil.ToFloat64(e.router.metrics.failures.WithLabelValues("ns/beta", "tools/list")); v != 1 {
		t.Errorf("ns/beta tools/list failures = %v, want 1", v)
	}
	toolNames(t, cs)
	if n := e.router.UpstreamFailures.Load(); n != after {
		t.Errorf("the dead server was asked again at once (%d failures, then %d)", after, n)
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "alpha_echo", Arguments: map[string]any{"text": "x"}}); err != nil {
		t.Errorf("alpha: %v", err)
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "beta_add", Arguments: map[string]any{"a": 1, "b": 1}}); err == nil {
		t.Error("call to the dead server succeeded")
	}
}

// swappable serves whatever handler it holds.
type swappable struct{ h atomic.Pointer[http.Handler] }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

func (s *swappable) set(h http.Handler) { s.h.Store(&h) }

// TestUpstreamSessionLost restarts an upstream (it forgets its sessions and
// answers 404): the router opens a new session, once, transparently.
func TestUpstreamSessionLost(t *testing.T) {
	newHandler := func() http.Handler {
		s := alphaMCP()
		return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	}
	sw := &swappable{}
	sw.set(newHandler())
	up := httptest.NewServer(sw)
	t.Cleanup(up.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: up.URL})
	cs, _ := e.client("alice", nil)
	for i := range 3 {
		sw.set(newHandler())
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "alpha_echo", Arguments: map[string]any{"text": "again"}})
		if err != nil {
			t.Fatalf("call %d after the upstream restarted: %v", i, err)
		}
		if got := resultText(t, res); !strings.HasPrefix(got, "again|") {
			t.Errorf("got %q", got)
		}
	}
	sw.set(newHandler())
	if n := len(toolNames(t, cs)); n != 4 {
		t.Errorf("%d tools after restart", n)
	}
}

// TestLateServer registers a server after initialize: it is listed and
// callable, initialised on first use.
func TestLateServer(t *testing.T) {
	a, b := alphaServer(t), betaServer(t)
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL})
	changed := make(chan struct{}, 8)
	cs, _ := e.client("alice", &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	if n := len(toolNames(t, cs)); n != 4 {
		t.Fatalf("%d tools", n)
	}
	waitFor(t, "the client's GET stream", func() bool {
		return testutil.ToFloat64(e.router.metrics.streams) > 0 // counted once the stream is in the hub
	})
	e.store(
		registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL},
		registry.Server{Name: "ns/beta", Prefix: "beta_", URL: b.URL},
	)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Error("no tools/list_changed after the registry changed")
	}
	if n := len(toolNames(t, cs)); n != 5 {
		t.Errorf("%d tools after the registration", n)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "beta_add", Arguments: map[string]any{"a": 20, "b": 22}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resultText(t, res); got != "42" {
		t.Errorf("got %q", got)
	}
}

// TestUpstreamListChanged: a tool added upstream reaches the client as
// tools/list_changed on its GET stream, and the next list shows it.
func TestUpstreamListChanged(t *testing.T) {
	s := alphaMCP()
	var streams streamWatch
	up := httptest.NewServer(streams.wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)))
	t.Cleanup(up.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: up.URL})
	changed := make(chan struct{}, 8)
	cs, _ := e.client("alice", &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	if n := len(toolNames(t, cs)); n != 4 {
		t.Fatalf("%d tools", n)
	}
	waitFor(t, "the router's upstream GET stream", func() bool { return streams.count("Bearer up-ns/alpha") > 0 })
	mcp.AddTool(s, &mcp.Tool{Name: "fresh"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text("fresh"), nil, nil
	})
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no tools/list_changed from the upstream")
	}
	names := toolNames(t, cs)
	if !strings.Contains(strings.Join(names, ","), "alpha_fresh") {
		t.Errorf("tools %v lack alpha_fresh", names)
	}
}

func TestPagination(t *testing.T) {
	e, _, _ := twoServers(t, func(c *Config) { c.PageSize = 2 })
	cs, _ := e.client("alice", nil)
	want := "alpha_ask,alpha_echo,alpha_progress,alpha_slow,beta_add"
	if got := strings.Join(toolNames(t, cs), ","); got != want {
		t.Errorf("paged tools %s, want %s", got, want)
	}
	page, err := cs.ListTools(t.Context(), nil)
	if err != nil || len(page.Tools) != 2 || page.NextCursor == "" {
		t.Fatalf("first page %+v, %v", page, err)
	}
	for _, cursor := range []string{"bogus", "bzk5"} /* "o99": an offset past the end */ {
		if _, err := cs.ListTools(t.Context(), &mcp.ListToolsParams{Cursor: cursor}); err == nil {
			t.Errorf("cursor %q accepted", cursor)
		}
	}
}

// waitFor polls cond for up to 5s; the test fails, naming what it waited
// for, if cond does not hold by then.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond) // the polling interval
	}
	t.Fatalf("timed out waiting for %s", what)
}

// streamWatch counts, by Authorization, the GET streams an upstream go-sdk
// handler has opened. The handler writes a stream's 200 while it holds the
// stream and keeps holding it until the stream is registered for delivery,
// so a notification sent once the count has risen is delivered on it.
type streamWatch struct {
	mu     sync.Mutex
	opened map[string]int
}

// wrap returns h with its GET streams counted.
func (sw *streamWatch) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w = &streamOpen{ResponseWriter: w, sw: sw, auth: r.Header.Get("Authorization")}
		}
		h.ServeHTTP(w, r)
	})
}

// count is how many GET streams sent with auth have been opened.
func (sw *streamWatch) count(auth string) int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.opened[auth]
}

// streamOpen is the ResponseWriter of one GET: its 200 counts the stream.
type streamOpen struct {
	http.ResponseWriter
	sw   *streamWatch
	auth string
}

func (s *streamOpen) WriteHeader(code int) {
	if code == http.StatusOK {
		s.sw.mu.Lock()
		if s.sw.opened == nil {
			s.sw.opened = map[string]int{}
		}
		s.sw.opened[s.auth]++
		s.sw.mu.Unlock()
	}
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController flush the stream.
func (s *streamOpen) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// TestUpstreamHangs: a server that never answers initialize is left out
// after InitTimeout; the session and the other server work.
func TestUpstreamHangs(t *testing.T) {
	a := alphaServer(t)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the router hanging up
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	e := newEnv(t, func(c *Config) { c.InitTimeout = 200 * time.Millisecond },
		registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL},
		registry.Server{Name: "ns/hang", Prefix: "hang_", URL: hang.URL},
	)
	cs, _ := e.client("alice", nil, func(tr *mcp.StreamableClientTransport) { tr.DisableStandaloneSSE = true })
	if got := strings.Join(toolNames(t, cs), ","); got != "alpha_ask,alpha_echo,alpha_progress,alpha_slow" {
		t.Errorf("tools %s", got)
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "hang_x", Arguments: map[string]any{}}); err == nil {
		t.Error("call to the hanging server succeeded")
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "alpha_echo", Arguments: map[string]any{"text": "x"}}); err != nil {
		t.Errorf("alpha: %v", err)
	}
}
