package router

// The tool definitions the router checks a client's Mcp-Param headers
// against and mirrors to a 2026-07-28 server with (catalog.Definition):
// the caller's own copy, held past its ttlMs within ListRefresh; read anew
// when the client's headers do not match a stale copy or the server
// refuses the call (SEP-2243's HeaderMismatch), and the client's headers
// then checked again before the call is sent once more.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
)

// Definitions of the tool "regional" (see regionalSchema): its marks added
// to (zone too), removed, moved (the header Region now carries zone), and
// one a client must leave out of tools/list (one header named twice).
const (
	schemaAdded    = `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"zone":{"type":"string","x-mcp-header":"Zone"},"n":{"type":"integer"}}}`
	schemaRemoved  = `{"type":"object","properties":{"region":{"type":"string"},"zone":{"type":"string"},"n":{"type":"integer"}}}`
	schemaMoved    = `{"type":"object","properties":{"region":{"type":"string"},"zone":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer"}}}`
	schemaUnlisted = `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"zone":{"type":"string","x-mcp-header":"REGION"}}}`
)

// defsServer is a go-sdk 2026-07-28 server that answers its lists with
// go-sdk's default ttlMs, 0 (immediately stale), with the tool "regional"
// (regionalSchema(false)) answering the Mcp-Param-Region and -Zone headers
// it received. lists, by the Authorization a tools/list came with, rewrites
// the tool's inputSchema in the answer (the server checks calls against its
// own definition, setRegional). It counts tools/list requests by
// Authorization.
type defsServer struct {
	url string
	s   *mcp.Server
	log *paramLog

	mu     sync.Mutex
	lists  map[string]string // inputSchema listed, by Authorization
	listed map[string]int    // tools/list requests, by Authorization
	broken bool              // tools/list fails (500)
}

func newDefsServer(t *testing.T) *defsServer {
	d := &defsServer{lists: map[string]string{}, listed: map[string]int{}}
	d.s = mcp.NewServer(&mcp.Implementation{Name: "defs", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}})
	d.setRegional(string(regionalSchema(false)))
	d.s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			lt, ok := res.(*mcp.ListToolsResult)
			if !ok || err != nil {
				return res, err
			}
			d.mu.Lock()
			schema := d.lists[req.GetExtra().Header.Get("Authorization")]
			d.mu.Unlock()
			for i, tool := range lt.Tools {
				if schema != "" && tool.Name == "regional" {
					c := *tool
					c.InputSchema = json.RawMessage(schema)
					lt.Tools[i] = &c
				}
			}
			return res, err
		}
	})
	d.log = &paramLog{}
	h := d.log.wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return d.s }, &mcp.StreamableHTTPOptions{Stateless: true}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Method") == "tools/list" {
			d.mu.Lock()
			d.listed[r.Header.Get("Authorization")]++
			broken := d.broken
			d.mu.Unlock()
			if broken {
				http.Error(w, "down", http.StatusInternalServerError)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	d.url = srv.URL
	return d
}

// setRegional makes the server's own definition of "regional" schema.
func (d *defsServer) setRegional(schema string) {
	d.s.AddTool(&mcp.Tool{Name: "regional", InputSchema: json.RawMessage(schema)}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return text(req.Extra.Header.Get("Mcp-Param-Region") + "|" + req.Extra.Header.Get("Mcp-Param-Zone")), nil
	})
}

// listAs makes the server list schema to the callers reaching it with auth.
func (d *defsServer) listAs(auth, schema string) {
	d.mu.Lock()
	d.lists[auth] = schema
	d.mu.Unlock()
}

func (d *defsServer) listCount(auth string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.listed[auth]
}

// upAuth is the credential callerAuthz has the router send ns/m for
// subject.
func upAuth(subject string) string { return "Bearer up-" + subject + "-ns/m" }

const meta2026 = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`

// callRegional sends a 2026-07-28 tools/call of m_regional with arguments
// (a JSON object) and the Mcp-Param headers params, as subject.
func callRegional(t *testing.T, e *env, subject, arguments string, params map[string]string) raw {
	t.Helper()
	return callRegionalUntil(t, e, subject, arguments, params, time.Time{})
}

// callRegionalUntil is callRegional for a caller whose token expires at
// expiry (zero: no expiry).
func callRegionalUntil(t *testing.T, e *env, subject, arguments string, params map[string]string, expiry time.Time) raw {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"m_regional","arguments":` + arguments + `,` + meta2026 + `}}`
	v, err := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "tools/call", Issuer: testIssuer, Subject: subject, CallerExpiry: expiry, BodyHash: assertion.BodyHash([]byte(body))})
	if err != nil {
		t.Fatal(err)
	}
	return do(t, e.front.URL, e.key, http.MethodPost, "", subject, body, func(req *http.Request) {
		req.Header.Set(assertion.Header, v)
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", "m_regional")
		for k, v := range params {
			req.Header.Set("Mcp-Param-"+k, v)
		}
	})
}

// listRaw sends a 2026-07-28 tools/list as subject and returns the names.
func listRaw(t *testing.T, e *env, subject string) []string {
	t.Helper()
	r := do(t, e.front.URL, e.key, http.MethodPost, "", subject, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{`+meta2026+`}}`, func(req *http.Request) {
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/list")
	})
	var got struct {
		Result struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
			TTLMs *int `json:"ttlMs"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || r.status != http.StatusOK || got.Result.TTLMs == nil {
		t.Fatalf("tools/list: %d %s (%v)", r.status, r.body, err)
	}
	if len(got.Result.Tools) > 0 && *got.Result.TTLMs != 0 {
		t.Errorf("tools/list ttlMs %d, want the upstream's 0", *got.Result.TTLMs)
	}
	var names []string
	for _, tool := range got.Result.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// outcome is what a raw call was answered: its HTTP status, and its
// JSON-RPC error code (0: a result) and the result's text.
type outcome struct {
	Status int
	Code   int
	Text   string
}

func outcomeOf(t *testing.T, r raw) outcome {
	t.Helper()
	var got struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b := r.body
	if _, data, ok := strings.Cut(b, "data: "); ok { // one event
		b, _, _ = strings.Cut(data, "\n")
	}
	if err := json.Unmarshal([]byte(b), &got); err != nil {
		t.Fatalf("answer %d %s: %v", r.status, r.body, err)
	}
	o := outcome{Status: r.status, Code: got.Error.Code}
	if len(got.Result.Content) > 0 {
		o.Text = got.Result.Content[0].Text
	}
	return o
}

// TestDefinitionChanged: the server changes the tool's marks after the
// router read its list (ttlMs 0: the router's copy is stale at once, and
// it holds it). A client whose headers follow its own old list, or the new
// one, has its call run only with header values equal to its own headers:
// a call the server refuses is answered HeaderMismatch when the client's
// headers do not match the definition read anew (never resent with values
// the client's headers do not carry, which a gateway's policy read), and a
// client's headers that do not match the router's stale copy are checked
// against the definition read anew before it is refused.
func TestDefinitionChanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		schema string            // the server's own definition, from the call on
		listed string            // what its list says from the call on ("": schema)
		params map[string]string // the client's Mcp-Param headers
		want   outcome
		calls  []paramCall // tools/call upstream
		lists  int         // upstream tools/list requests, the first list included
	}{
		{name: "mark added, client's old list", schema: schemaAdded, params: map[string]string{"Region": "us"},
			want:  outcome{Status: http.StatusBadRequest, Code: -32020},
			calls: []paramCall{{params: map[string]string{"Mcp-Param-Region": "us"}, status: http.StatusBadRequest}}, lists: 2},
		{name: "mark added, client's new list", schema: schemaAdded, params: map[string]string{"Region": "us", "Zone": "eu"},
			want:  outcome{Status: http.StatusOK, Text: "us|eu"},
			calls: []paramCall{{params: map[string]string{"Mcp-Param-Region": "us", "Mcp-Param-Zone": "eu"}, status: http.StatusOK}}, lists: 2},
		{name: "mark removed, client's old list", schema: schemaRemoved, params: map[string]string{"Region": "us"},
			want:  outcome{Status: http.StatusOK, Text: "us|"}, // the header the client sent, with its value: the server ignores it
			calls: []paramCall{{params: map[string]string{"Mcp-Param-Region": "us"}, status: http.StatusOK}}, lists: 1},
		{name: "mark removed, client's new list", schema: schemaRemoved, params: map[string]string{},
			want:  outcome{Status: http.StatusOK, Text: "|"},
			calls: []paramCall{{params: map[string]string{}, status: http.StatusOK}}, lists: 2},
		{name: "mark moved, client's old list", schema: schemaMoved, params: map[string]string{"Region": "us"},
			want:  outcome{Status: http.StatusBadRequest, Code: -32020},
			calls: []paramCall{{params: map[string]string{"Mcp-Param-Region": "us"}, status: http.StatusBadRequest}}, lists: 2},
		{name: "mark moved, client's new list", schema: schemaMoved, params: map[string]string{"Region": "eu"},
			want:  outcome{Status: http.StatusOK, Text: "eu|"},
			calls: []paramCall{{params: map[string]string{"Mcp-Param-Region": "eu"}, status: http.StatusOK}}, lists: 2},
		{name: "now unlisted, client's old list", schema: schemaAdded, listed: schemaUnlisted, params: map[string]string{"Region": "us"},
			want:  outcome{Status: http.StatusOK, Code: -32603},
			calls: []paramCall{{params: map[string]string{"Mcp-Param-Region": "us"}, status: http.StatusBadRequest}}, lists: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newDefsServer(t)
			e := newEnvWith(t, func(_ *Config, d *Deps) { d.Authorizer = &callerAuthz{} }, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.url})
			if names := listRaw(t, e, "alice"); len(names) != 1 || names[0] != "m_regional" {
				t.Fatalf("tools/list %q", names)
			}
			up.setRegional(tc.schema)
			listed := tc.listed
			if listed == "" {
				listed = tc.schema
			}
			up.listAs(upAuth("alice"), listed)
			got := outcomeOf(t, callRegional(t, e, "alice", `{"region":"us","zone":"eu"}`, tc.params))
			if got != tc.want {
				t.Errorf("answer %+v, want %+v", got, tc.want)
			}
			if diff := cmp.Diff(tc.calls, up.log.get(), cmp.AllowUnexported(paramCall{})); diff != "" {
				t.Errorf("tools/call upstream (-want +got):\n%s", diff)
			}
			if n := up.listCount(upAuth("alice")); n != tc.lists {
				t.Errorf("upstream tools/list requests %d, want %d", n, tc.lists)
			}
			if n, unlisted := e.router.UpstreamFailures.Load(), tc.listed == schemaUnlisted; (n != 0) != unlisted {
				t.Errorf("%d upstream failures (a definition the router cannot honour is the server's: %v)", n, unlisted)
			}
		})
	}
}

// TestDefinitionHeld: a 2026-07-28 server's tools/list answered with ttlMs
// 0 is still fetched for every list a client asks for, but the router
// checks and mirrors its calls' Mcp-Param headers from the copy it holds
// for the caller, without a tools/list per call, for ListRefresh at most;
// a caller that never listed has the list fetched once.
func TestDefinitionHeld(t *testing.T) {
	for _, client := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(client, func(t *testing.T) {
			up := newDefsServer(t)
			clk := &clock{}
			e := newEnvWith(t, func(c *Config, d *Deps) { d.Now, c.ListRefresh, d.Authorizer = clk.now, 10*time.Second, &callerAuthz{} },
				registry.Server{Name: "ns/m", Prefix: "m_", URL: up.url})
			cs := connectAs(t, e.front.URL, e.key, "alice", client)
			lists := func(want int, when string) {
				t.Helper()
				if n := up.listCount(upAuth("alice")); n != want {
					t.Errorf("%s: upstream tools/list requests %d, want %d", when, n, want)
				}
			}
			call := func() {
				t.Helper()
				res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "m_regional", Arguments: map[string]any{"region": "us"}})
				if err != nil {
					t.Fatal(err)
				}
				if got := resultText(t, res); res.IsError || got != "us|" {
					t.Errorf("result %q (error %v), want us|", got, res.IsError)
				}
			}
			if client == "2026-07-28" {
				toolNames(t, cs) // it sends the headers of the tools it listed
			}
			for range 6 {
				call()
			}
			lists(1, "six calls")
			toolNames(t, cs)
			toolNames(t, cs)
			lists(3, "two lists (ttlMs 0: each is fetched)")
			call()
			lists(3, "a call after the lists")
			clk.advance(11 * time.Second)
			call()
			lists(4, "a call past ListRefresh")
			for _, c := range up.log.get() {
				if c.status != http.StatusOK || c.params["Mcp-Param-Region"] != "us" {
					t.Errorf("tools/call upstream %+v, want Mcp-Param-Region us and 200", c)
				}
			}
		})
	}
}

// TestDefinitionPerCaller: the definition the router holds for one caller
// never serves another's call. The server lists "regional" to alice with
// Region marking region and to bob with Region marking zone (its own
// definition): bob's call whose Mcp-Param-Region carries region's value
// matches alice's copy, not bob's, and is refused by the router, nothing
// sent upstream; bob's list is read for it; bob's call that follows his
// own list goes through.
func TestDefinitionPerCaller(t *testing.T) {
	up := newDefsServer(t)
	up.setRegional(schemaMoved)
	up.listAs(upAuth("alice"), string(regionalSchema(false)))
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Authorizer = &callerAuthz{} }, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.url})
	listRaw(t, e, "alice")
	args := `{"region":"us","zone":"eu"}`
	if got, want := outcomeOf(t, callRegional(t, e, "alice", args, map[string]string{"Region": "us"})), (outcome{Status: http.StatusBadRequest, Code: -32020}); got != want {
		t.Errorf("alice's call: %+v, want %+v (the server checks its own definition)", got, want)
	}
	before := len(up.log.get())
	if got, want := outcomeOf(t, callRegional(t, e, "bob", args, map[string]string{"Region": "us"})), (outcome{Status: http.StatusBadRequest, Code: -32020}); got != want {
		t.Errorf("bob's call with alice's header: %+v, want %+v", got, want)
	}
	if n := len(up.log.get()) - before; n != 0 {
		t.Errorf("bob's call refused by the router reached the server %d times", n)
	}
	if n := up.listCount(upAuth("bob")); n != 1 {
		t.Errorf("bob's tools/list requests upstream %d, want 1", n)
	}
	if got, want := outcomeOf(t, callRegional(t, e, "bob", args, map[string]string{"Region": "eu"})), (outcome{Status: http.StatusOK, Text: "eu|"}); got != want {
		t.Errorf("bob's call: %+v, want %+v", got, want)
	}
	if n := up.listCount(upAuth("bob")); n != 1 {
		t.Errorf("bob's tools/list requests upstream %d, want 1 (his copy held)", n)
	}
}

// TestDefinitionUnlisted: a tool whose new definition a client must leave
// out of tools/list is left out of the next list at once, though the
// router holds the caller's older, valid copy; and a call to it is then
// refused with the reason, nothing sent upstream.
func TestDefinitionUnlisted(t *testing.T) {
	up := newDefsServer(t)
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Authorizer = &callerAuthz{} }, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.url})
	if names := listRaw(t, e, "alice"); len(names) != 1 {
		t.Fatalf("tools/list %q, want m_regional", names)
	}
	up.listAs(upAuth("alice"), schemaUnlisted)
	if names := listRaw(t, e, "alice"); len(names) != 0 {
		t.Errorf("tools/list %q after the tool's definition turned invalid, want none", names)
	}
	got := outcomeOf(t, callRegional(t, e, "alice", `{"region":"us"}`, map[string]string{"Region": "us"}))
	if want := (outcome{Status: http.StatusOK, Code: -32603}); got != want {
		t.Errorf("call: %+v, want %+v", got, want)
	}
	if calls := up.log.get(); len(calls) != 0 {
		t.Errorf("tools/call upstream %+v, want none", calls)
	}
}

// TestDefinitionNotServed: a list the router holds past its ttlMs only for
// its callers' definitions is never served: when the server's next list
// fails, the client's tools/list leaves the server's tools out (as when
// nothing is held). Until the list is asked again (listRetry) a call whose
// headers need the tool's definition is refused, as before: the failed
// fetch leaves the tool unknown for that while, and nothing is sent.
func TestDefinitionNotServed(t *testing.T) {
	up := newDefsServer(t)
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Authorizer = &callerAuthz{} }, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.url})
	if names := listRaw(t, e, "alice"); len(names) != 1 {
		t.Fatalf("tools/list %q, want m_regional", names)
	}
	up.mu.Lock()
	up.broken = true
	up.mu.Unlock()
	if names := listRaw(t, e, "alice"); len(names) != 0 {
		t.Errorf("tools/list %q while the server's list fails, want none (the held one is stale)", names)
	}
	got := outcomeOf(t, callRegional(t, e, "alice", `{"region":"us"}`, map[string]string{"Region": "us"}))
	if want := (outcome{Status: http.StatusBadRequest, Code: -32020}); got != want {
		t.Errorf("call: %+v, want %+v", got, want)
	}
	if calls := up.log.get(); len(calls) != 0 {
		t.Errorf("tools/call upstream %+v, want none", calls)
	}
}

// TestDefinitionCallerExpiry: the definition held for a caller is not used
// past the expiry of the token it was read for: a call with a renewed token
// has the list read again.
func TestDefinitionCallerExpiry(t *testing.T) {
	up := newDefsServer(t)
	clk := &clock{}
	e := newEnvWith(t, func(c *Config, d *Deps) { d.Now, c.ListRefresh, d.Authorizer = clk.now, time.Minute, &callerAuthz{} },
		registry.Server{Name: "ns/m", Prefix: "m_", URL: up.url})
	args, params := `{"region":"us"}`, map[string]string{"Region": "us"}
	want := outcome{Status: http.StatusOK, Text: "us|"}
	for i, step := range []struct {
		advance time.Duration
		expiry  time.Duration // of the caller's token, from now
		lists   int
	}{
		{expiry: 2 * time.Second, lists: 1},
		{expiry: 2 * time.Second, lists: 1},
		{advance: 3 * time.Second, expiry: time.Hour, lists: 2},
		{expiry: time.Hour, lists: 2},
	} {
		clk.advance(step.advance)
		if got := outcomeOf(t, callRegionalUntil(t, e, "alice", args, params, clk.now().Add(step.expiry))); got != want {
			t.Errorf("call %d: %+v, want %+v", i, got, want)
		}
		if n := up.listCount(upAuth("alice")); n != step.lists {
			t.Errorf("call %d: upstream tools/list requests %d, want %d", i, n, step.lists)
		}
	}
}
