//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quickstartPorts are the fixed loopback ports of make run (hack/run.sh).
var quickstartPorts = []int{8080, 8180, 8090, 8091, 9001, 8081, 9090}

// TestQuickstart is a newcomer's walk: it starts make run, as the README
// says, and runs the README's Quick start shell blocks, as written, in one
// bash with -euo pipefail, from the root of the repository. Each block's
// answers are checked (tools listed, a tool called, a prompt and a resource
// through the router, the denials named), nothing may reach standard
// error, every process listens on 127.0.0.1 only, and everything make run
// started is stopped by its process group when the test ends.
//
// The ports are fixed, so the test takes a lock shared by every checkout on
// this machine and fails, naming them, when one is already taken. It never
// calls t.Parallel, so no other test of this package runs beside it.
func TestQuickstart(t *testing.T) {
	root := repoFile("")
	blocks := quickstartBlocks(t, filepath.Join(root, "README.md"))
	checks := []struct {
		name  string
		check func(t *testing.T, out string)
	}{
		{"log in as alice", func(t *testing.T, out string) {
			if out != "" {
				t.Errorf("printed %q, want nothing", out)
			}
		}},
		{"alice's tools, prompt and resource", func(t *testing.T, out string) {
			a := answers(t, out)
			wantNames(t, a, "2", "tools", "name", "ev_echo", "ev_get-sum", "weather_get_forecast")
			wantText(t, a, "3", `"text":"Forecast for Oslo: `)
			wantNames(t, a, "4", "prompts", "name", "ev_simple-prompt")
			wantText(t, a, "5", `"text":"This is a simple prompt without arguments."`)
			wantNames(t, a, "6", "resources", "uri", "demo://resource/static/document/features.md")
			wantText(t, a, "7", `"uri":"demo://resource/static/document/features.md","mimeType":"text/markdown","text":"# Everything Server`)
			wantStatuses(t, out, "200", 6)
		}},
		{"denials named after what was asked for", func(t *testing.T, out string) {
			a := answers(t, out)
			wantDenied(t, a, "8", -32003, "tool_denied")
			wantDenied(t, a, "9", -32003, "prompt_denied")
			wantDenied(t, a, "10", -32003, "resource_denied")
			wantStatuses(t, out, "403", 3)
			wantDenied(t, a, "11", -32001, "token_missing")
			for _, w := range []string{"\nHTTP/1.1 401 Unauthorized\r\n",
				"\r\nWww-Authenticate: Bearer resource_metadata=\"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp\"\r\n"} {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
		}},
		{"bob sees and gets nothing", func(t *testing.T, out string) {
			a := answers(t, out)
			wantNames(t, a, "2", "tools", "name")
			wantDenied(t, a, "3", -32003, "tool_denied")
		}},
		{"the inspector lists alice's tools", func(t *testing.T, out string) {
			var r struct {
				Tools []struct{ Name string } `json:"tools"`
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("inspector output: %v\n%s", err, out)
			}
			var got []string
			for _, x := range r.Tools {
				got = append(got, x.Name)
			}
			if want := []string{"ev_echo", "ev_get-sum", "weather_get_forecast"}; !slices.Equal(got, want) {
				t.Errorf("tools %q, want %q", got, want)
			}
		}},
		{"config check, policy test, policy eval", func(t *testing.T, out string) {
			for _, w := range []string{
				`(?m)^dev/mcp-authz\.yaml: ok \(2 servers, 1 policies\)$`,
				`(?m)^PASS: (\d+)/(\d+)$`,
				`(?s)\{\s*"allow": true,\s*"policy": "tool-roles",\s*"reason": "allowed"\s*\}\s*\{\s*"allow": false,\s*"policy": "tool-roles",\s*"reason": "tool_denied"\s*\}\s*denied: exit 1\s*$`,
			} {
				if !regexp.MustCompile(w).MatchString(out) {
					t.Errorf("output does not match %s:\n%s", w, out)
				}
			}
			if m := regexp.MustCompile(`(?m)^PASS: (\d+)/(\d+)$`).FindStringSubmatch(out); m != nil && m[1] != m[2] {
				t.Errorf("policy test: %s of %s passed", m[1], m[2])
			}
		}},
	}
	if len(blocks) != len(checks) {
		t.Fatalf("the Quick start has %d sh blocks, the test checks %d: give each block its check", len(blocks), len(checks))
	}

	lockQuickstart(t)
	for _, port := range quickstartPorts {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("port %d is taken (%v): make run needs 8080, 8180, 8090, 8091, 9001, 8081 and 9090; stop what listens there", port, err)
		}
		l.Close()
	}

	// make run, from the root, as a newcomer types it; not the make that
	// may be running this test.
	run := start(t, "", []string{"MAKEFLAGS=", "MFLAGS=", "MAKELEVEL=", "MAKEOVERRIDES="}, "make", "-C", root, "run")
	started := func() bool { return strings.Contains(run.out.String(), "Walk through it from another shell") }
	if !until(time.Now().Add(5*time.Minute), func() bool { return started() || run.cmd.ProcessState != nil }) || !started() {
		t.Fatalf("make run did not start:\n%s", run.out.String())
	}
	t.Cleanup(func() {
		run.stop()
		for _, port := range quickstartPorts {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
				c.Close()
				t.Errorf("127.0.0.1:%d still answers after make run was stopped", port)
			}
		}
	})
	checkLoopbackOnly(t)
	checkTokenLifetime(t)

	// The blocks as one script, a marker after each.
	const marker = "\n<<<quickstart: end of block>>>\n"
	var script strings.Builder
	for _, b := range blocks {
		script.WriteString(b)
		fmt.Fprintf(&script, "printf %q\n", marker)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script.String())
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	outs := strings.Split(stdout.String(), marker)
	for i, c := range checks {
		if i >= len(outs)-1 {
			t.Fatalf("block %d (%s) failed: %v\nstdout:\n%s\nstderr:\n%s\nblock:\n%s", i+1, c.name, err, outs[len(outs)-1], &stderr, blocks[i])
		}
		t.Run(c.name, func(t *testing.T) {
			c.check(t, outs[i])
			if t.Failed() {
				t.Logf("block:\n%s", blocks[i])
			}
		})
	}
	if err != nil {
		t.Errorf("the walk: %v", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("the walk wrote to standard error:\n%s", &stderr)
	}
}

// quickstartBlocks returns the ```sh blocks of the README's Quick start
// section, in order.
func quickstartBlocks(t *testing.T, readme string) []string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no ## Quick start")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "\n```sh\n")
		if !ok {
			break
		}
		block, tail, ok := strings.Cut(after, "\n```\n")
		if !ok {
			t.Fatal("README.md: an unclosed ```sh block in the Quick start")
		}
		blocks = append(blocks, block+"\n")
		rest = tail
	}
	return blocks
}

// lockQuickstart holds, until the test ends, a lock that every checkout on
// this machine takes before using make run's fixed ports.
func lockQuickstart(t *testing.T) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "mcp-authz-quickstart.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if !until(time.Now().Add(10*time.Minute), func() bool {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("lock %s: %v", path, err)
		}
		return err == nil
	}) {
		t.Fatalf("another quick-start test has held %s for 10 minutes", path)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// checkLoopbackOnly reads the kernel's table of listening TCP sockets: each
// of make run's ports is listened on, by 127.0.0.1 alone.
func checkLoopbackOnly(t *testing.T) {
	t.Helper()
	addrs := map[int][]string{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // LISTEN
				continue
			}
			host, portHex, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseInt(portHex, 16, 32)
			if err != nil || !slices.Contains(quickstartPorts, int(port)) {
				continue
			}
			addrs[int(port)] = append(addrs[int(port)], host)
		}
	}
	for _, port := range quickstartPorts {
		if len(addrs[port]) == 0 {
			t.Errorf("nothing listens on port %d", port)
		}
		for _, host := range addrs[port] {
			if host != "0100007F" { // 127.0.0.1, little-endian hex
				t.Errorf("port %d is listened on at %s (hex, /proc/net/tcp*), not 127.0.0.1 alone", port, host)
			}
		}
	}
}

// checkTokenLifetime: the dev realm's tokens last the hour the README
// promises.
func checkTokenLifetime(t *testing.T) {
	t.Helper()
	resp, err := http.PostForm("http://127.0.0.1:8180/realms/mcp/protocol/openid-connect/token", url.Values{
		"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {"alice"}, "password": {"alice"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		ExpiresIn int `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	if tok.ExpiresIn != 3600 {
		t.Errorf("expires_in = %d, want 3600 (the README says an hour)", tok.ExpiresIn)
	}
}

// answers are the JSON-RPC messages in out (JSON lines and SSE data
// lines), by id.
func answers(t *testing.T, out string) map[string]json.RawMessage {
	t.Helper()
	a := map[string]json.RawMessage{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimPrefix(line, "data: ")
		if !strings.HasPrefix(line, `{"jsonrpc"`) && !strings.HasPrefix(line, `{"result"`) && !strings.HasPrefix(line, `{"error"`) {
			continue
		}
		var m struct {
			ID json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("answer %q: %v", line, err)
			continue
		}
		a[string(m.ID)] = json.RawMessage(line)
	}
	return a
}

// wantNames checks that the answer id lists exactly names in
// result.<field>[].<key>.
func wantNames(t *testing.T, a map[string]json.RawMessage, id, field, key string, names ...string) {
	t.Helper()
	var m struct {
		Result map[string][]map[string]any `json:"result"`
	}
	if err := json.Unmarshal(a[id], &m); err != nil || m.Result == nil {
		t.Errorf("answer %s: %s (%v), want a result", id, a[id], err)
		return
	}
	got := []string{}
	for _, x := range m.Result[field] {
		s, _ := x[key].(string)
		got = append(got, s)
	}
	if want := append([]string{}, names...); !slices.Equal(got, want) {
		t.Errorf("answer %s: %s %q, want %q", id, field, got, want)
	}
}

func wantText(t *testing.T, a map[string]json.RawMessage, id, text string) {
	t.Helper()
	if !strings.Contains(string(a[id]), text) || strings.Contains(string(a[id]), `"error"`) {
		t.Errorf("answer %s: %s, want a result with %s", id, a[id], text)
	}
}

func wantDenied(t *testing.T, a map[string]json.RawMessage, id string, code int, reason string) {
	t.Helper()
	want := fmt.Sprintf(`"id":%s,"error":{"code":%d,`, id, code)
	if !strings.Contains(string(a[id]), want) || !strings.Contains(string(a[id]), `"data":{"reason":"`+reason+`"}`) {
		t.Errorf("answer %s: %s, want error %d reason %s", id, a[id], code, reason)
	}
}

func wantStatuses(t *testing.T, out, status string, n int) {
	t.Helper()
	if got := strings.Count(out, "\nHTTP "+status+"\n"); got != n {
		t.Errorf("%d answers with HTTP %s, want %d:\n%s", got, status, n, out)
	}
}
