package router

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/session"
)

// signedFor signs body as authz does for a call it resolved: the server
// and the unprefixed tool named in the assertion.
func signedFor(t *testing.T, key assertion.Key, body, server, tool string) func(*http.Request) {
	t.Helper()
	return func(r *http.Request) {
		v, err := assertion.NewSigner(key).Sign(assertion.Claims{Method: "tools/call", Server: server, Tool: tool,
			Issuer: testIssuer, Subject: "alice", BodyHash: assertion.BodyHash([]byte(body))})
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set(assertion.Header, v)
	}
}

// TestCallDecodedOnce: a tools/call is decoded once in the router, and what
// reaches the upstream is the client's body byte for byte but for the name,
// the server's own spliced where the prefixed one was (its escapes, the
// members' order, white space and the arguments as sent).
func TestCallDecodedOnce(t *testing.T) {
	up := record(t, alphaMCP(), true)
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	const rest = `{"jsonrpc":"2.0", "id":3,"method":"tools/call","params":{"arguments":{ "text" : "<&>\u00e9"}, "name":`
	body := rest + `"alpha\u005fecho" }}`
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
	}{
		{name: "assertion names server and tool", mod: signedFor(t, e.key, body, "ns/alpha", "echo")},
		{name: "assertion names no server", mod: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark := len(up.requests())
			before := e.router.parsed.Load()
			r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", body, tc.mod)
			if r.status != http.StatusOK || !strings.Contains(r.body, `\u003c\u0026\u003eé|`) || strings.Contains(r.body, "isError") {
				t.Fatalf("call: %d %s", r.status, r.body)
			}
			if n := e.router.parsed.Load() - before; n != 1 {
				t.Errorf("the body was decoded %d times, want 1", n)
			}
			var got string
			for _, s := range up.requests()[mark:] {
				if s.rpc == "tools/call" {
					got = s.body
				}
			}
			if want := rest + `"echo" }}`; got != want {
				t.Errorf("upstream got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestAssertionNamesTarget: the router forwards to the server and tool the
// assertion names; an assertion whose tool is not the body's is refused
// and nothing reaches an upstream.
func TestAssertionNamesTarget(t *testing.T) {
	up := record(t, benchBeta(), true)
	e := newEnv(t, nil, registry.Server{Name: "ns/beta", Prefix: "beta_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"beta_add","arguments":{"a":1,"b":2}}}`
	for _, tc := range []struct {
		name, server, tool string
	}{
		{name: "another tool", server: "ns/beta", tool: "sub"},
		{name: "a suffix of the name", server: "ns/beta", tool: "dd"},
		{name: "another server", server: "ns/alpha", tool: "add"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mark := len(up.requests())
			r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", body, signedFor(t, e.key, body, tc.server, tc.tool))
			if r.status == http.StatusOK && !strings.Contains(r.body, `"error"`) {
				t.Fatalf("forwarded: %d %s", r.status, r.body)
			}
			if n := up.count(mark, func(s seen) bool { return s.rpc == "tools/call" }); n != 0 {
				t.Errorf("%d calls reached the upstream", n)
			}
		})
	}
}

// TestUpstreamSessionsOnFirstUse: initialize opens no upstream session, nor
// does a GET stream; a session opens one with a server when it first uses
// it, and only with it, and its GET stream then relays that server's.
func TestUpstreamSessionsOnFirstUse(t *testing.T) {
	alpha, beta := record(t, alphaMCP(), true), record(t, benchBeta(), true)
	e := newEnv(t, nil,
		registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: alpha.URL},
		registry.Server{Name: "ns/beta", Prefix: "beta_", URL: beta.URL})
	inits := func(r *recording) int {
		return r.count(0, func(s seen) bool { return s.rpc == "initialize" })
	}
	gets := func(r *recording) int {
		return r.count(0, func(s seen) bool { return s.http == http.MethodGet })
	}
	sid := initRaw(t, e.front.URL, e.key, "alice")
	stream := openStream(t, e.front.URL, e.key, sid, "alice", time.Time{})
	defer stream.Body.Close()
	if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", `{"jsonrpc":"2.0","id":2,"method":"ping"}`, nil); r.status != http.StatusOK {
		t.Fatalf("ping: %d %s", r.status, r.body)
	}
	if a, b := inits(alpha), inits(beta); a != 0 || b != 0 {
		t.Fatalf("initialize and ping opened %d and %d upstream sessions, want none", a, b)
	}
	call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"beta_add","arguments":{"a":1,"b":2}}}`
	for range 2 {
		if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", call, nil); r.status != http.StatusOK || !strings.Contains(r.body, `"text":"3"`) {
			t.Fatalf("call: %d %s", r.status, r.body)
		}
	}
	if a, b := inits(alpha), inits(beta); a != 0 || b != 1 {
		t.Errorf("two calls to beta opened %d sessions with alpha and %d with beta, want 0 and 1", a, b)
	}
	waitFor(t, "the GET stream to relay beta's", func() bool { return gets(beta) == 1 })
	if n := gets(alpha); n != 0 {
		t.Errorf("alpha got %d GET streams from a session that never used it", n)
	}
}

// TestOpenSessionCached: a session id this replica opened before opens
// again from its cache, without unsealing or decoding anything; an id it
// never saw is unsealed, and a forged one refused.
func TestOpenSessionCached(t *testing.T) {
	e, _, _ := twoServers(t, nil)
	sid := initRaw(t, e.front.URL, e.key, "alice")
	first, err := e.router.openSession(sid)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		s, err := e.router.openSession(sid)
		if err != nil || s != first {
			t.Fatalf("reopened %p %v, want the cached %p", s, err, first)
		}
	}); n != 0 {
		t.Errorf("opening a cached session id allocates %v times, want 0", n)
	}
	other, err := session.Seal(e.router.sealer, &session.Record{ID: "x", Issuer: testIssuer, Subject: "alice", Version: "2025-06-18", Issued: first.Issued})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := e.router.openSession(other); err != nil || s.ID != "x" {
		t.Errorf("an id sealed elsewhere: %v %v", s, err)
	}
	if _, err := e.router.openSession(sid[:len(sid)-2] + "AA"); err == nil {
		t.Error("a forged id opened")
	}
}
