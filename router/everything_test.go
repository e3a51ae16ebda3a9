package router

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// startEverything runs npm @modelcontextprotocol/server-everything (its
// dist/index.js named by MCP_AUTHZ_EVERYTHING; `make npm` installs it) on a
// free loopback port and returns its endpoint.
func startEverything(t *testing.T) string {
	t.Helper()
	js := os.Getenv("MCP_AUTHZ_EVERYTHING")
	if js == "" {
		t.Skip("MCP_AUTHZ_EVERYTHING is unset: run `make npm` and point it at server-everything's dist/index.js (make test does)")
	}
	if _, err := os.Stat(js); err != nil {
		t.Fatalf("MCP_AUTHZ_EVERYTHING: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("node", js, "streamableHttp")
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port))
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed: the exit error is expected
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 200 {
			t.Fatalf("server-everything did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr + "/mcp"
}

// TestEverything aggregates server-everything with the go-sdk servers and
// calls its streaming tool through the router.
func TestEverything(t *testing.T) {
	ev := startEverything(t)
	a, b := alphaServer(t), betaServer(t)
	e := newEnv(t, nil,
		registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL},
		registry.Server{Name: "ns/beta", Prefix: "beta_", URL: b.URL},
		registry.Server{Name: "ns/everything", Prefix: "ev_", URL: ev},
	)
	var progress atomic.Int32
	cs, _ := e.client("alice", &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { progress.Add(1) },
	})
	names := toolNames(t, cs)
	var ev0 int
	for _, n := range names {
		if strings.HasPrefix(n, "ev_") {
			ev0++
		}
	}
	if ev0 < 10 || !strings.Contains(strings.Join(names, ","), "alpha_echo") || !strings.Contains(strings.Join(names, ","), "beta_add") {
		t.Fatalf("tools %v", names)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "ev_echo", Arguments: map[string]any{"message": "through the router"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resultText(t, res); !strings.Contains(got, "through the router") {
		t.Errorf("echo %q", got)
	}
	p := &mcp.CallToolParams{Name: "ev_trigger-long-running-operation", Arguments: map[string]any{"duration": 0.3, "steps": 3}}
	p.SetProgressToken("ev-1")
	res, err = cs.CallTool(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultText(t, res); !strings.Contains(got, "completed") {
		t.Errorf("long operation %q", got)
	}
	waitFor(t, "3 progress notifications", func() bool { return progress.Load() >= 3 })
	for _, tool := range []string{"alpha_echo", "beta_add"} {
		args := map[string]any{"text": "x"}
		if tool == "beta_add" {
			args = map[string]any{"a": 1, "b": 2}
		}
		if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args}); err != nil {
			t.Errorf("%s: %v", tool, err)
		}
	}
}
