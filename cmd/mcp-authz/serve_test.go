package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/config"
	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// get fetches url and returns its status and body.
func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

type echoIn struct {
	Text string `json:"text"`
}

// echoUpstream serves, until the test ends, an MCP server with the tools
// say (echoes its text) and forbidden (fails the test when called).
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "echo", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "say", Description: "echoes"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "forbidden", Description: "no one may call it"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		t.Error("the forbidden tool was called")
		return nil, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(up.Close)
	return up
}

// TestServe runs serve in-process with every part on: an MCP client goes
// through the front (gateway → authz → router) to a real MCP server, the
// decisions show in /metrics, and cancelling ctx stops everything.
func TestServe(t *testing.T) {
	up := echoUpstream(t)

	authzAddr, gatewayAddr, routerAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	config := fmt.Sprintf(`authz:
  listen: %s
gateway:
  listen: %s
  upstream: http://%s
router:
  listen: %s
metrics:
  listen: %s
servers:
  - name: test/echo
    prefix: echo_
    url: %s
policies:
  - name: no-forbidden
    cel: 'mcp.method != "tools/call" || mcp.tool.name != "forbidden"'
`, authzAddr, gatewayAddr, routerAddr, routerAddr, metricsAddr, up.URL)
	cfg := write(t, t.TempDir(), "mcp-authz.yaml", config)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, io.Discard, &stderr) }()

	// Wait for the parts to listen: the metrics server, then a session
	// through the front.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, err := get(ctx, "http://"+metricsAddr+"/healthz")
		if err == nil && code == http.StatusOK && body == "ok\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: %d %q %v\nlog:\n%s", code, body, err, stderr.String())
		}
		select {
		case c := <-done:
			t.Fatalf("serve exited %d:\n%s", c, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	var cs *mcp.ClientSession
	for {
		c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
		var err error
		cs, err = c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: "http://" + gatewayAddr + "/mcp", MaxRetries: -1}, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect through the front: %v\nlog:\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer cs.Close()

	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if strings.Join(names, ",") != "echo_say" {
		t.Errorf("tools/list through the front = %v, want [echo_say] (echo_forbidden filtered out)", names)
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo_say", Arguments: map[string]any{"text": "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != "hello" || res.IsError {
		t.Errorf("echo_say = %+v", res)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo_forbidden", Arguments: map[string]any{"text": "x"}}); err == nil {
		t.Error("echo_forbidden was allowed")
	}

	metrics := metricsText(t, ctx, metricsAddr)
	for _, want := range []string{
		`(?m)^mcp_authz_decisions_total\{.*reason="allowed".*\} [1-9]`,
		`(?m)^mcp_authz_decisions_total\{.*reason="tool_denied".*\} 1$`,
		`(?m)^mcp_authz_config_reload_errors_total 0$`,
		`(?m)^mcp_authz_config_last_reload_successful 1$`,
	} {
		if !regexp.MustCompile(want).MatchString(metrics) {
			t.Errorf("/metrics does not match %s:\n%s", want, grep(metrics, "mcp_authz"))
		}
	}

	// Hot reload: a new policy is in force without a restart; a broken one
	// is refused, counted and logged, and the previous one stays.
	write(t, filepath.Dir(cfg), "mcp-authz.yaml", strings.Replace(config, `mcp.tool.name != "forbidden"`, `mcp.tool.name == "forbidden"`, 1))
	for {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo_say", Arguments: map[string]any{"text": "hello"}})
		if err != nil {
			break // echo_say is now denied
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("policy edit not applied:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	write(t, filepath.Dir(cfg), "mcp-authz.yaml", strings.Replace(config, `mcp.tool.name != "forbidden"`, `mcp.tool.name ==`, 1))
	for !regexp.MustCompile(`(?m)^mcp_authz_config_reload_errors_total 1$`).MatchString(metricsText(t, ctx, metricsAddr)) {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("broken edit not counted:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo_say", Arguments: map[string]any{"text": "hello"}}); err == nil {
		t.Error("echo_say allowed after a broken edit: the previous policy is not in force")
	}
	if m := metricsText(t, ctx, metricsAddr); !regexp.MustCompile(`(?m)^mcp_authz_config_last_reload_successful 0$`).MatchString(m) {
		t.Errorf("last reload not reported as refused:\n%s", grep(m, "mcp_authz_config"))
	}
	if !strings.Contains(stderr.String(), "config reload refused") {
		t.Errorf("broken edit not logged:\n%s", stderr.String())
	}

	if strings.Contains(stderr.String(), "take effect on restart") {
		t.Errorf("a policy edit was reported as needing a restart:\n%s", stderr.String())
	}
	// A section that only a restart applies is reported.
	write(t, filepath.Dir(cfg), "mcp-authz.yaml", config+"log:\n  level: debug\n")
	for !strings.Contains(stderr.String(), `"msg":"config changes that take effect on restart","part":"config","sections":["log"]`) {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("restart-only change not reported:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m := metricsText(t, ctx, metricsAddr); !regexp.MustCompile(`(?m)^mcp_authz_config_last_reload_successful 1$`).MatchString(m) {
		t.Errorf("good reload after a refused one not reported:\n%s", grep(m, "mcp_authz_config"))
	}

	cs.Close()
	cancel()
	select {
	case c := <-done:
		if c != 0 {
			t.Errorf("serve exited %d after ctx ended:\n%s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop after ctx ended:\n%s", stderr.String())
	}
	// Every listener is closed.
	for _, addr := range []string{authzAddr, gatewayAddr, routerAddr, metricsAddr} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after serve returned", addr)
		}
	}
	if log := stderr.String(); !strings.Contains(log, "mcp-authz stopped") {
		t.Errorf("no stop line in the log:\n%s", log)
	}
}

// metricsText fetches /metrics.
func metricsText(t *testing.T, ctx context.Context, addr string) string {
	t.Helper()
	code, body, err := get(ctx, "http://"+addr+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	return body
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestBuildRelativePaths checks that every file the configuration names is
// read from the configuration's directory, whatever the working directory.
func TestBuildRelativePaths(t *testing.T) {
	dir := t.TempDir()
	key := strings.Repeat("k", 32)
	write(t, dir, "keys/assertion", key)
	write(t, dir, "keys/session", strings.Repeat("s", 32))
	write(t, dir, "keys/secret", "s3cret\n")
	write(t, dir, "policies/p.cel", "true\n")
	tests := []struct {
		name, yaml string
		parts      int
	}{
		{
			name:  "authz alone",
			yaml:  "authz: {assertionKeyFile: keys/assertion}\npolicies: [{name: p, file: policies/p.cel}]\n",
			parts: 2, // the watcher and authz
		},
		{
			name:  "router alone",
			yaml:  "router: {assertionKeyFile: keys/assertion, sessionKeyFiles: [keys/session]}\n",
			parts: 2,
		},
		{
			name: "exchange",
			yaml: "identity: {issuers: [{issuerURL: http://127.0.0.1:1/realm, audiences: [gw]}]}\n" +
				"exchange: {tokenURL: http://127.0.0.1:1/token, clientID: gw, clientSecretFile: keys/secret}\nauthz: {}\n",
			parts: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml", tt.yaml)
			t.Chdir(t.TempDir())
			var log bytes.Buffer
			f, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			parts, err := build(t.Context(), f, path, slog.New(slog.NewTextHandler(&log, nil)), newMetricsRegistry())
			if err != nil {
				t.Fatalf("build from another working directory: %v", err)
			}
			if len(parts) != tt.parts {
				t.Errorf("%d parts, want %d", len(parts), tt.parts)
			}
		})
	}
}
