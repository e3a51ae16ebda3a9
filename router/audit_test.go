package router

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
	"github.com/mcp-authz/mcp-authz/registry"
)

// auditLines is the audit output so far, one JSON event a line.
func auditLines(out *syncbuf.Buffer) [][]byte {
	b := bytes.TrimSuffix(out.Bytes(), []byte("\n"))
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(b, []byte("\n"))
}

// auditTo is an audit trail written to the returned output, stopped
// when the test ends.
func auditTo(t *testing.T) (*audit.Writer, *syncbuf.Buffer) {
	out := &syncbuf.Buffer{}
	w, err := audit.New(audit.Config{}, audit.Deps{Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = w.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w, out
}

// TestAuditUpstreamCall: a tools/call forwarded to a real go-sdk server is
// one upstream event with its status, latency, caller and the trace id of
// the traceparent the request came with; no token and no argument value.
func TestAuditUpstreamCall(t *testing.T) {
	w, out := auditTo(t)
	e, _, _ := twoServersWith(t, func(_ *Config, d *Deps) { d.Audit = w })
	sid := initRaw(t, e.front.URL, e.key, "alice")
	const trace = "0af7651916cd43dd8448eb211c80319c"
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"alpha_echo","arguments":{"text":"argument-value-secret"}}}`
	r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", call, func(req *http.Request) {
		req.Header.Set("traceparent", "00-"+trace+"-b7ad6b7169203331-01")
	})
	if r.status != http.StatusOK {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	waitFor(t, "the upstream event", func() bool { return len(auditLines(out)) == 1 })
	line := auditLines(out)[0]
	var ev map[string]any
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"schema": audit.Schema, "kind": audit.KindUpstream, "trace_id": trace, "issuer": testIssuer, "subject": "alice",
		"method": "tools/call", "server": "ns/alpha", "tool": "echo", "status": 200.0,
	}
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, ev[k], v, line)
		}
	}
	if l, ok := ev["latency_ms"].(float64); !ok || l <= 0 {
		t.Errorf("latency_ms = %v", ev["latency_ms"])
	}
	for _, secret := range []string{"argument-value-secret", "caller-alice", "up-ns/alpha", "Bearer"} {
		if bytes.Contains(line, []byte(secret)) {
			t.Errorf("event holds %q: %s", secret, line)
		}
	}
}

// TestAuditRequiredRefusesCall: with audit.required and an audit queue that
// cannot take the event, the call is refused 503 and never reaches the
// server.
func TestAuditRequiredRefusesCall(t *testing.T) {
	// Buffer 1 and no Start (a writer that cannot keep up): one event
	// fills the queue.
	w, err := audit.New(audit.Config{Required: true, Buffer: 1}, audit.Deps{Stdout: &syncbuf.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	up := record(t, alphaMCP(), false)
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Audit = w }, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"alpha_echo","arguments":{"text":"x"}}}`
	if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", call, nil); r.status != http.StatusOK {
		t.Fatalf("first call: %d %s", r.status, r.body)
	}
	calls := up.count(0, func(s seen) bool { return s.rpc == "tools/call" })
	r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", call, nil)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("call with the audit queue full: %d %s, want 503", r.status, r.body)
	}
	if n := up.count(0, func(s seen) bool { return s.rpc == "tools/call" }); n != calls {
		t.Errorf("the refused call reached the server: %d calls, want %d", n, calls)
	}
}
