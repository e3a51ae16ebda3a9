package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
)

// forger adds an x-mcp-authz assertion of its own to every request: signed
// with a key of the attacker's, for the very body sent and a method that
// names no server, as a client that tries to vouch for itself would.
type forger struct{ key assertion.Key }

func (f forger) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	v, err := assertion.NewSigner(f.key).Sign(assertion.Claims{Method: "tools/call", BodyHash: assertion.BodyHash(body)})
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.Header.Set(assertion.Header, v)
	return http.DefaultTransport.RoundTrip(req)
}

// TestServeInProcess: with the front, authz and the router in one process,
// the front calls authz in process (authz.Server.Decide) and hands allowed
// requests to the router in process, and a client
// that sends its own x-mcp-authz assertion gains nothing by it: a call the
// policy denies is denied and never reaches the server, an allowed call
// runs on authz's own assertion (the client's is replaced), and the same
// forged assertion sent to the router's own listener is refused.
func TestServeInProcess(t *testing.T) {
	up := echoUpstream(t)

	authzAddr, gatewayAddr, routerAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := write(t, t.TempDir(), "mcp-authz.yaml", fmt.Sprintf(`authz: {listen: %s}
gateway: {listen: %s, upstream: "http://%s"}
router: {listen: %s}
servers:
  - {name: test/echo, prefix: echo_, url: %q}
policies:
  - name: no-forbidden
    cel: 'mcp.method != "tools/call" || mcp.tool.name != "forbidden"'
`, authzAddr, gatewayAddr, routerAddr, routerAddr, up.URL))
	ctx, cancel := context.WithCancel(t.Context())
	var stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, io.Discard, &stderr) }()
	defer func() {
		cancel()
		if c := <-done; c != 0 {
			t.Errorf("serve exited %d:\n%s", c, stderr.String())
		}
	}()

	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	forged := &http.Client{Transport: forger{key: key}}
	connectTo := func(addr string) (*mcp.ClientSession, error) {
		c := mcp.NewClient(&mcp.Implementation{Name: "attacker", Version: "1"}, nil)
		return c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + addr + "/mcp", HTTPClient: forged, MaxRetries: -1},
			&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	}
	var cs *mcp.ClientSession
	for deadline := time.Now().Add(10 * time.Second); ; {
		if cs, err = connectTo(gatewayAddr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect through the front: %v\nlog:\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer cs.Close()
	if !strings.Contains(stderr.String(), "front forwards to the router in process") {
		t.Fatalf("the front does not hand requests to the router in process:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "front calls authz in process") {
		t.Fatalf("the front does not call authz in process:\n%s", stderr.String())
	}

	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo_say", Arguments: map[string]any{"text": "hello"}})
	if err != nil || res.IsError {
		t.Fatalf("allowed call with a forged assertion beside it: %+v %v", res, err)
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != "hello" {
		t.Errorf("echo_say = %+v", res.Content)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo_forbidden", Arguments: map[string]any{"text": "x"}}); err == nil {
		t.Error("echo_forbidden was allowed on a forged assertion")
	}
	if direct, err := connectTo(routerAddr); err == nil {
		direct.Close()
		t.Error("the router's listener took a forged assertion")
	}
}

// TestServesRouter: the front reaches the router in process only when its
// upstream is exactly the router's listen address; any other upstream (a
// path, another host or port, https, credentials) stays on HTTP.
func TestServesRouter(t *testing.T) {
	for _, tc := range []struct {
		name, upstream, listen string
		want                   bool
	}{
		{name: "listen address", upstream: "http://127.0.0.1:9081", listen: "127.0.0.1:9081", want: true},
		{name: "with a slash", upstream: "http://127.0.0.1:9081/", listen: "127.0.0.1:9081", want: true},
		{name: "router default listen", upstream: "http://127.0.0.1:8081", listen: "", want: true},
		{name: "other port", upstream: "http://127.0.0.1:9082", listen: "127.0.0.1:9081"},
		{name: "other host", upstream: "http://router.internal:9081", listen: "127.0.0.1:9081"},
		{name: "a path", upstream: "http://127.0.0.1:9081/base", listen: "127.0.0.1:9081"},
		{name: "https", upstream: "https://127.0.0.1:9081", listen: "127.0.0.1:9081"},
		{name: "a query", upstream: "http://127.0.0.1:9081?x=1", listen: "127.0.0.1:9081"},
		{name: "credentials", upstream: "http://u:p@127.0.0.1:9081", listen: "127.0.0.1:9081"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := servesRouter(tc.upstream, tc.listen); got != tc.want {
				t.Errorf("servesRouter(%q, %q) = %v, want %v", tc.upstream, tc.listen, got, tc.want)
			}
		})
	}
}

// TestPprofLoopbackOnly: serve --pprof takes a loopback address only, and
// refuses any other before anything starts.
func TestPprofLoopbackOnly(t *testing.T) {
	cfg := write(t, t.TempDir(), "mcp-authz.yaml", "authz: {listen: 127.0.0.1:0}\n")
	for _, tc := range []struct {
		name, addr string
	}{
		{name: "any address", addr: ":6060"},
		{name: "all interfaces", addr: "0.0.0.0:6060"},
		{name: "a host name", addr: "localhost:6060"},
		{name: "another address", addr: "192.0.2.1:6060"},
		{name: "no port", addr: "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(t.Context(), []string{"serve", "--config", cfg, "--pprof", tc.addr}, io.Discard, &stderr); code != exitError {
				t.Errorf("exit %d, want %d:\n%s", code, exitError, stderr.String())
			}
			if !strings.Contains(stderr.String(), "--pprof") {
				t.Errorf("error does not name --pprof:\n%s", stderr.String())
			}
		})
	}
	// On loopback, the profiles are served while serve runs.
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var stderr syncbuf.Buffer
	go func() { done <- run(ctx, []string{"serve", "--config", cfg, "--pprof", addr}, io.Discard, &stderr) }()
	defer func() {
		cancel()
		<-done
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		code, body, err := get(ctx, "http://"+addr+"/debug/pprof/cmdline")
		if err == nil && code == http.StatusOK && body != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/debug/pprof/cmdline: %d %q %v\n%s", code, body, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
