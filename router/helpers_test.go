package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// testAuthz stands in for authz (the consumer interface): it hands each
// upstream a per-server token, hides tools whose name starts with "secret"
// and denies server-wide methods (logging/setLevel, roots/list_changed) on
// servers whose name holds "muted".
type testAuthz struct {
	mu      sync.Mutex
	visible int // calls of Visible
}

func (a *testAuthz) UpstreamAuthorization(_ context.Context, caller, server string) (string, error) {
	if caller == "" {
		return "", fmt.Errorf("no caller")
	}
	if v, ok := upstreamTokens.Load(server); ok {
		return v.(string), nil
	}
	v, _ := upstreamTokens.LoadOrStore(server, "Bearer up-"+server)
	return v.(string), nil
}

// upstreamTokens holds each server's token once made, as authz keeps the
// tokens it exchanged: handing one out costs the router nothing.
var upstreamTokens sync.Map

func (a *testAuthz) Visible(_ context.Context, caller string, targets []policy.Target) ([]bool, error) {
	a.mu.Lock()
	a.visible++
	a.mu.Unlock()
	out := make([]bool, len(targets))
	for i, t := range targets {
		out[i] = !strings.HasPrefix(t.Tool, "secret") && !strings.Contains(t.Resource, "secret") &&
			(t.Method == "" || !strings.Contains(t.Server, "muted"))
	}
	return out, nil
}

// testIssuer is the issuer of the callers of the tests.
const testIssuer = "https://idp.test/realms/a"

// signer adds the x-mcp-authz assertion authz would add, signing each body
// for the subject (of testIssuer) it is set to, and the caller's
// Authorization.
type signer struct {
	base    http.RoundTripper
	s       *assertion.Signer
	mu      sync.Mutex
	subject string
	skip    bool // send no assertion
	mangle  bool // sign another body
}

func (t *signer) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		body = b
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	var m struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(body, &m)
	t.mu.Lock()
	sub, skip, mangle := t.subject, t.skip, t.mangle
	t.mu.Unlock()
	signed := body
	if mangle {
		signed = append(bytes.Clone(body), ' ')
	}
	if !skip {
		v, err := t.s.Sign(assertion.Claims{Method: m.Method, Issuer: testIssuer, Subject: sub, BodyHash: assertion.BodyHash(signed)})
		if err != nil {
			return nil, err
		}
		req.Header.Set(assertion.Header, v)
	}
	req.Header.Set("Authorization", "Bearer caller-"+sub)
	return t.base.RoundTrip(req)
}

// env is a router in front of real go-sdk MCP servers.
type env struct {
	t       *testing.T
	key     assertion.Key
	reg     *registry.Registry
	auth    *testAuthz
	router  *Router
	front   *httptest.Server
	servers map[string]*httptest.Server
	keyFile string
}

func newEnv(t *testing.T, mod func(*Config), servers ...registry.Server) *env {
	t.Helper()
	return newEnvWith(t, func(c *Config, _ *Deps) {
		if mod != nil {
			mod(c)
		}
	}, servers...)
}

// newEnvWith is newEnv whose mod also sets the router's Deps (the clock,
// the audit trail...).
func newEnvWith(t *testing.T, mod func(*Config, *Deps), servers ...registry.Server) *env {
	t.Helper()
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, key: key, reg: &registry.Registry{}, auth: &testAuthz{}, servers: map[string]*httptest.Server{}}
	e.keyFile = writeSessionKey(t, "k1")
	e.store(servers...)
	c := Config{SessionKeyFiles: []string{e.keyFile}}
	d := Deps{Registry: e.reg, Authorizer: e.auth, AssertionKey: key, Logger: testLogger(t)}
	if mod != nil {
		mod(&c, &d)
	}
	e.router = newRouter(t, c, d)
	watch(t, e.router)
	e.front = httptest.NewServer(e.router.Handler())
	t.Cleanup(e.front.Close)
	t.Cleanup(e.router.Close) // before the server's Close: GET streams end
	return e
}

// newRouter is the one place tests build a Router (tests of New's own
// errors aside): New, closed when the test ends. It starts nothing, as New
// does not: see watch.
func newRouter(t testing.TB, c Config, d Deps) *Router {
	t.Helper()
	r, err := New(c, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// watch runs r.Watch, as Start does, until the test ends: for a Router
// served through its Handler.
func watch(t testing.TB, r *Router) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(t.Context())
	}()
	t.Cleanup(func() {
		r.Close()
		<-done
	})
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func writeSessionKey(t *testing.T, seed string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), seed)
	k := []byte(strings.Repeat(seed, 32)[:32])
	if err := os.WriteFile(f, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (e *env) store(servers ...registry.Server) {
	e.t.Helper()
	snap, err := registry.NewSnapshot(servers)
	if err != nil {
		e.t.Fatal(err)
	}
	e.reg.Store(snap)
}

// client connects a go-sdk client through the router as subject.
func (e *env) client(subject string, opts *mcp.ClientOptions, mods ...func(*mcp.StreamableClientTransport)) (*mcp.ClientSession, *signer) {
	e.t.Helper()
	return connect(e.t, e.front.URL, e.key, subject, opts, mods...)
}

func connect(t *testing.T, url string, key assertion.Key, subject string, opts *mcp.ClientOptions, mods ...func(*mcp.StreamableClientTransport)) (*mcp.ClientSession, *signer) {
	t.Helper()
	// The tests of sessions speak 2025-11-25 (go-sdk's default is
	// 2026-07-28, stateless): see stateless_test.go for the other.
	return dial(t, url, key, subject, connectVersion, mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts), mods...)
}

// dial connects c through the router at url as subject, speaking version,
// with mods applied to its transport; the session is closed when the test
// ends.
func dial(t *testing.T, url string, key assertion.Key, subject, version string, c *mcp.Client, mods ...func(*mcp.StreamableClientTransport)) (*mcp.ClientSession, *signer) {
	t.Helper()
	sg := &signer{base: http.DefaultTransport, s: assertion.NewSigner(key), subject: subject}
	tr := &mcp.StreamableClientTransport{Endpoint: url + "/mcp", HTTPClient: &http.Client{Transport: sg}, MaxRetries: -1}
	for _, m := range mods {
		m(tr)
	}
	cs, err := c.Connect(t.Context(), tr, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect %s: %v", version, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, sg
}

// connectVersion is the revision connect's clients speak.
const connectVersion = "2025-11-25"

type echoIn struct {
	Text string `json:"text"`
}

type addIn struct {
	A int `json:"a"`
	B int `json:"b"`
}

// alphaServer is a go-sdk MCP server with an echo tool, a tool that streams
// progress, one that asks the client (elicitation), a slow one and a tool
// that policy hides.
func alphaServer(t *testing.T) *httptest.Server { return serve(t, alphaMCP(), false) }

func alphaMCP() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "alpha", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echoes"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		auth := req.Extra.Header.Get("Authorization")
		return text(in.Text + "|" + auth), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		for i := 1; i <= 3; i++ {
			if err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: req.Params.GetProgressToken(), Progress: float64(i), Total: 3, Message: fmt.Sprint("step ", i),
			}); err != nil {
				return nil, nil, err
			}
		}
		return text("done"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "ask"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		res, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
			Message:         in.Text,
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}}},
		})
		if err != nil {
			return nil, nil, err
		}
		return text(fmt.Sprint(res.Action, ":", res.Content["answer"])), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "slow"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		select {
		case <-time.After(5 * time.Second):
		case <-ctx.Done():
		}
		return text("late"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "secret_tool"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text("secret"), nil, nil
	})
	return s
}

// betaServer is a go-sdk MCP server answering in JSON with a tool, a
// prompt and a resource.
func betaServer(t *testing.T) *httptest.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "beta", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "add"}, func(ctx context.Context, req *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, any, error) {
		return text(fmt.Sprint(in.A + in.B)), nil, nil
	})
	s.AddPrompt(&mcp.Prompt{Name: "greet"}, func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "hello " + req.Params.Arguments["who"]}}}}, nil
	})
	s.AddResource(&mcp.Resource{URI: "file:///beta/readme", Name: "readme", MIMEType: "text/plain"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "beta readme"}}}, nil
	})
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "file:///beta/notes/{name}", Name: "notes"}, func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "note " + strings.TrimPrefix(req.Params.URI, "file:///beta/notes/")}}}, nil
	})
	return serve(t, s, true)
}

func serve(t testing.TB, s *mcp.Server, jsonResponse bool) *httptest.Server {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func resultText(t *testing.T, r *mcp.CallToolResult) string {
	t.Helper()
	if r == nil || len(r.Content) != 1 {
		t.Fatalf("result %+v", r)
	}
	tc, ok := r.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("content %T", r.Content[0])
	}
	return tc.Text
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatalf("tools: %v", err)
		}
		names = append(names, tool.Name)
	}
	return names
}

// twoServers starts alpha and beta and a router in front of them.
func twoServers(t *testing.T, mod func(*Config)) (*env, *httptest.Server, *httptest.Server) {
	t.Helper()
	return twoServersWith(t, func(c *Config, _ *Deps) {
		if mod != nil {
			mod(c)
		}
	})
}

// twoServersWith is twoServers whose mod also sets the router's Deps.
func twoServersWith(t *testing.T, mod func(*Config, *Deps)) (*env, *httptest.Server, *httptest.Server) {
	a, b := alphaServer(t), betaServer(t)
	e := newEnvWith(t, mod,
		registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL},
		registry.Server{Name: "ns/beta", Prefix: "beta_", URL: b.URL},
	)
	return e, a, b
}

// raw is one HTTP exchange with the router, outside the go-sdk client.
type raw struct {
	status int
	header http.Header
	body   string
}

// do sends method with body to the router (any of url) with an assertion
// for subject of testIssuer over body; mod may change the request.
func do(t *testing.T, url string, key assertion.Key, method, sid, subject, body string, mod func(*http.Request)) raw {
	t.Helper()
	return doAs(t, url, key, method, sid, testIssuer, subject, body, mod)
}

// doAs is do for a subject of issuer.
func doAs(t *testing.T, url string, key assertion.Key, method, sid, issuer, subject, body string, mod func(*http.Request)) raw {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer caller-"+subject)
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	var m struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal([]byte(body), &m)
	v, err := assertion.NewSigner(key).Sign(assertion.Claims{Method: m.Method, Issuer: issuer, Subject: subject, BodyHash: assertion.BodyHash([]byte(body))})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(assertion.Header, v)
	if mod != nil {
		mod(req)
	}
	return roundTrip(t, req)
}

// cancelRequest sends alice's notifications/cancelled with params on session
// sid; the router answers it 202.
func cancelRequest(t *testing.T, e *env, sid, params string) {
	t.Helper()
	r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":`+params+`}`, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
}

// roundTrip sends req and reads its whole answer.
func roundTrip(t *testing.T, req *http.Request) raw {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return raw{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// initRaw opens a session for subject and returns its id.
func initRaw(t *testing.T, url string, key assertion.Key, subject string) string {
	t.Helper()
	r := do(t, url, key, http.MethodPost, "", subject, initBody, nil)
	sid := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %s", r.status, r.body)
	}
	return sid
}

func newServer(t *testing.T, r *Router) string {
	s := httptest.NewServer(r.Handler())
	t.Cleanup(s.Close)
	t.Cleanup(r.Close)
	return s.URL
}

// alternate sends each request to the next of urls, counting them.
type alternate struct {
	mu   sync.Mutex
	urls []string
	n    int
	hits map[string]int
}

func (a *alternate) RoundTrip(req *http.Request) (*http.Response, error) {
	a.mu.Lock()
	u := a.urls[a.n%len(a.urls)]
	a.n++
	if a.hits == nil {
		a.hits = map[string]int{}
	}
	a.hits[u]++
	a.mu.Unlock()
	req = req.Clone(req.Context())
	req.URL.Host = strings.TrimPrefix(u, "http://")
	req.Host = req.URL.Host
	return http.DefaultTransport.RoundTrip(req)
}
