package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// callerAuthz stands in for authz (the consumer interface) with what the
// list tests need of it: each caller gets its own upstream credential per
// server (as a token exchange gives), and the filter hides every entry
// whose name or URI holds "secret", whatever its kind.
type callerAuthz struct {
	mu      sync.Mutex
	targets []policy.Target // of the last Visible
}

func (a *callerAuthz) UpstreamAuthorization(_ context.Context, caller, server string) (string, error) {
	sub, ok := strings.CutPrefix(caller, "Bearer caller-")
	if !ok {
		return "", fmt.Errorf("no caller")
	}
	return "Bearer up-" + sub + "-" + server, nil
}

func (a *callerAuthz) Visible(_ context.Context, _ string, targets []policy.Target) ([]bool, error) {
	a.mu.Lock()
	a.targets = slices.Clone(targets)
	a.mu.Unlock()
	out := make([]bool, len(targets))
	for i, t := range targets {
		out[i] = !strings.Contains(t.Tool+t.Prompt+t.Resource, "secret")
	}
	return out, nil
}

// perCaller is a real go-sdk MCP server per upstream credential: each
// caller is answered with its own tools, prompts, resources and templates
// (and secret ones that policy hides), as an upstream that shows each user
// their own private resources does. It counts the list requests of each
// credential.
type perCaller struct {
	mu      sync.Mutex
	servers map[string]*mcp.Server // by Authorization
	lists   map[string]int         // list requests by Authorization
	opts    *mcp.ServerOptions
	srv     *httptest.Server
	streams streamWatch // GET streams opened, by Authorization
}

func newPerCaller(t *testing.T, opts *mcp.ServerOptions) *perCaller {
	p := &perCaller{servers: map[string]*mcp.Server{}, lists: map[string]int{}, opts: opts}
	h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		return p.server(r.Header.Get("Authorization"))
	}, nil)
	p.srv = httptest.NewServer(p.streams.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			var m struct {
				Method string `json:"method"`
			}
			_ = json.Unmarshal(body, &m)
			if strings.HasSuffix(m.Method, "/list") {
				p.mu.Lock()
				p.lists[r.Header.Get("Authorization")]++
				p.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})))
	t.Cleanup(p.srv.Close)
	return p
}

// server returns the MCP server of one credential ("Bearer up-<sub>-<server>").
func (p *perCaller) server(auth string) *mcp.Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.servers[auth]; ok {
		return s
	}
	sub, _, _ := strings.Cut(strings.TrimPrefix(auth, "Bearer up-"), "-")
	s := mcp.NewServer(&mcp.Implementation{Name: "per-caller", Version: "1"}, p.opts)
	for _, name := range []string{sub + "_tool", "secret_" + sub} {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return text(name), nil, nil
		})
	}
	for _, name := range []string{sub + "_prompt", "secret_" + sub + "_prompt"} {
		s.AddPrompt(&mcp.Prompt{Name: name}, func(context.Context, *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{}, nil
		})
	}
	for _, uri := range []string{"file:///" + sub + "/doc", "file:///secret/" + sub} {
		s.AddResource(&mcp.Resource{URI: uri, Name: uri}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: uri}}}, nil
		})
	}
	for _, tmpl := range []string{"file:///" + sub + "/notes/{name}", "file:///secret/" + sub + "/{name}"} {
		s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: tmpl, Name: tmpl}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: tmpl}}}, nil
		})
	}
	p.servers[auth] = s
	return s
}

func (p *perCaller) listed(sub string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lists["Bearer up-"+sub+"-ns/own"]
}

// cacheFor makes a go-sdk server say ttlMs and cacheScope on every result.
func cacheFor(ttl time.Duration, scope string) *mcp.ServerOptions {
	return &mcp.ServerOptions{SetCacheable: func(_ context.Context, _ mcp.Request, c *mcp.Cacheable) {
		c.TTLMs, c.CacheScope = int(ttl/time.Millisecond), scope
	}}
}

// allEntries lists every kind through the router and returns the entries'
// names and URIs, sorted.
func allEntries(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var out []string
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	for _, x := range tools.Tools {
		out = append(out, x.Name)
	}
	prompts, err := cs.ListPrompts(t.Context(), nil)
	if err != nil {
		t.Fatalf("prompts/list: %v", err)
	}
	for _, x := range prompts.Prompts {
		out = append(out, x.Name)
	}
	res, err := cs.ListResources(t.Context(), nil)
	if err != nil {
		t.Fatalf("resources/list: %v", err)
	}
	for _, x := range res.Resources {
		out = append(out, x.URI)
	}
	tmpls, err := cs.ListResourceTemplates(t.Context(), nil)
	if err != nil {
		t.Fatalf("resources/templates/list: %v", err)
	}
	for _, x := range tmpls.ResourceTemplates {
		out = append(out, x.URITemplate)
	}
	slices.Sort(out)
	return out
}

func ownEntries(sub string) []string {
	out := []string{
		"own_" + sub + "_prompt", "own_" + sub + "_tool",
		"file:///" + sub + "/doc", "file:///" + sub + "/notes/{name}",
	}
	slices.Sort(out)
	return out
}

// TestListsPerCaller: an upstream that answers each caller's credential
// with that caller's own entries, and says its lists may be cached for a
// minute: alice and bob each see their own entries of every kind, never the
// other's (from the cache or not), and none that policy hides.
func TestListsPerCaller(t *testing.T) {
	for _, scope := range []string{"public", "private"} {
		t.Run("cacheScope="+scope, func(t *testing.T) {
			up := newPerCaller(t, cacheFor(time.Minute, scope))
			e := newEnvWith(t, func(_ *Config, d *Deps) { d.Authorizer = &callerAuthz{} }, registry.Server{Name: "ns/own", Prefix: "own_", URL: up.srv.URL})
			alice, _ := e.client("alice", nil)
			bob, _ := e.client("bob", nil)
			for _, step := range []struct {
				name   string
				cs     *mcp.ClientSession
				sub    string
				listed int // list requests the upstream saw for sub after the step
			}{
				{name: "alice first", cs: alice, sub: "alice", listed: 4},
				{name: "bob while alice's lists are cached", cs: bob, sub: "bob", listed: 4},
				{name: "alice from her cache", cs: alice, sub: "alice", listed: 4},
				{name: "bob from his cache", cs: bob, sub: "bob", listed: 4},
			} {
				t.Run(step.name, func(t *testing.T) {
					if diff := cmpStrings(ownEntries(step.sub), allEntries(t, step.cs)); diff != "" {
						t.Errorf("entries: %s", diff)
					}
					if n := up.listed(step.sub); n != step.listed {
						t.Errorf("upstream lists for %s = %d, want %d", step.sub, n, step.listed)
					}
				})
			}
		})
	}
}

func cmpStrings(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("got %q, want %q", got, want)
}

// TestListsFilterTargets: each kind reaches the filter as the request that
// uses its entries: tools by unprefixed name, prompts by unprefixed name,
// resources by URI and templates by uriTemplate.
func TestListsFilterTargets(t *testing.T) {
	up := newPerCaller(t, nil)
	a := &callerAuthz{}
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Authorizer = a }, registry.Server{Name: "ns/own", Prefix: "own_", URL: up.srv.URL})
	cs, _ := e.client("alice", nil)
	for _, tc := range []struct {
		name string
		list func() error
		want []policy.Target
	}{
		{name: "tools", list: func() error { _, err := cs.ListTools(t.Context(), nil); return err },
			want: []policy.Target{{Server: "ns/own", Tool: "alice_tool"}, {Server: "ns/own", Tool: "secret_alice"}}},
		{name: "prompts", list: func() error { _, err := cs.ListPrompts(t.Context(), nil); return err },
			want: []policy.Target{{Server: "ns/own", Prompt: "alice_prompt"}, {Server: "ns/own", Prompt: "secret_alice_prompt"}}},
		{name: "resources", list: func() error { _, err := cs.ListResources(t.Context(), nil); return err },
			want: []policy.Target{{Server: "ns/own", Resource: "file:///alice/doc"}, {Server: "ns/own", Resource: "file:///secret/alice"}}},
		{name: "templates", list: func() error { _, err := cs.ListResourceTemplates(t.Context(), nil); return err },
			want: []policy.Target{{Server: "ns/own", Resource: "file:///alice/notes/{name}"}, {Server: "ns/own", Resource: "file:///secret/alice/{name}"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.list(); err != nil {
				t.Fatal(err)
			}
			a.mu.Lock()
			got := a.targets
			a.mu.Unlock()
			slices.SortFunc(got, func(x, y policy.Target) int {
				return strings.Compare(x.Tool+x.Prompt+x.Resource, y.Tool+y.Prompt+y.Resource)
			})
			if !slices.Equal(got, tc.want) {
				t.Errorf("targets %+v, want %+v", got, tc.want)
			}
		})
	}
}

// clock is a test clock: real time plus an offset the test moves.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// TestListsTTL: a list is never served longer than the upstream's ttlMs
// says, nor past ListRefresh when that is shorter. These upstream sessions
// are 2025 ones, where a ttlMs of 0 is go-sdk's zero value, not a hint: the
// list is kept for ListRefresh.
func TestListsTTL(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		refresh time.Duration
		steps   []time.Duration // clock moves before each list after the first
		want    []int           // upstream tools/list requests after each list
	}{
		{name: "ttlMs 0 in a 2025 session is no hint", ttl: 0, refresh: 2 * time.Second, steps: []time.Duration{time.Second, 1500 * time.Millisecond}, want: []int{1, 1, 2}},
		{name: "ttlMs 2s", ttl: 2 * time.Second, steps: []time.Duration{time.Second, 1500 * time.Millisecond, 0}, want: []int{1, 1, 2, 2}},
		{name: "listRefresh shorter than ttlMs", ttl: time.Hour, refresh: 2 * time.Second, steps: []time.Duration{time.Second, 1500 * time.Millisecond}, want: []int{1, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newPerCaller(t, cacheFor(tt.ttl, "private"))
			clk := &clock{}
			e := newEnvWith(t, func(c *Config, d *Deps) { d.Now, c.ListRefresh, d.Authorizer = clk.now, tt.refresh, &callerAuthz{} },
				registry.Server{Name: "ns/own", Prefix: "own_", URL: up.srv.URL})
			cs, _ := e.client("alice", nil)
			for i, want := range tt.want {
				if i > 0 {
					clk.advance(tt.steps[i-1])
				}
				if _, err := cs.ListTools(t.Context(), nil); err != nil {
					t.Fatal(err)
				}
				if n := up.listed("alice"); n != want {
					t.Errorf("list %d: upstream lists = %d, want %d", i, n, want)
				}
			}
		})
	}
}

// TestListChangedEveryContext: list_changed from a server, relayed on one
// caller's stream, drops every caller's cached lists of that server.
func TestListChangedEveryContext(t *testing.T) {
	up := newPerCaller(t, cacheFor(time.Hour, "private"))
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Authorizer = &callerAuthz{} }, registry.Server{Name: "ns/own", Prefix: "own_", URL: up.srv.URL})
	changed := make(chan struct{}, 8)
	alice, _ := e.client("alice", &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	bob, _ := e.client("bob", nil, func(tr *mcp.StreamableClientTransport) { tr.DisableStandaloneSSE = true })
	toolNames(t, alice)
	toolNames(t, bob)
	// Let the router's upstream stream for alice be registered upstream.
	waitFor(t, "alice's upstream GET stream", func() bool { return up.streams.count("Bearer up-alice-ns/own") > 0 })
	for _, sub := range []string{"alice", "bob"} {
		mcp.AddTool(up.server("Bearer up-"+sub+"-ns/own"), &mcp.Tool{Name: "fresh_" + sub}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return text("fresh"), nil, nil
		})
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no tools/list_changed for alice")
	}
	if names := strings.Join(toolNames(t, bob), ","); !strings.Contains(names, "own_fresh_bob") {
		t.Errorf("bob's tools %s: his cached list survived list_changed", names)
	}
}

// listServer is a misbehaving MCP server written by hand (go-sdk cannot be
// made to misbehave so): it initializes, then answers tools/list with page
// after page of n tools padded to pad bytes each, pages of them at most
// (0: without end), and counts the pages it served.
type listServer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pages int
}

func newListServer(t *testing.T, prefix string, n, pad, pages int) *listServer {
	ls := &listServer{}
	ls.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Cursor string `json:"cursor"`
			} `json:"params"`
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch m.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "s1")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"lists","version":"1"}}}`, m.ID)
		case "tools/list":
			ls.mu.Lock()
			ls.pages++
			page := ls.pages
			ls.mu.Unlock()
			var tools []string
			for i := range n {
				tools = append(tools, fmt.Sprintf(`{"name":"%s%d_%d","description":%q,"inputSchema":{"type":"object"}}`, prefix, page, i, strings.Repeat("x", pad)))
			}
			next := ""
			if pages == 0 || page < pages {
				next = fmt.Sprintf(`,"nextCursor":"p%d"`, page)
			}
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"tools":[%s]%s}}`, m.ID, strings.Join(tools, ","), next)
		case "":
			w.WriteHeader(http.StatusAccepted)
		default:
			if len(m.ID) == 0 {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no"}}`, m.ID)
		}
	}))
	t.Cleanup(ls.srv.Close)
	return ls
}

func (ls *listServer) served() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.pages
}

// TestListLimits: an upstream whose list runs past a per-server bound (in
// pages each well under maxResponseBytes) is left out whole, and no more of
// it is read; servers that take the aggregate past its bound are left out,
// the largest first. Each is counted by server and limit and logged, and
// the well-behaved server's tools are still listed.
func TestListLimits(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(*Config)
		servers   func(t *testing.T) map[string]*listServer // by registration name
		leftOut   string                                    // registration left out
		limit     string
		maxPages  int      // pages the left-out server may serve at most
		wantTools []string // prefixes of the tools listed
	}{
		{
			name: "server bytes, endless pages",
			cfg:  func(c *Config) { c.MaxListBytes = 256 << 10 },
			servers: func(t *testing.T) map[string]*listServer {
				return map[string]*listServer{"ns/huge": newListServer(t, "t", 16, 4<<10, 0)}
			},
			leftOut: "ns/huge", limit: "maxListBytes", maxPages: 5,
		},
		{
			name: "server items, endless pages",
			cfg:  func(c *Config) { c.MaxListItems = 250 },
			servers: func(t *testing.T) map[string]*listServer {
				return map[string]*listServer{"ns/huge": newListServer(t, "t", 100, 0, 0)}
			},
			leftOut: "ns/huge", limit: "maxListItems", maxPages: 3,
		},
		{
			name: "aggregate items: the largest goes",
			cfg:  func(c *Config) { c.MaxAggregateItems = 200 },
			servers: func(t *testing.T) map[string]*listServer {
				return map[string]*listServer{
					"ns/big":   newListServer(t, "t", 150, 0, 1),
					"ns/small": newListServer(t, "t", 100, 0, 1),
				}
			},
			leftOut: "ns/big", limit: "maxAggregateItems", maxPages: 1, wantTools: []string{"small_"},
		},
		{
			name: "aggregate bytes: the largest goes",
			cfg:  func(c *Config) { c.MaxAggregateBytes = 250 << 10 },
			servers: func(t *testing.T) map[string]*listServer {
				return map[string]*listServer{
					"ns/big":   newListServer(t, "t", 50, 4<<10, 1),
					"ns/small": newListServer(t, "t", 20, 4<<10, 1),
				}
			},
			leftOut: "ns/big", limit: "maxAggregateBytes", maxPages: 1, wantTools: []string{"small_"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := alphaServer(t)
			regs := []registry.Server{{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL}}
			bad := tt.servers(t)
			for name, ls := range bad {
				regs = append(regs, registry.Server{Name: name, Prefix: strings.TrimPrefix(name, "ns/") + "_", URL: ls.srv.URL})
			}
			e := newEnv(t, tt.cfg, regs...)
			var logs syncbuf.Buffer
			e.router.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			cs, _ := e.client("alice", nil)
			names := toolNames(t, cs)
			if !slices.Contains(names, "alpha_echo") {
				t.Errorf("the well-behaved server's tools are missing: %v", names)
			}
			for _, n := range names {
				if strings.HasPrefix(n, strings.TrimPrefix(tt.leftOut, "ns/")+"_") {
					t.Fatalf("%s was not left out: %s listed", tt.leftOut, n)
				}
			}
			for _, p := range tt.wantTools {
				if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, p) }) {
					t.Errorf("no %s tools listed", p)
				}
			}
			if n := bad[tt.leftOut].served(); n > tt.maxPages {
				t.Errorf("%s served %d pages, want at most %d: the router read on past its bound", tt.leftOut, n, tt.maxPages)
			}
			if v := testutil.ToFloat64(e.router.metrics.tooLarge.WithLabelValues(tt.leftOut, tt.limit)); v != 1 {
				t.Errorf("list_too_large{%s,%s} = %v, want 1", tt.leftOut, tt.limit, v)
			}
			if got := logs.String(); !strings.Contains(got, "server="+tt.leftOut) || !strings.Contains(got, tt.limit) {
				t.Errorf("no log line naming %s and %s: %s", tt.leftOut, tt.limit, got)
			}
		})
	}
}

// TestListLimitsConfig: negative bounds are refused; zero means the
// documented defaults.
func TestListLimitsConfig(t *testing.T) {
	reg := &registry.Registry{}
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{name: "maxListBytes", mod: func(c *Config) { c.MaxListBytes = -1 }},
		{name: "maxListItems", mod: func(c *Config) { c.MaxListItems = -1 }},
		{name: "maxAggregateBytes", mod: func(c *Config) { c.MaxAggregateBytes = -1 }},
		{name: "maxAggregateItems", mod: func(c *Config) { c.MaxAggregateItems = -1 }},
		{name: "listCacheBytes", mod: func(c *Config) { c.ListCacheBytes = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{}
			tc.mod(&c)
			if _, err := New(c, Deps{Registry: reg, AssertionKey: e.key}); err == nil || !strings.Contains(err.Error(), tc.name) {
				t.Errorf("New = %v, want an error naming %s", err, tc.name)
			}
		})
	}
	c := e.router.cfg
	if c.MaxListBytes != 8<<20 || c.MaxListItems != 10_000 || c.MaxAggregateBytes != 32<<20 || c.MaxAggregateItems != 50_000 || c.ListCacheBytes != 128<<20 {
		t.Errorf("defaults: %d %d %d %d %d", c.MaxListBytes, c.MaxListItems, c.MaxAggregateBytes, c.MaxAggregateItems, c.ListCacheBytes)
	}
}

// cachingStateless serves a go-sdk server of the stateless revision with one
// tool, who, that says ttl and scope on every result.
func cachingStateless(ttl time.Duration, scope string) http.Handler {
	opts := cacheFor(ttl, scope)
	opts.SupportedProtocolVersions = []string{"2026-07-28"}
	s := mcp.NewServer(&mcp.Implementation{Name: "caching", Version: "1"}, opts)
	mcp.AddTool(s, &mcp.Tool{Name: "who"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text(in.Text), nil, nil
	})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true})
}

// TestListTTLWhenAServerFails: an aggregate that leaves out a server whose
// list could not be had (its last list gone too) is fresh only until the
// router asks that server again (listRetry), not for listRefresh: a client
// that keeps lists for ttlMs (SEP-2549) would otherwise miss the server's
// tools for minutes after it is back.
func TestListTTLWhenAServerFails(t *testing.T) {
	good := httptest.NewServer(cachingStateless(time.Hour, "public"))
	t.Cleanup(good.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	ttl := func(t *testing.T, servers ...registry.Server) (int64, string) {
		t.Helper()
		e := newEnv(t, nil, servers...)
		a := decodeAnswer(t, do(t, e.front.URL, e.key, http.MethodPost, "", "alice",
			statelessBody("tools/list", "2026-07-28", ""), statelessHeaders2026("tools/list", "", "2026-07-28")))
		var ms int64
		if err := json.Unmarshal(a.Result["ttlMs"], &ms); err != nil {
			t.Fatalf("ttlMs %s: %v", a.Result["ttlMs"], err)
		}
		return ms, string(a.Result["tools"])
	}
	goodSrv := registry.Server{Name: "ns/good", Prefix: "good_", URL: good.URL}
	if ms, tools := ttl(t, goodSrv); ms <= (5*time.Minute-5*time.Second).Milliseconds() || ms > (5*time.Minute).Milliseconds() || !strings.Contains(tools, "good_who") {
		t.Errorf("all servers up: ttlMs %d (want listRefresh, 300000, less the time the answer took), tools %s", ms, tools)
	}
	ms, tools := ttl(t, goodSrv, registry.Server{Name: "ns/down", Prefix: "down_", URL: down.URL})
	if ms <= 0 || ms > (10*time.Second).Milliseconds() {
		t.Errorf("a server down: ttlMs %d, want at most listRetry (10000)", ms)
	}
	if !strings.Contains(tools, "good_who") {
		t.Errorf("a server down: the others' tools are gone: %s", tools)
	}
}

// TestListPrivateWhileServerDown: a server's last list, served while the
// server is down, keeps its cacheScope: a private list does not turn public
// because the router serves it from its cache.
func TestListPrivateWhileServerDown(t *testing.T) {
	h := cachingStateless(time.Hour, "private")
	var down atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	clk := &clock{}
	// No Authorizer: lists are not filtered, so their cacheScope is the
	// servers'.
	e := newEnvWith(t, func(c *Config, d *Deps) { c.ListRefresh, d.Now, d.Authorizer = 2*time.Second, clk.now, nil },
		registry.Server{Name: "ns/own", Prefix: "own_", URL: up.URL})
	list := func() rpcAnswer {
		return decodeAnswer(t, do(t, e.front.URL, e.key, http.MethodPost, "", "alice",
			statelessBody("tools/list", "2026-07-28", ""), statelessHeaders2026("tools/list", "", "2026-07-28")))
	}
	if a := list(); string(a.Result["cacheScope"]) != `"private"` {
		t.Fatalf("server up: cacheScope %s, want private", a.Result["cacheScope"])
	}
	down.Store(true)
	clk.advance(3 * time.Second) // past listRefresh: the router asks again
	a := list()
	if !strings.Contains(string(a.Result["tools"]), "own_who") {
		t.Fatalf("server down: its last list is not served: %s", a.Result["tools"])
	}
	if string(a.Result["cacheScope"]) != `"private"` {
		t.Errorf("server down: its private list served with cacheScope %s", a.Result["cacheScope"])
	}
}
