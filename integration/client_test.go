//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// This file holds the clients the tests play: go-sdk sessions and single
// JSON-RPC messages over HTTP.

// callTimeout bounds each MCP exchange a test makes.
const callTimeout = 30 * time.Second

// tryTimeout bounds a request to a stack that may be down (the fault tests).
const tryTimeout = 10 * time.Second

// bearer adds an Authorization header to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(req)
}

// streamWatch is a client transport that tells when a GET stream has been
// answered 200: from then on the server holds the stream and can send the
// client notifications (list_changed) on it.
type streamWatch struct {
	next   http.RoundTripper
	once   sync.Once
	opened chan struct{}
}

// watchStream wraps next (http.DefaultTransport if nil).
func watchStream(next http.RoundTripper) *streamWatch {
	if next == nil {
		next = http.DefaultTransport
	}
	return &streamWatch{next: next, opened: make(chan struct{})}
}

func (s *streamWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
		s.once.Do(func() { close(s.opened) })
	}
	return resp, err
}

// wait fails the test if no GET stream was opened within timeout.
func (s *streamWatch) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-s.opened:
	case <-time.After(timeout):
		t.Fatalf("the client's GET stream did not open within %v", timeout)
	}
}

// sessionVersion is the revision the session tests' clients speak: go-sdk
// v1.8.0 clients default to the stateless 2026-07-28, and these tests are
// about sessions (GET streams, DELETE, replicas serving one session).
const sessionVersion = "2025-11-25"

// sessionOptions pins a client to sessionVersion.
var sessionOptions = &mcp.ClientSessionOptions{ProtocolVersion: sessionVersion}

// connect opens a go-sdk client session over tr, at sessionVersion; it is
// closed when the test ends.
func connect(t *testing.T, tr *mcp.StreamableClientTransport, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	return dial(t, mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, opts), tr, sessionOptions)
}

// dial opens c's session over tr with so (nil: go-sdk's default,
// 2026-07-28); it is closed when the test ends.
func dial(t *testing.T, c *mcp.Client, tr *mcp.StreamableClientTransport, so *mcp.ClientSessionOptions) *mcp.ClientSession {
	t.Helper()
	cs, err := c.Connect(t.Context(), tr, so)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// bearerTransport is a transport to endpoint sending token, without stream
// reconnection.
func bearerTransport(endpoint, token string) *mcp.StreamableClientTransport {
	return &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearer{token: token}}, MaxRetries: -1}
}

// connectAs opens a go-sdk client session to endpoint with token, without
// stream reconnection.
func connectAs(t *testing.T, endpoint, token string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	return connect(t, bearerTransport(endpoint, token), opts)
}

// connectFault opens a go-sdk client session to endpoint without a token
// and with the SDK's default stream reconnection, over rt
// (http.DefaultTransport if nil).
func connectFault(t *testing.T, endpoint string, rt http.RoundTripper, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	tr := &mcp.StreamableClientTransport{Endpoint: endpoint}
	if rt != nil {
		tr.HTTPClient = &http.Client{Transport: rt}
	}
	return connect(t, tr, opts)
}

// listTools returns the sorted tool names the session sees.
func listTools(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	names := []string{}
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// call calls a tool within timeout and returns its text; a transport or
// protocol error or an error result is returned as an error.
func call(ctx context.Context, cs *mcp.ClientSession, p *mcp.CallToolParams, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if p.Arguments == nil {
		p.Arguments = map[string]any{}
	}
	res, err := cs.CallTool(ctx, p)
	if err != nil {
		return "", err
	}
	var text []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", strings.Join(text, " "))
	}
	return strings.Join(text, " "), nil
}

// callTool is call within callTimeout.
func callTool(t *testing.T, cs *mcp.ClientSession, p *mcp.CallToolParams) (string, error) {
	t.Helper()
	return call(t.Context(), cs, p, callTimeout)
}

// tryCall is call of a tool by name within tryTimeout.
func tryCall(ctx context.Context, cs *mcp.ClientSession, name string, args map[string]any) (string, error) {
	return call(ctx, cs, &mcp.CallToolParams{Name: name, Arguments: args}, tryTimeout)
}

// runInspector runs the MCP inspector CLI against endpoint and returns what
// it printed. The inspector needs Node 22, installed in its .bin folder.
func runInspector(t *testing.T, inspector, endpoint string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, inspector, append([]string{"--cli", endpoint, "--transport", "http"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(inspector)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"MCP_CATALOG_PATH="+filepath.Join(t.TempDir(), "mcp.json"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("inspector %q: %v\nstderr: %s\nstdout: %s", args, err, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}

// send posts one JSON-RPC message to u with the given headers and returns
// the answer with its body read.
func send(ctx context.Context, u, body string, headers map[string]string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b, nil
}

// post is send; the test fails on a transport error.
func post(ctx context.Context, t *testing.T, u, body string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := send(ctx, u, body, headers)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// tryPost is send within tryTimeout for a stack that may be down: a
// transport error is status 0 with the error text.
func tryPost(ctx context.Context, u, body string, headers map[string]string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, tryTimeout)
	defer cancel()
	resp, b, err := send(ctx, u, body, headers)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// get fetches u; the test fails on a transport error.
func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// toolCall is a tools/call message of tool name without arguments.
func toolCall(name string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":{}}}`
}
