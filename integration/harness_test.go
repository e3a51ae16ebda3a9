//go:build integration

// Package integration runs mcp-authz end to end with real processes on
// loopback: the binaries built from this tree, the dev provider, real MCP
// servers and clients.
package integration

import (
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
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
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
	out *syncbuf.Buffer
}

// start runs a process, waits until addr accepts connections and stops it
// (SIGTERM, then SIGKILL) when the test ends.
func start(t *testing.T, addr string, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncbuf.Buffer{}
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
	// A connection the test's client pool dialled and never used (a
	// request cancelled while dialling) is new to the process, and
	// net/http's Shutdown waits up to 5s for it: close the pool's idle
	// connections first, so that the stop takes what the process needs.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
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

// kill ends a process and its group at once (SIGKILL), as a crash or an
// OOM kill does, and reaps it.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// waitPort waits up to 30 s until addr accepts connections; the test fails
// with p's output if it does not, or if p exits first.
func waitPort(t *testing.T, addr string, p *proc) {
	t.Helper()
	listening := false
	until(time.Now().Add(30*time.Second), func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			listening = true
			return true
		}
		return p.cmd.ProcessState != nil
	})
	if !listening {
		t.Fatalf("%s did not listen on %s; output:\n%s", p.cmd.Path, addr, p.out.String())
	}
}

// pollEvery is how often until checks its condition.
const pollEvery = 20 * time.Millisecond

// until checks cond every pollEvery until it holds or deadline passes, and
// reports whether it held.
func until(deadline time.Time, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// waitFor waits until cond holds; the test fails, saying what it waited
// for, if it does not within timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !until(time.Now().Add(timeout), cond) {
		t.Fatalf("waited %v for %s", timeout, what)
	}
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

// replaceFile writes a file the way editors do: a new file renamed over it.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies a file.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// repoFile is a path in the repository.
func repoFile(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", name)
}

// configFile is the path of the configuration a process was started with
// (serve --config PATH).
func configFile(t *testing.T, p *proc) string {
	t.Helper()
	i := slices.Index(p.cmd.Args, "--config")
	if i < 0 || i+1 >= len(p.cmd.Args) {
		t.Fatalf("no --config in %q", p.cmd.Args)
	}
	return p.cmd.Args[i+1]
}

// idp is the dev provider running as a process.
type idp struct {
	addr   string
	issuer string
	proc   *proc
}

// startIdP runs the dev provider with dev/realm.yaml on addr (a free port
// if empty); args are more flags.
func startIdP(t *testing.T, addr string, args ...string) *idp {
	t.Helper()
	if addr == "" {
		addr = freePort(t)
	}
	p := start(t, addr, nil, filepath.Join(bin, "devidp"), append([]string{"--config", repoFile("dev/realm.yaml"), "--listen", addr}, args...)...)
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
