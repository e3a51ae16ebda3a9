//go:build integration

// Package integration runs mcp-authz end to end with real processes on
// loopback: the binaries built from this tree, the dev provider, real MCP
// servers and clients.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin holds the binaries built once for the whole run.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcp-authz-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	for _, cmd := range []string{"mcp-authz", "devidp"} {
		b := exec.Command("go", "build", "-o", filepath.Join(dir, cmd), "../cmd/"+cmd)
		b.Stdout, b.Stderr = os.Stdout, os.Stderr
		if err := b.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", cmd, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	stopDomains()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a process a test started; it is stopped by PID at cleanup.
type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// start runs a process, waits until addr accepts connections and stops it
// (SIGTERM, then SIGKILL) when the test ends.
func start(t *testing.T, addr string, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: out}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	if addr != "" {
		waitPort(t, addr, p)
	}
	return p
}

// stop ends the process and its group by PID.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-done
	}
}

func waitPort(t *testing.T, addr string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if p != nil && p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s; output:\n%s", p.cmd.Path, addr, p.out.String())
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFile writes a file into the test's directory and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// repoFile is a path in the repository.
func repoFile(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", name)
}

// idp is the dev provider running as a process.
type idp struct {
	addr   string
	issuer string
	proc   *proc
}

func startIdP(t *testing.T, addr string) *idp {
	t.Helper()
	if addr == "" {
		addr = freePort(t)
	}
	p := start(t, addr, nil, filepath.Join(bin, "devidp"), "--config", repoFile("dev/realm.yaml"), "--listen", addr)
	return &idp{addr: addr, issuer: "http://" + addr + "/realms/mcp", proc: p}
}

// login is a password grant with the public client mcp-cli.
func (i *idp) login(t *testing.T, user string) string {
	t.Helper()
	form := url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {user}, "password": {user}}
	resp, err := http.PostForm(i.issuer+"/protocol/openid-connect/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("login %s: %d %s", user, resp.StatusCode, body)
	}
	return tok.AccessToken
}

// rotate rotates the provider's signing keys.
func (i *idp) rotate(t *testing.T) {
	t.Helper()
	resp, err := http.Post("http://"+i.addr+"/admin/realms/mcp/rotate-keys", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("rotate keys: %d", resp.StatusCode)
	}
}

// post sends one JSON-RPC message to url with the given headers.
func post(ctx context.Context, t *testing.T, u, body string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func toolCall(name string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":{}}}`
}
