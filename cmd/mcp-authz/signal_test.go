package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
)

// TestMain runs main itself when the test binary is started as mcp-authz
// by TestSIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("MCP_AUTHZ_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestSIGTERM runs serve as a real process and checks that SIGTERM stops
// it cleanly.
func TestSIGTERM(t *testing.T) {
	authzAddr, metricsAddr := freeAddr(t), freeAddr(t)
	cfg := write(t, t.TempDir(), "mcp-authz.yaml", fmt.Sprintf("authz: {listen: %q}\nmetrics: {listen: %q}\n", authzAddr, metricsAddr))
	cmd := exec.Command(os.Args[0], "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "MCP_AUTHZ_TEST_MAIN=1")
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("mcp-authz exited early: %v\n%s", err, &stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("mcp-authz not healthy:\n%s", &stderr)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v\n%s", err, &stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("mcp-authz still running 20s after SIGTERM:\n%s", &stderr)
	}
	if !strings.Contains(stderr.String(), "mcp-authz stopped") {
		t.Errorf("no stop line in the log:\n%s", &stderr)
	}
}
