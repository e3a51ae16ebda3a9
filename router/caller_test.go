package router

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// recording wraps a real go-sdk MCP server and records every HTTP request
// it receives: HTTP method, JSON-RPC method and Authorization.
type recording struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seen
}

type seen struct {
	http, rpc, auth string
	body            string // as received
}

func record(t *testing.T, s *mcp.Server, jsonResponse bool) *recording {
	t.Helper()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
	rec := &recording{}
	rec.Server = httptest.NewServer(rec.wrap(h))
	t.Cleanup(rec.Close)
	return rec
}

// wrap records each request before h serves it.
func (r *recording) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var m struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &m)
		r.mu.Lock()
		r.seen = append(r.seen, seen{http: req.Method, rpc: m.Method, auth: req.Header.Get("Authorization"), body: string(body)})
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, req)
	})
}

func (r *recording) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// count returns how many requests matched since index from.
func (r *recording) count(from int, match func(seen) bool) int {
	n := 0
	for _, s := range r.requests()[from:] {
		if match(s) {
			n++
		}
	}
	return n
}

// TestSessionBoundToIssuer: a session belongs to (issuer, subject). A token
// of a second trusted issuer naming the same subject can neither use, GET
// nor DELETE it, and everything keyed by the session stays the owner's.
func TestSessionBoundToIssuer(t *testing.T) {
	e, _, _ := twoServers(t, nil)
	url := e.front.URL
	sid := initRaw(t, url, e.key, "alice")
	const otherIssuer = "https://idp.test/realms/b"
	for _, tc := range []struct {
		name, method, body string
	}{
		{name: "list", method: http.MethodPost, body: listBody},
		{name: "call", method: http.MethodPost, body: `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"beta_add","arguments":{"a":1,"b":2}}}`},
		{name: "cancel", method: http.MethodPost, body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`},
		{name: "GET stream", method: http.MethodGet},
		{name: "DELETE", method: http.MethodDelete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// An open stream would never end: bound the wait.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			bounded := func(r *http.Request) { *r = *r.WithContext(ctx) }
			for _, iss := range []string{otherIssuer, ""} {
				if r := doAs(t, url, e.key, tc.method, sid, iss, "alice", tc.body, bounded); r.status != http.StatusNotFound {
					t.Errorf("issuer %q: status %d, want 404: %s", iss, r.status, r.body)
				}
			}
		})
	}
	// The owner's session survived the other issuer's DELETE.
	if r := do(t, url, e.key, http.MethodPost, sid, "alice", listBody, nil); r.status != http.StatusOK || !strings.Contains(r.body, "beta_add") {
		t.Errorf("owner after the other issuer's DELETE: %d %s", r.status, r.body)
	}
	// A session sealed before sessions named their issuer binds no issuer.
	legacy, err := session.Seal(e.router.sealer, &session.Record{ID: "legacy", Subject: "alice", Version: "2025-06-18", Issued: time.Now().Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, url, e.key, http.MethodPost, legacy, "alice", listBody, nil); r.status != http.StatusNotFound {
		t.Errorf("session without an issuer, caller with one: %d", r.status)
	}
	if got, want := (&session.Record{ID: "x", Issuer: "a", Subject: "bc"}).Key(), (&session.Record{ID: "x", Issuer: "ab", Subject: "c"}).Key(); got == want {
		t.Errorf("keys of different callers collide: %q", got)
	}
}

// idCase is one spelling of a request id.
type idCase struct {
	name, id string
}

// idSpellings are ids whose value upstreams re-encode differently.
var idSpellings = []idCase{
	{name: "escaped letter", id: `"\u0061"`},
	{name: "escaped slash", id: `"a\/b"`},
	{name: "html characters", id: `"<a&b>"`},
	{name: "surrogate pair", id: `"\ud83d\ude00"`},
	{name: "plain string", id: `"call-7"`},
	{name: "integer", id: `7`},
	{name: "integer with fraction zero", id: `7.0`},
	{name: "exponent", id: `7e0`},
	{name: "exponent with fraction", id: `70E-1`},
	{name: "negative zero", id: `-0`},
	{name: "largest safe integer", id: `9007199254740991`},
	{name: "string of digits", id: `"7"`},
}

// TestIDSpellings: whatever the spelling of its id, a call's answer from a
// real upstream (go-sdk, which re-encodes ids) reaches the client, with the
// id exactly as the client sent it, in JSON and in SSE answers.
func TestIDSpellings(t *testing.T) {
	e, _, _ := twoServers(t, nil)
	sid := initRaw(t, e.front.URL, e.key, "alice")
	for _, up := range []struct {
		name, tool, args, want string
	}{
		{name: "sse", tool: "alpha_echo", args: `{"text":"x"}`, want: `x|Bearer up-ns/alpha`},
		{name: "json", tool: "beta_add", args: `{"a":2,"b":3}`, want: `"text":"5"`},
	} {
		for _, tc := range idSpellings {
			t.Run(up.name+"/"+tc.name, func(t *testing.T) {
				body := `{"jsonrpc":"2.0","id":` + tc.id + `,"method":"tools/call","params":{"name":"` + up.tool + `","arguments":` + up.args + `}}`
				r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", body, nil)
				if r.status != http.StatusOK {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				answer := r.body
				if strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
					answer = lastEvent(t, r.body)
				}
				m, err := mcpparse.Parse([]byte(answer), mcpparse.Options{AnyNumberID: true})
				if err != nil {
					t.Fatalf("answer %q: %v", answer, err)
				}
				if string(m.ID) != tc.id {
					t.Errorf("id %s, want %s as sent", m.ID, tc.id)
				}
				if m.Error != nil || !strings.Contains(string(m.Result), up.want) {
					t.Errorf("answer %s, want a result with %s", answer, up.want)
				}
			})
		}
	}
}

// lastEvent is the data of the last event of an SSE body.
func lastEvent(t *testing.T, body string) string {
	t.Helper()
	var last string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = d
		}
	}
	if last == "" {
		t.Fatalf("no event in %q", body)
	}
	return last
}

// TestIDRefused: an id whose answer could not be matched (not an integer,
// or beyond what upstreams keep exactly) is refused before anything runs.
func TestIDRefused(t *testing.T) {
	up := record(t, benchBeta(), true)
	e := newEnv(t, nil, registry.Server{Name: "ns/beta", Prefix: "beta_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	for _, id := range []string{`1.5`, `9007199254740992`, `-9007199254740992`, `1e16`, `1e999999999999`, `0.1e1`} {
		t.Run(id, func(t *testing.T) {
			before := len(up.requests())
			body := `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"beta_add","arguments":{"a":1,"b":1}}}`
			r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", body, nil)
			if id == `0.1e1` { // the integer 1
				if r.status != http.StatusOK || !strings.Contains(r.body, `"id":0.1e1`) {
					t.Errorf("status %d: %s", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusBadRequest || !strings.Contains(r.body, "invalid id") {
				t.Errorf("status %d: %s", r.status, r.body)
			}
			if n := up.count(before, func(s seen) bool { return s.rpc == "tools/call" }); n != 0 {
				t.Errorf("the upstream ran %d calls", n)
			}
		})
	}
}

// TestCancelByValue: notifications/cancelled finds the call by the value of
// its id, however either was spelled.
//
// The cancel is sent once the upstream runs the call: the router registers a
// call before it reaches the upstream, and a server ignores a cancel for a
// request it has not received (MCP cancellation: receivers MAY ignore
// unknown request ids; go-sdk's Connection.Cancel does), so a cancel sent on
// the router's registration alone could overtake the call on its way.
func TestCancelByValue(t *testing.T) {
	for _, tc := range []struct {
		name, callID, cancelID string
	}{
		{name: "escaped call id", callID: `"c\u0061ll-1"`, cancelID: `"call-1"`},
		{name: "escaped cancel id", callID: `"a/b"`, cancelID: `"a\/b"`},
		{name: "number spellings", callID: `5.0`, cancelID: `5`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			started, cancelled := make(chan struct{}), make(chan struct{})
			s := mcp.NewServer(&mcp.Implementation{Name: "wait", Version: "1"}, nil)
			mcp.AddTool(s, &mcp.Tool{Name: "wait"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
				close(started)
				<-ctx.Done()
				close(cancelled)
				return nil, nil, ctx.Err()
			})
			e := newEnv(t, nil, registry.Server{Name: "ns/wait", Prefix: "wait_", URL: serve(t, s, false).URL})
			sid := initRaw(t, e.front.URL, e.key, "alice")
			done := make(chan raw, 1)
			go func() {
				done <- do(t, e.front.URL, e.key, http.MethodPost, sid, "alice",
					`{"jsonrpc":"2.0","id":`+tc.callID+`,"method":"tools/call","params":{"name":"wait_wait","arguments":{"text":""}}}`, nil)
			}()
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream never ran the call")
			}
			cancelRequest(t, e, sid, `{"requestId":`+tc.cancelID+`}`)
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream call was not cancelled")
			}
			<-done
		})
	}
}

// openStream opens a GET stream on the router as subject of testIssuer,
// whose token expires at callerExpiry (zero: no expiry).
func openStream(t *testing.T, url string, key assertion.Key, sid, subject string, callerExpiry time.Time) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(streamReq(t, url, key, sid, subject, callerExpiry))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	return resp
}

// streamReq is the GET of a session's stream as subject of testIssuer,
// whose token expires at callerExpiry (zero: no expiry).
func streamReq(t *testing.T, url string, key assertion.Key, sid, subject string, callerExpiry time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer caller-"+subject)
	req.Header.Set("Mcp-Session-Id", sid)
	v, err := assertion.NewSigner(key).Sign(assertion.Claims{Issuer: testIssuer, Subject: subject, CallerExpiry: callerExpiry, BodyHash: assertion.BodyHash(nil)})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(assertion.Header, v)
	return req
}

// streamEnd reports, on the returned channel, when the stream's body ends.
func streamEnd(resp *http.Response) <-chan time.Time {
	end := make(chan time.Time, 1)
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		end <- time.Now()
	}()
	return end
}

// TestDeleteEndsSession: DELETE ends the session's GET stream on this
// replica at once, and the session is never resurrected: later requests
// get 404 and the upstream sees no initialize after the DELETE.
func TestDeleteEndsSession(t *testing.T) {
	up := record(t, alphaMCP(), false)
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	other := initRaw(t, e.front.URL, e.key, "alice")
	// Upstream sessions, and so their GET streams, open on first use.
	for _, s := range []string{sid, other} {
		call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"alpha_echo","arguments":{"text":"x"}}}`
		if r := do(t, e.front.URL, e.key, http.MethodPost, s, "alice", call, nil); r.status != http.StatusOK {
			t.Fatalf("call: %d %s", r.status, r.body)
		}
	}
	stream := openStream(t, e.front.URL, e.key, sid, "alice", time.Time{})
	otherStream := openStream(t, e.front.URL, e.key, other, "alice", time.Time{})
	ended, otherEnded := streamEnd(stream), streamEnd(otherStream)
	waitFor(t, "the upstream GET streams", func() bool {
		return up.count(0, func(s seen) bool { return s.http == http.MethodGet }) == 2
	})
	mark := len(up.requests())
	if r := do(t, e.front.URL, e.key, http.MethodDelete, sid, "alice", "", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
		t.Fatal("the GET stream of the deleted session is still open")
	}
	for _, m := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		body := ""
		if m == http.MethodPost {
			body = `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"alpha_echo","arguments":{"text":"x"}}}`
		}
		if r := do(t, e.front.URL, e.key, m, sid, "alice", body, nil); r.status != http.StatusNotFound {
			t.Errorf("%s after DELETE: %d %s", m, r.status, r.body)
		}
	}
	// The upstream stream's end and the watcher's retry pause (1 s) pass.
	time.Sleep(1500 * time.Millisecond)
	if n := up.count(mark, func(s seen) bool { return s.rpc == "initialize" || s.rpc == "tools/call" }); n != 0 {
		t.Errorf("the upstream got %d initialize or calls after the DELETE: %+v", n, up.requests()[mark:])
	}
	select {
	case <-otherEnded:
		t.Error("another session's stream ended with the DELETE")
	default:
	}
}

// TestEndedSessionNotReopened: a call in flight when its session is
// deleted, or expires, cannot open a new upstream session for it.
func TestEndedSessionNotReopened(t *testing.T) {
	up := record(t, alphaMCP(), true)
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: up.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	s, err := session.Open(e.router.sealer, sid)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := e.reg.Load().Server("ns/alpha")
	if r := do(t, e.front.URL, e.key, http.MethodDelete, sid, "alice", "", nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", r.status)
	}
	mark := len(up.requests())
	// What a request opened before the DELETE would do next: the upstream
	// answered 404 (its session was deleted), so it asks for a new one.
	if _, err := e.router.fwd.Reinit(t.Context(), s, srv, "Bearer up-ns/alpha", upstream.Session{}); !errors.Is(err, session.ErrEnded) {
		t.Errorf("reinit of an ended session: %v", err)
	}
	// An expired session, likewise.
	expired := &session.Record{ID: "old", Issuer: testIssuer, Subject: "alice", Version: "2025-06-18", Issued: time.Now().Add(-25 * time.Hour).Unix()}
	if _, err := e.router.fwd.Reinit(t.Context(), expired, srv, "Bearer up-ns/alpha", upstream.Session{}); !errors.Is(err, session.ErrEnded) {
		t.Errorf("reinit of an expired session: %v", err)
	}
	if n := up.count(mark, func(s seen) bool { return s.rpc == "initialize" }); n != 0 {
		t.Errorf("%d upstream initializes for an ended session", n)
	}
}

// TestStreamExpiry: a GET stream ends when the caller's token expires or the
// session does; a caller without an expiry keeps it.
func TestStreamExpiry(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ttl          time.Duration
		callerExpiry time.Duration // from now; 0: none
		endsWithin   time.Duration // 0: stays open
	}{
		{name: "caller token expires", callerExpiry: 2 * time.Second, endsWithin: 3 * time.Second},
		{name: "session expires", ttl: 2 * time.Second, endsWithin: 3 * time.Second},
		{name: "no expiry", endsWithin: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *Config) { c.SessionTTL = tc.ttl }, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: alphaServer(t).URL})
			sid := initRaw(t, e.front.URL, e.key, "alice")
			var exp time.Time
			if tc.callerExpiry > 0 {
				exp = time.Now().Add(tc.callerExpiry)
			}
			start := time.Now()
			ended := streamEnd(openStream(t, e.front.URL, e.key, sid, "alice", exp))
			wait := tc.endsWithin
			if wait == 0 {
				wait = 3 * time.Second
			}
			select {
			case at := <-ended:
				if tc.endsWithin == 0 {
					t.Fatalf("the stream ended after %v", at.Sub(start))
				}
				if d := at.Sub(start); d < 500*time.Millisecond {
					t.Errorf("the stream ended after %v, before the expiry", d)
				}
			case <-time.After(wait):
				if tc.endsWithin != 0 {
					t.Fatalf("the stream is open %v later", wait)
				}
			}
		})
	}
}

// passAuthz is an Authorizer with token exchange on (a token per server) or
// off (no token: the router sends none), or one that passes the caller's
// token through.
type passAuthz struct {
	testAuthz
	exchange    bool
	passthrough bool // answer with the caller's own token, as authz did without exchange
}

func (a *passAuthz) UpstreamAuthorization(_ context.Context, caller, server string) (string, error) {
	if caller == "" {
		return "", errors.New("no caller")
	}
	if a.passthrough {
		return caller, nil
	}
	if !a.exchange {
		return "", nil
	}
	return "Bearer up-" + server, nil
}

// TestNoTokenPassthrough: nothing the router sends upstream carries the
// caller's own token: initialize, initialized, lists, calls (also when
// authz resolved the server but set no token), relayed responses,
// cancellations, notifications, GET streams and DELETE. With exchange on
// every request carries the token for that server; off, none.
func TestNoTokenPassthrough(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth Authorizer // nil: no Authorizer
		want string     // the only Authorization upstream
	}{
		{name: "exchange on", auth: &passAuthz{exchange: true}, want: "Bearer up-ns/alpha"},
		{name: "exchange off", auth: &passAuthz{}, want: ""},
		{name: "authorizer passes the caller's token", auth: &passAuthz{passthrough: true}, want: ""},
		{name: "no authorizer", auth: nil, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := record(t, alphaMCP(), false)
			e := newEnvWith(t, func(_ *Config, d *Deps) { d.Authorizer = tc.auth }, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: up.URL})
			cs, _ := e.client("alice", &mcp.ClientOptions{
				ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": "yes"}}, nil
				},
			})
			if names := toolNames(t, cs); !slices.Contains(names, "alpha_echo") {
				t.Fatalf("tools %q", names)
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "alpha_ask", Arguments: map[string]any{"text": "ok?"}})
			if err != nil || resultText(t, res) != "accept:yes" {
				t.Fatalf("elicitation round trip: %v", err)
			}
			// A call authz resolved to this server without setting a token:
			// the Authorization received is the caller's own.
			sid := initRaw(t, e.front.URL, e.key, "alice")
			body := `{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"alpha_slow","arguments":{"text":""}}}`
			done := make(chan raw, 1)
			go func() {
				done <- do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", body, func(r *http.Request) {
					v, _ := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "tools/call", Server: "ns/alpha", Tool: "slow",
						Issuer: testIssuer, Subject: "alice", BodyHash: assertion.BodyHash([]byte(body))})
					r.Header.Set(assertion.Header, v)
				})
			}()
			// In flight, and on the upstream: a notification that came before
			// the session's upstream session was open would reach no server.
			waitFor(t, "the call at the upstream", func() bool {
				calls := 0
				for _, s := range up.requests() {
					if s.rpc == "tools/call" {
						calls++
					}
				}
				return e.router.fwd.InFlight() == 1 && calls == 2 // alpha_ask's, then this one
			})
			for _, n := range []string{
				`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1"}}`,
				`{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`,
			} {
				if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", n, nil); r.status != http.StatusAccepted {
					t.Fatalf("%s: %d", n, r.status)
				}
			}
			<-done
			if r := do(t, e.front.URL, e.key, http.MethodDelete, sid, "alice", "", nil); r.status != http.StatusNoContent {
				t.Fatalf("DELETE: %d", r.status)
			}
			if err := cs.Close(); err != nil {
				t.Fatal(err)
			}
			kinds := map[string]bool{}
			for _, s := range up.requests() {
				kinds[s.http+" "+s.rpc] = true
				if strings.Contains(s.auth, "caller-") {
					t.Errorf("%s %s carried the caller's token", s.http, s.rpc)
				}
				if s.auth != tc.want {
					t.Errorf("%s %s: Authorization %q, want %q", s.http, s.rpc, s.auth, tc.want)
				}
			}
			for _, k := range []string{
				"POST initialize", "POST notifications/initialized", "POST tools/list", "POST tools/call",
				"POST ", // the client's answer to the elicitation
				"POST notifications/cancelled", "POST notifications/roots/list_changed", "GET ", "DELETE ",
			} {
				if !kinds[k] {
					t.Errorf("the upstream received no %q: %v", k, kinds)
				}
			}
		})
	}
}

// TestRelayedIDByValue: the client's answer to a server request relayed
// with a wrapped id finds its way back when the client spells that id
// differently (here with an escaped letter).
func TestRelayedIDByValue(t *testing.T) {
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: alphaServer(t).URL})
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"elicitation":{}},"clientInfo":{"name":"raw","version":"1"}}}`
	r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice", init, nil)
	sid := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %s", r.status, r.body)
	}
	call := `{"jsonrpc":"2.0","id":"ask-1","method":"tools/call","params":{"name":"alpha_ask","arguments":{"text":"ok?"}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.front.URL+"/mcp", strings.NewReader(call))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Authorization", "Bearer caller-alice")
	v, err := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "tools/call", Issuer: testIssuer, Subject: "alice", BodyHash: assertion.BodyHash([]byte(call))})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(assertion.Header, v)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("answer %d %s: %s", resp.StatusCode, ct, b)
	}
	events := upstream.NewSSEReader(resp.Body, 1<<20)
	data, err := events.Next()
	if err != nil {
		t.Fatal(err)
	}
	ask, err := mcpparse.Parse(data, mcpparse.Options{})
	if err != nil || ask.Method != "elicitation/create" || !strings.HasPrefix(string(ask.ID), `"mcpr.`) {
		t.Fatalf("first event %s: %v", data, err)
	}
	respelled := `"\u006d` + string(ask.ID[2:]) // "m" escaped
	answer := `{"jsonrpc":"2.0","id":` + respelled + `,"result":{"action":"accept","content":{"answer":"yes"}}}`
	if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", answer, nil); r.status != http.StatusAccepted {
		t.Fatalf("answer: %d %s", r.status, r.body)
	}
	data, err = events.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"id":"ask-1"`) || !strings.Contains(string(data), "accept:yes") {
		t.Errorf("result %s", data)
	}
}
