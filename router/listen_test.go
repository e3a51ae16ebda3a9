package router

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/listen"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// upLog records what one upstream server received: each request's MCP
// method (or HTTP method for GET and DELETE), and the listens and GET
// streams open right now.
type upLog struct {
	mu      sync.Mutex
	methods []string
	open    map[string]int // "subscriptions/listen" or "GET" -> open now
}

func (l *upLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Mcp-Method") // Mcp-Method goes to 2026 servers only
		if r.Method != http.MethodPost {
			key = r.Method
		}
		l.mu.Lock()
		l.methods = append(l.methods, key)
		if l.open == nil {
			l.open = map[string]int{}
		}
		l.open[key]++
		l.mu.Unlock()
		defer func() {
			l.mu.Lock()
			l.open[key]--
			l.mu.Unlock()
		}()
		h.ServeHTTP(w, r)
	})
}

func (l *upLog) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.methods {
		if m == key {
			n++
		}
	}
	return n
}

func (l *upLog) opened(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[key]
}

func (l *upLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.methods...)
}

// listenServer is a go-sdk server of one generation ("modern": stateless,
// 2026-07-28 only; "legacy": sessions, 2025 revisions only) with a tool, a
// prompt and the resources <base>doc and <base>secret to subscribe to.
type listenServer struct {
	mcp  *mcp.Server
	http *httptest.Server
	log  *upLog

	mu           sync.Mutex
	unsubscribed []string // resources/unsubscribe, or the end of a listen's subscription
}

func newListenServer(t *testing.T, gen, base string) *listenServer {
	ls := &listenServer{log: &upLog{}}
	opts := &mcp.ServerOptions{
		SupportedProtocolVersions: []string{"2025-11-25", "2025-06-18", "2025-03-26"},
		SubscribeHandler:          func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(_ context.Context, req *mcp.UnsubscribeRequest) error {
			ls.mu.Lock()
			ls.unsubscribed = append(ls.unsubscribed, req.Params.URI)
			ls.mu.Unlock()
			return nil
		},
	}
	if gen == "modern" {
		opts.SupportedProtocolVersions = []string{"2026-07-28"}
	}
	ls.mcp = mcp.NewServer(&mcp.Implementation{Name: gen, Version: "1"}, opts)
	mcp.AddTool(ls.mcp, &mcp.Tool{Name: "t0"}, func(context.Context, *mcp.CallToolRequest, echoIn) (*mcp.CallToolResult, any, error) {
		return text("t0"), nil, nil
	})
	ls.mcp.AddPrompt(&mcp.Prompt{Name: "p0"}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return &mcp.GetPromptResult{}, nil
	})
	for _, name := range []string{"doc", "secret"} {
		ls.mcp.AddResource(&mcp.Resource{URI: base + name, Name: name}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "x"}}}, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return ls.mcp }, &mcp.StreamableHTTPOptions{Stateless: gen == "modern"})
	ls.http = httptest.NewServer(ls.log.wrap(h))
	t.Cleanup(ls.http.Close)
	return ls
}

func (ls *listenServer) update(t *testing.T, uri string) {
	t.Helper()
	if err := ls.mcp.ResourceUpdated(t.Context(), &mcp.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
}

func (ls *listenServer) unsubscribedFrom() []string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return append([]string(nil), ls.unsubscribed...)
}

// revocableAuthz is testAuthz whose resource decisions can be withdrawn per
// caller (its Authorization), as a policy change would.
type revocableAuthz struct {
	testAuthz
	mu      sync.Mutex
	revoked map[string]bool
}

func (a *revocableAuthz) revoke(caller string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked == nil {
		a.revoked = map[string]bool{}
	}
	a.revoked[caller] = true
}

func (a *revocableAuthz) Visible(ctx context.Context, caller string, targets []policy.Target) ([]bool, error) {
	out, err := a.testAuthz.Visible(ctx, caller, targets)
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, t := range targets {
		if t.Resource != "" && a.revoked[caller] {
			out[i] = false
		}
	}
	return out, err
}

// listenEnv is a router in front of a modern server (resources r://m/,
// routed by the registry's resource prefix) and a legacy one (r://l/,
// routed by the lists).
func listenEnv(t *testing.T) (*env, *listenServer, *listenServer, *revocableAuthz) {
	modern, legacy := newListenServer(t, "modern", "r://m/"), newListenServer(t, "legacy", "r://l/")
	auth := &revocableAuthz{}
	e := newEnvWith(t, func(c *Config, d *Deps) { c.InitTimeout, d.Authorizer = 3*time.Second, auth },
		registry.Server{Name: "ns/modern", Prefix: "m_", URL: modern.http.URL, ResourcePrefixes: []string{"r://m/"}},
		registry.Server{Name: "ns/legacy", Prefix: "l_", URL: legacy.http.URL},
	)
	return e, modern, legacy, auth
}

func listenBody(id, filter string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}},"notifications":` + filter + `}}`
}

// listenReq is a subscriptions/listen of subject through the router, as
// authz would pass it (the assertion names the caller token's expiry).
func listenReq(ctx context.Context, t *testing.T, url string, key assertion.Key, subject, body string, expiry time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer caller-"+subject)
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	v, err := assertion.NewSigner(key).Sign(assertion.Claims{Method: "subscriptions/listen", Issuer: testIssuer, Subject: subject,
		CallerExpiry: expiry, BodyHash: assertion.BodyHash([]byte(body))})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(assertion.Header, v)
	return req
}

// wire is what one client reads of a listen stream, event by event; it
// is closed when the stream ends.
type wire <-chan string

func openListen(ctx context.Context, t *testing.T, e *env, subject, body string, expiry time.Time) wire {
	t.Helper()
	resp, err := http.DefaultClient.Do(listenReq(ctx, t, e.front.URL, e.key, subject, body, expiry))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("listen: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sr := upstream.NewSSEReader(resp.Body, 1<<20)
		for {
			data, err := sr.Next()
			if err != nil {
				return
			}
			ch <- string(data)
		}
	}()
	return ch
}

// next is the next event of w within d; "" when none came or w ended.
func (w wire) next(d time.Duration) (string, bool) {
	select {
	case ev, ok := <-w:
		return ev, ok
	case <-time.After(d):
		return "", true
	}
}

// await reads w until an event containing want, and returns what came
// before it; it fails after 10s.
func (w wire) await(t *testing.T, want string) []string {
	t.Helper()
	var before []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-w:
			if !ok {
				t.Fatalf("the stream ended before %s; got %q", want, before)
			}
			if strings.Contains(ev, want) {
				return before
			}
			before = append(before, ev)
		case <-deadline:
			t.Fatalf("no %s within 10s; got %q", want, before)
		}
	}
}

// event is one message of a listen stream, decoded.
type event struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result *struct {
		ResultType string         `json:"resultType"`
		Meta       map[string]any `json:"_meta"`
	} `json:"result"`
	Params struct {
		Meta          map[string]any  `json:"_meta"`
		URI           string          `json:"uri"`
		Notifications json.RawMessage `json:"notifications"`
	} `json:"params"`
}

func decodeEvent(t *testing.T, s string) event {
	t.Helper()
	var ev event
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		t.Fatalf("event %q: %v", s, err)
	}
	return ev
}

// TestListenMerge: a 2026 client's subscriptions/listen is one stream
// merging a 2026 server (its own subscriptions/listen) and a 2025-only one
// (a session of the listen's own: GET stream and resources/subscribe):
// acknowledged first, then resources/updated of the subscribed URIs of both
// and list_changed of the kinds asked for (from both servers and from the
// registry), each with the client's subscription id and nothing of the
// upstream's. Kinds not asked for never come. A server that fails does not
// end the stream: the other one's notifications keep coming.
func TestListenMerge(t *testing.T) {
	e, modern, legacy, _ := listenEnv(t)
	w := openListen(t.Context(), t, e, "alice", listenBody(`"L1"`, `{"toolsListChanged":true,"resourceSubscriptions":["r://m/doc","r://l/doc"]}`), time.Time{})
	first, _ := w.next(10 * time.Second)
	ack := decodeEvent(t, first)
	if ack.Method != "notifications/subscriptions/acknowledged" || ack.Params.Meta[listen.MetaSubscriptionID] != "L1" ||
		string(ack.Params.Notifications) != `{"toolsListChanged":true,"resourceSubscriptions":["r://m/doc","r://l/doc"]}` {
		t.Fatalf("first event %s", first)
	}
	if modern.log.count("initialize") != 0 || modern.log.opened("subscriptions/listen") != 1 {
		t.Errorf("modern server: %q, open listens %d", modern.log.all(), modern.log.opened("subscriptions/listen"))
	}
	// Its own session: one initialize besides the lists' (resources/list
	// routed r://l/doc), its GET stream and its subscription.
	if legacy.log.count("initialize") != 2 || legacy.log.opened("GET") != 1 || legacy.log.count("resources/subscribe") != 1 {
		t.Errorf("legacy server: %q, open GET streams %d", legacy.log.all(), legacy.log.opened("GET"))
	}
	var got []string
	check := func(ev string, method, uri string) {
		t.Helper()
		m := decodeEvent(t, ev)
		if m.Method != method || m.Params.URI != uri || m.Params.Meta[listen.MetaSubscriptionID] != "L1" || len(m.Params.Meta) != 1 || m.ID != nil {
			t.Errorf("event %s, want %s %s with subscriptionId L1 alone", ev, method, uri)
		}
		got = append(got, ev)
	}
	for _, tc := range []struct {
		name   string
		server *listenServer
		uri    string
	}{{"2026 server", modern, "r://m/doc"}, {"2025 server", legacy, "r://l/doc"}} {
		tc.server.update(t, tc.uri)
		before := w.await(t, `"uri":"`+tc.uri+`"`)
		check(`{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"_meta":{"`+listen.MetaSubscriptionID+`":"L1"},"uri":"`+tc.uri+`"}}`, "notifications/resources/updated", tc.uri)
		if len(before) != 0 {
			t.Errorf("%s: before the update: %q", tc.name, before)
		}
		// prompts/list_changed was not asked for: from the legacy server
		// (which sends every session its changes) it is dropped.
		tc.server.mcp.AddPrompt(&mcp.Prompt{Name: "p-" + tc.name}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
		mcp.AddTool(tc.server.mcp, &mcp.Tool{Name: "t1"}, func(context.Context, *mcp.CallToolRequest, echoIn) (*mcp.CallToolResult, any, error) {
			return text("t1"), nil, nil
		})
		for _, ev := range w.await(t, "notifications/tools/list_changed") {
			t.Errorf("%s: before tools/list_changed: %s", tc.name, ev)
		}
		tc.server.mcp.RemoveTools("t1")
		w.await(t, "notifications/tools/list_changed")
	}
	// The registry changes: a list_changed of the kind asked for.
	e.store(
		registry.Server{Name: "ns/modern", Prefix: "m_", URL: modern.http.URL, ResourcePrefixes: []string{"r://m/"}},
		registry.Server{Name: "ns/legacy", Prefix: "l_", URL: legacy.http.URL},
		registry.Server{Name: "ns/other", Prefix: "o_", URL: "http://127.0.0.1:1/mcp"},
	)
	for _, ev := range w.await(t, "notifications/tools/list_changed") {
		if !strings.Contains(ev, "notifications/tools/list_changed") {
			t.Errorf("on a registry change: %s", ev)
		}
	}
	// One server fails: the stream stays, the other server's updates come.
	legacy.http.CloseClientConnections()
	legacy.http.Close()
	modern.update(t, "r://m/doc")
	w.await(t, `"uri":"r://m/doc"`)
	if ev, open := w.next(300 * time.Millisecond); !open || strings.Contains(ev, "result") {
		t.Fatalf("the stream ended with the legacy server: %q", ev)
	}
	if len(got) == 0 {
		t.Fatal("no update checked")
	}
}

// TestListenPerCaller: resources/updated reaches a caller only while the
// policy lets that caller read the URI. alice and bob subscribe to the same
// resource of each generation's server; bob's read is then withdrawn, the
// server updates it: alice gets it, bob's wire never carries it (counted as
// withheld), and bob's stream stays open.
func TestListenPerCaller(t *testing.T) {
	for _, tc := range []struct{ name, server, uri string }{
		{"2026 server", "ns/modern", "r://m/doc"},
		{"2025 server", "ns/legacy", "r://l/doc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, modern, legacy, auth := listenEnv(t)
			srv := map[string]*listenServer{"ns/modern": modern, "ns/legacy": legacy}[tc.server]
			body := listenBody(`7`, `{"resourceSubscriptions":["`+tc.uri+`"]}`)
			alice := openListen(t.Context(), t, e, "alice", body, time.Time{})
			bob := openListen(t.Context(), t, e, "bob", body, time.Time{})
			for _, w := range []wire{alice, bob} {
				w.await(t, "notifications/subscriptions/acknowledged")
			}
			auth.revoke("Bearer caller-bob")
			withheld := func() float64 {
				return testutil.ToFloat64(e.router.metrics.withheld.WithLabelValues(tc.server, "denied"))
			}
			srv.update(t, tc.uri)
			alice.await(t, `"uri":"`+tc.uri+`"`)
			waitFor(t, "bob's update withheld", func() bool { return withheld() == 1 })
			srv.update(t, tc.uri)
			alice.await(t, `"uri":"`+tc.uri+`"`)
			waitFor(t, "bob's second update withheld", func() bool { return withheld() == 2 })
			for {
				ev, open := bob.next(300 * time.Millisecond)
				if !open {
					t.Fatal("bob's stream ended")
				}
				if ev == "" {
					break
				}
				t.Errorf("bob got %s", ev)
			}
		})
	}
}

// TestListenRefused: a listen that subscribes to a resource the caller may
// not read, or that no server has (the same refusal), a malformed filter,
// a listen on a 2025 session and one whose assertion is for another body,
// are refused before anything opens upstream: neither server sees a
// listen, a GET stream or a subscription (the legacy server's resources may
// be listed, with a session of the lists', to route a URI).
func TestListenRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		mod    func(e *env, r *http.Request)
		status int
		code   int
	}{
		{name: "a resource the caller may not read", body: listenBody("1", `{"toolsListChanged":true,"resourceSubscriptions":["r://m/doc","r://m/secret"]}`), status: 403, code: forward.CodeForbidden},
		{name: "a 2025 server's resource the caller may not read", body: listenBody("1", `{"resourceSubscriptions":["r://l/secret"]}`), status: 403, code: forward.CodeForbidden},
		{name: "a resource no server has", body: listenBody("1", `{"resourceSubscriptions":["r://x/doc"]}`), status: 403, code: forward.CodeForbidden},
		{name: "no filter", body: `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, status: 200, code: forward.CodeInvalidParams},
		{name: "a flag not a boolean", body: listenBody("1", `{"toolsListChanged":"yes"}`), status: 200, code: forward.CodeInvalidParams},
		{name: "subscriptions not strings", body: listenBody("1", `{"resourceSubscriptions":[{"uri":"r://m/doc"}]}`), status: 200, code: forward.CodeInvalidParams},
		{name: "too many subscriptions", body: listenBody("1", `{"resourceSubscriptions":["r://m/doc"`+strings.Repeat(`,"r://m/doc"`, listen.MaxURIs)+`]}`), status: 200, code: forward.CodeInvalidParams},
		{name: "assertion for another body", body: listenBody("1", `{"toolsListChanged":true}`), mod: func(e *env, r *http.Request) {
			v, _ := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "subscriptions/listen", Issuer: testIssuer, Subject: "alice",
				BodyHash: assertion.BodyHash([]byte(listenBody("1", `{"toolsListChanged":true,"resourceSubscriptions":["r://m/secret"]}`)))})
			r.Header.Set(assertion.Header, v)
		}, status: 401, code: forward.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, modern, legacy, _ := listenEnv(t)
			req := listenReq(t.Context(), t, e.front.URL, e.key, "alice", tc.body, time.Time{})
			if tc.mod != nil {
				tc.mod(e, req)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var a struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != tc.status || a.Error.Code != tc.code {
				t.Fatalf("answer %d %+v (%v), want %d %d", resp.StatusCode, a, err, tc.status, tc.code)
			}
			for name, s := range map[string]*listenServer{"2026": modern, "2025": legacy} {
				for _, m := range s.log.all() {
					switch m {
					case "subscriptions/listen", "GET", "resources/subscribe":
						t.Errorf("the %s server saw %s", name, m)
					}
				}
			}
		})
	}
	t.Run("a 2025 session", func(t *testing.T) {
		e, _, _, _ := listenEnv(t)
		sid := initRaw(t, e.front.URL, e.key, "alice")
		r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true}}}`, nil)
		if a := decodeAnswer(t, r); a.Error == nil || a.Error.Code != forward.CodeNoMethod {
			t.Fatalf("answer %d %s", r.status, r.body)
		}
	})
}

// TestListenEnds: the stream ends, and every upstream listen, GET stream
// and session of it is closed, when the caller's token expires and when
// the router shuts down (both with the graceful-closure result), and when
// the client goes away.
func TestListenEnds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		expiry   time.Duration // from now; 0: none
		shutdown bool          // the router shuts down; else, without expiry, the client goes away
	}{
		{name: "caller token expires", expiry: 2 * time.Second},
		{name: "router shuts down", shutdown: true},
		{name: "client disconnects"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, modern, legacy, _ := listenEnv(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var exp time.Time
			if tc.expiry > 0 {
				exp = time.Now().Add(tc.expiry)
			}
			start := time.Now()
			w := openListen(ctx, t, e, "alice", listenBody(`"x"`, `{"toolsListChanged":true,"resourceSubscriptions":["r://m/doc","r://l/doc"]}`), exp)
			w.await(t, "notifications/subscriptions/acknowledged")
			if modern.log.opened("subscriptions/listen") != 1 || legacy.log.opened("GET") != 1 {
				t.Fatalf("upstream listens not open: %q %q", modern.log.all(), legacy.log.all())
			}
			switch {
			case tc.expiry > 0 || tc.shutdown:
				if tc.shutdown {
					e.router.Close()
				}
				before := w.await(t, `{"jsonrpc":"2.0","id":"x","result":{"resultType":"complete","_meta":{"io.modelcontextprotocol/subscriptionId":"x"}}}`)
				if len(before) != 0 {
					t.Errorf("before the closure: %q", before)
				}
				// The assertion carries the expiry in whole seconds.
				if d := time.Since(start); tc.expiry > 0 && (d < tc.expiry-time.Second-100*time.Millisecond || d > tc.expiry+2*time.Second) {
					t.Errorf("closed after %v, the token expired after %v", d, tc.expiry)
				}
				if _, open := w.next(2 * time.Second); open {
					t.Error("the stream is open after the closure")
				}
			default:
				cancel()
			}
			waitFor(t, "the upstream listens closed", func() bool {
				return modern.log.opened("subscriptions/listen") == 0 && legacy.log.opened("GET") == 0 && legacy.log.count("DELETE") == 1
			})
			waitFor(t, "the 2026 server's subscription ended", func() bool {
				return strings.Join(modern.unsubscribedFrom(), ",") == "r://m/doc"
			})
		})
	}
}

// TestListenGoSDKClient: go-sdk's 2026-07-28 client, through the router,
// subscribes to a resource of each generation's server (a listen per URI)
// and listens to tool list changes (a listen of its own, opened at
// connect since server/discover declares listChanged).
func TestListenGoSDKClient(t *testing.T) {
	e, modern, legacy, _ := listenEnv(t)
	updates, changes := make(chan string, 8), make(chan struct{}, 8)
	sg := &signer{base: http.DefaultTransport, s: assertion.NewSigner(e.key), subject: "alice"}
	c := mcp.NewClient(&mcp.Implementation{Name: "listen-client", Version: "1"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updates <- req.Params.URI },
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changes <- struct{}{} },
	})
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: e.front.URL + "/mcp", HTTPClient: &http.Client{Transport: sg}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for _, uri := range []string{"r://m/doc", "r://l/doc"} {
		if err := cs.Subscribe(t.Context(), &mcp.SubscribeParams{URI: uri}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the upstream listens", func() bool {
		return modern.log.opened("subscriptions/listen") == 2 && legacy.log.opened("GET") == 2
	})
	for _, tc := range []struct {
		server *listenServer
		uri    string
	}{{modern, "r://m/doc"}, {legacy, "r://l/doc"}} {
		tc.server.update(t, tc.uri)
		select {
		case got := <-updates:
			if got != tc.uri {
				t.Fatalf("update of %s, want %s", got, tc.uri)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no update of %s", tc.uri)
		}
	}
	mcp.AddTool(modern.mcp, &mcp.Tool{Name: "t2"}, func(context.Context, *mcp.CallToolRequest, echoIn) (*mcp.CallToolResult, any, error) {
		return text("t2"), nil, nil
	})
	select {
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("no tools/list_changed")
	}
}

// TestListenUpstreamRefuses: a 2026 server that answers subscriptions/listen
// at once with an error (a hand-written server: go-sdk always streams a
// listen) is asked once, not again and again, and the stream goes on with
// the other server.
func TestListenUpstreamRefuses(t *testing.T) {
	var mu sync.Mutex
	n := 0
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&m)
		w.Header().Set("Content-Type", "application/json")
		switch m.Method {
		case "server/discover":
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{}}}`))
		case "subscriptions/listen":
			mu.Lock()
			n++
			mu.Unlock()
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"error":{"code":-32601,"message":"no"}}`))
		default:
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":{"resultType":"complete","tools":[]}}`))
		}
	}))
	t.Cleanup(refusing.Close)
	modern := newListenServer(t, "modern", "r://m/")
	e := newEnv(t, nil,
		registry.Server{Name: "ns/modern", Prefix: "m_", URL: modern.http.URL, ResourcePrefixes: []string{"r://m/"}},
		registry.Server{Name: "ns/refusing", Prefix: "r_", URL: refusing.URL},
	)
	w := openListen(t.Context(), t, e, "alice", listenBody("1", `{"toolsListChanged":true,"resourceSubscriptions":["r://m/doc"]}`), time.Time{})
	w.await(t, "notifications/subscriptions/acknowledged")
	time.Sleep(2500 * time.Millisecond) // past the first two pauses of a retry
	modern.update(t, "r://m/doc")
	w.await(t, `"uri":"r://m/doc"`)
	mu.Lock()
	defer mu.Unlock()
	if n != 1 {
		t.Fatalf("the refusing server was asked %d times", n)
	}
}

// TestListenUpstreamRewritten: what a server sends on its listen reaches
// the client only as the router rebuilds it: a hand-written 2026 server
// (go-sdk sends none of this) streams an update of a URI the client did
// not subscribe to, a log message, progress, a request to the client, and
// a list change and an update with _meta and members of its own; the
// client gets the list change and the subscribed update, with its own
// subscription id and nothing else; the other update is counted withheld.
func TestListenUpstreamRewritten(t *testing.T) {
	chatty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&m)
		if m.Method != "subscriptions/listen" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{}}}`))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		meta := `"_meta":{"io.modelcontextprotocol/subscriptionId":` + string(m.ID) + `,"x-upstream":"leak"}`
		for _, ev := range []string{
			`{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{` + meta + `,"notifications":{"toolsListChanged":true,"resourceSubscriptions":["r://c/doc"]}}}`,
			`{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{` + meta + `,"uri":"r://c/other"}}`,
			`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"error","data":"leak"}}`,
			`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}`,
			`{"jsonrpc":"2.0","id":9,"method":"sampling/createMessage","params":{"messages":[],"maxTokens":1}}`,
			`{"jsonrpc":"2.0","method":"notifications/prompts/list_changed","params":{` + meta + `}}`,
			`{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{` + meta + `}}`,
			`{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{` + meta + `,"uri":"r://c/doc","title":"leak"}}`,
		} {
			_, _ = w.Write([]byte("event: message\ndata: " + ev + "\n\n"))
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(chatty.Close) // after the router's, which ends the stream
	e := newEnv(t, nil, registry.Server{Name: "ns/chatty", Prefix: "c_", URL: chatty.URL, ResourcePrefixes: []string{"r://c/"}})
	w := openListen(t.Context(), t, e, "alice", listenBody(`"s"`, `{"toolsListChanged":true,"resourceSubscriptions":["r://c/doc"]}`), time.Time{})
	w.await(t, "notifications/subscriptions/acknowledged")
	var got []string
	for range 2 {
		ev, open := w.next(5 * time.Second)
		if !open || ev == "" {
			t.Fatalf("the stream: %q, then nothing", got)
		}
		got = append(got, ev)
	}
	want := []string{
		`{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"s"}}}`,
		`{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"s"},"uri":"r://c/doc"}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the client got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ev, _ := w.next(300 * time.Millisecond); ev != "" {
		t.Errorf("then %s", ev)
	}
	if n := testutil.ToFloat64(e.router.metrics.withheld.WithLabelValues("ns/chatty", "unsubscribed")); n != 1 {
		t.Errorf("withheld unsubscribed %v, want 1", n)
	}
}
