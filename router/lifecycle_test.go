package router

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

func TestNew(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	edPub := write("ed.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	short := write("short", []byte("0123456789"))
	b64 := write("b64", []byte("MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\n"))
	for _, tc := range []struct {
		name    string
		c       Config
		wantErr bool
	}{
		{name: "no assertion key", c: Config{}, wantErr: true},
		{name: "ed25519 public key file", c: Config{AssertionKeyFile: edPub}},
		{name: "missing assertion key file", c: Config{AssertionKeyFile: filepath.Join(dir, "nope")}, wantErr: true},
		{name: "short session key", c: Config{AssertionKeyFile: edPub, SessionKeyFiles: []string{short}}, wantErr: true},
		{name: "missing session key", c: Config{AssertionKeyFile: edPub, SessionKeyFiles: []string{filepath.Join(dir, "nope")}}, wantErr: true},
		{name: "base64 session key", c: Config{AssertionKeyFile: edPub, SessionKeyFiles: []string{b64}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := New(tc.c, Deps{Registry: &registry.Registry{}})
			if (err != nil) != tc.wantErr {
				t.Fatalf("New: %v, want error %v", err, tc.wantErr)
			}
			if r != nil {
				r.Close()
			}
		})
	}
}

// TestDelete: closing the client ends the upstream sessions it opened too.
func TestDelete(t *testing.T) {
	var deletes atomic.Int32
	s := alphaMCP()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete && r.Header.Get("Mcp-Session-Id") != "" {
			deletes.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: up.URL})
	cs, _ := e.client("alice", nil)
	// Upstream sessions open on first use: listing opens the one with alpha.
	if _, err := cs.ListTools(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	if deletes.Load() != 1 {
		t.Errorf("%d upstream DELETEs, want 1", deletes.Load())
	}
}

func TestResponseLimit(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "big", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "big"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text(strings.Repeat("x", 8<<10)), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "small"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text("ok"), nil, nil
	})
	for _, jsonResponse := range []bool{true, false} {
		up := serve(t, s, jsonResponse)
		e := newEnv(t, func(c *Config) { c.MaxResponseBytes = 4 << 10 }, registry.Server{Name: "ns/big", Prefix: "big_", URL: up.URL})
		cs, _ := e.client("alice", nil)
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "big_big", Arguments: map[string]any{"text": ""}}); err == nil {
			t.Errorf("json %v: an answer over the limit went through", jsonResponse)
		}
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "big_small", Arguments: map[string]any{"text": ""}}); err != nil {
			t.Errorf("json %v: small answer: %v", jsonResponse, err)
		}
	}
}

// TestTargetedCall: when authz resolved the server (claims.Server) and the
// assertion names the Authorization it set (claims.Credential), the router
// forwards that; any other header received is the caller's own and is
// never forwarded (the router asks the Authorizer); a disagreement on the
// server is refused.
func TestTargetedCall(t *testing.T) {
	e, _, _ := twoServers(t, nil)
	sid := initRaw(t, e.front.URL, e.key, "alice")
	body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"alpha_echo","arguments":{"text":"t"}}}`
	sign := func(server, credential string) func(*http.Request) {
		return func(r *http.Request) {
			v, err := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "tools/call", Server: server, Tool: "echo", Issuer: testIssuer, Subject: "alice",
				Credential: credential, BodyHash: assertion.BodyHash([]byte(body))})
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set(assertion.Header, v)
			r.Header.Set("Authorization", "Bearer exchanged-for-alpha")
		}
	}
	named := assertion.CredentialHash("Bearer exchanged-for-alpha")
	for _, tc := range []struct {
		name, server, credential string
		status                   int
		want                     string
	}{
		{name: "authz resolved the same server and set the token", server: "ns/alpha", credential: named, status: http.StatusOK, want: "t|Bearer exchanged-for-alpha"},
		{name: "authz resolved the same server and set none", server: "ns/alpha", status: http.StatusOK, want: "t|Bearer up-ns/alpha"},
		{name: "authz set another token", server: "ns/alpha", credential: assertion.CredentialHash("Bearer other"), status: http.StatusOK, want: "t|Bearer up-ns/alpha"},
		{name: "router resolves alone", server: "", credential: named, status: http.StatusOK, want: "t|Bearer up-ns/alpha"},
		{name: "authz resolved another server", server: "ns/beta", credential: named, status: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", body, sign(tc.server, tc.credential))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.want != "" && !strings.Contains(r.body, tc.want) {
				t.Errorf("body %s lacks %q", r.body, tc.want)
			}
		})
	}
}

type failingAuthz struct{ testAuthz }

func (*failingAuthz) Visible(context.Context, string, []policy.Target) ([]bool, error) {
	return nil, errors.New("token service down")
}

// TestFilterFails: when the filter cannot decide, every list fails closed.
func TestFilterFails(t *testing.T) {
	e, _, _ := twoServersWith(t, func(_ *Config, d *Deps) { d.Authorizer = &failingAuthz{} })
	sid := initRaw(t, e.front.URL, e.key, "alice")
	for _, tc := range []struct{ name, body, entry string }{
		{name: "tools", body: listBody, entry: "alpha_echo"},
		{name: "prompts", body: `{"jsonrpc":"2.0","id":4,"method":"prompts/list"}`, entry: "beta_greet"},
		{name: "resources", body: `{"jsonrpc":"2.0","id":5,"method":"resources/list"}`, entry: "file:///beta/readme"},
		{name: "templates", body: `{"jsonrpc":"2.0","id":6,"method":"resources/templates/list"}`, entry: "file:///beta/notes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", tc.body, nil)
			if !strings.Contains(r.body, `"error"`) || strings.Contains(r.body, tc.entry) {
				t.Errorf("list with a failing filter: %s", r.body)
			}
		})
	}
}

// TestShutdownDrains: ending Start's context lets a call in flight finish
// while the client's GET stream is ended.
func TestShutdownDrains(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	s := mcp.NewServer(&mcp.Implementation{Name: "hold", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "hold"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		close(entered)
		<-release
		return text("held"), nil, nil
	})
	up := serve(t, s, false)
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	snap, err := registry.NewSnapshot([]registry.Server{{Name: "ns/hold", Prefix: "hold_", URL: up.URL}})
	if err != nil {
		t.Fatal(err)
	}
	reg.Store(snap)
	r := newRouter(t, Config{}, Deps{Registry: reg, Authorizer: &testAuthz{}, AssertionKey: key, Logger: testLogger(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx, ln) }()
	// The router ends GET streams at shutdown; a go-sdk client without
	// retries would take that as the end of its session, so it opens none.
	cs, _ := connect(t, "http://"+ln.Addr().String(), key, "alice", nil, func(tr *mcp.StreamableClientTransport) { tr.DisableStandaloneSSE = true })
	called := make(chan error, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "hold_hold", Arguments: map[string]any{"text": ""}})
		if err == nil && resultText(t, res) != "held" {
			err = errors.New("wrong answer")
		}
		called <- err
	}()
	select {
	case <-entered:
	case err := <-called:
		t.Fatalf("call ended early: %v", err)
	}
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a call in flight", err)
	case err := <-called:
		t.Fatalf("call ended before release: %v", err)
	default:
	}
	close(release)
	if err := <-called; err != nil {
		t.Errorf("call in flight: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestCancel: the client's notifications/cancelled reaches the upstream
// running the call.
func TestCancel(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	s := mcp.NewServer(&mcp.Implementation{Name: "wait", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "wait"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, nil, ctx.Err()
	})
	up := serve(t, s, false)
	e := newEnv(t, nil, registry.Server{Name: "ns/wait", Prefix: "wait_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	done := make(chan raw, 1)
	go func() {
		done <- do(t, e.front.URL, e.key, http.MethodPost, sid, "alice",
			`{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"wait_wait","arguments":{"text":""}}}`, nil)
	}()
	// In flight, and at the upstream: a cancellation that came before the
	// session's upstream session was open would reach no server.
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not reach the upstream")
	}
	if n := e.router.fwd.InFlight(); n != 1 {
		t.Fatalf("%d calls in flight, want 1", n)
	}
	cancelRequest(t, e, sid, `{"requestId":"call-1","reason":"user"}`)
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream call was not cancelled")
	}
	<-done
}

// TestCancelBeforeUpstream: a client's notifications/cancelled that comes
// while its call is still opening the session's upstream session ends the
// call there: the call never reaches the server, the client's request
// returns at once, and no failure is counted against the server.
func TestCancelBeforeUpstream(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	s := mcp.NewServer(&mcp.Implementation{Name: "slowinit", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "t"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		calls.Add(1)
		return text("t"), nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == "" {
			select { // the server is slow to open a session
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	defer close(release)
	e := newEnv(t, func(c *Config) { c.InitTimeout = time.Minute }, registry.Server{Name: "ns/slow", Prefix: "s_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	done := make(chan raw, 1)
	go func() {
		done <- do(t, e.front.URL, e.key, http.MethodPost, sid, "alice",
			`{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"s_t","arguments":{"text":""}}}`, nil)
	}()
	waitFor(t, "the call in flight", func() bool { return e.router.fwd.InFlight() == 1 })
	cancelRequest(t, e, sid, `{"requestId":"c1"}`)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled call still waits for the upstream session")
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the server ran the cancelled call %d times", n)
	}
	if n := e.router.UpstreamFailures.Load(); n != 0 {
		t.Errorf("%d upstream failures counted for a cancelled call", n)
	}
}

// TestRootsChanged: the client's roots/list_changed reaches the upstreams.
func TestRootsChanged(t *testing.T) {
	got := make(chan struct{}, 4)
	s := mcp.NewServer(&mcp.Implementation{Name: "roots", Version: "1"}, &mcp.ServerOptions{
		//nolint:staticcheck // roots are deprecated in 2026-07-28, still served to older clients
		RootsListChangedHandler: func(context.Context, *mcp.RootsListChangedRequest) { got <- struct{}{} },
	})
	mcp.AddTool(s, &mcp.Tool{Name: "t"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text("t"), nil, nil
	})
	up := serve(t, s, true)
	e := newEnv(t, nil, registry.Server{Name: "ns/roots", Prefix: "r_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	// Upstream sessions open on first use: the call opens the one with roots.
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"r_t","arguments":{"text":""}}}`
	if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", call, nil); r.status != http.StatusOK {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d", r.status)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream did not get roots/list_changed")
	}
}

// pickyAuthz gives bob no token for ns/beta.
type pickyAuthz struct{ testAuthz }

func (a *pickyAuthz) UpstreamAuthorization(ctx context.Context, caller, server string) (string, error) {
	if caller == "Bearer caller-bob" && server == "ns/beta" {
		return "", errors.New("token service refused")
	}
	return a.testAuthz.UpstreamAuthorization(ctx, caller, server)
}

// TestCallerFailureNotCached: a caller who may not reach a server does not
// hide it from the next caller.
func TestCallerFailureNotCached(t *testing.T) {
	e, _, _ := twoServersWith(t, func(_ *Config, d *Deps) { d.Authorizer = &pickyAuthz{} })
	bob, _ := e.client("bob", nil)
	if got := strings.Join(toolNames(t, bob), ","); strings.Contains(got, "beta_") || !strings.Contains(got, "alpha_echo") {
		t.Errorf("bob sees %s", got)
	}
	alice, _ := e.client("alice", nil)
	if got := strings.Join(toolNames(t, alice), ","); !strings.Contains(got, "beta_add") {
		t.Errorf("alice sees %s", got)
	}
	if n := e.router.UpstreamFailures.Load(); n != 0 {
		t.Errorf("%d upstream failures counted for a caller's refusal", n)
	}
}
