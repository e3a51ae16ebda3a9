package router

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// celAuthz filters tool lists with a real compiled CEL policy over the
// caller's claims, as authz's Visible does (each target evaluated as a
// tools/call of that tool).
type celAuthz struct {
	set    *policy.Set
	claims map[string]any
}

func (a *celAuthz) UpstreamAuthorization(_ context.Context, caller, server string) (string, error) {
	return "Bearer up-" + server, nil
}

func (a *celAuthz) Visible(ctx context.Context, _ string, targets []policy.Target) ([]bool, error) {
	return a.set.Filter(ctx, &policy.Input{Identity: a.claims}, targets), nil
}

// reportLatency reports the 50th and 99th percentiles of d, in µs.
func reportLatency(b *testing.B, d []time.Duration) {
	b.Helper()
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(p int) float64 { return float64(d[(len(d)-1)*p/100]) / 1e3 }
	b.ReportMetric(at(50), "p50-µs")
	b.ReportMetric(at(99), "p99-µs")
}

// BenchmarkToolsListLatency is BenchmarkToolsList with the percentiles of
// each call reported: 50 servers x 20 tools from warm caches, filtered for
// one caller by a compiled CEL policy that lets her see half of them.
func BenchmarkToolsListLatency(b *testing.B) {
	b.Run("filter=each-call", func(b *testing.B) { benchToolsListLatency(b, false) })
	b.Run("filter=authz", func(b *testing.B) { benchToolsListLatency(b, true) })
}

// benchToolsListLatency lists 50 x 20 tools filtered by a CEL policy: each
// call evaluating the 1,000 decisions, or through authz's Visible, which
// reuses a caller's filtering while the token, policy set and lists stand.
func benchToolsListLatency(b *testing.B, viaAuthz bool) {
	key, err := assertion.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	var servers []registry.Server
	for i := range 50 {
		// The servers say their lists may be cached (SEP-2549 ttlMs): go-sdk
		// says 0 (not kept) unless told, and this measures a warm cache.
		s := mcp.NewServer(&mcp.Implementation{Name: fmt.Sprint("s", i), Version: "1"}, &mcp.ServerOptions{
			SetCacheable: func(_ context.Context, _ mcp.Request, c *mcp.Cacheable) { c.TTLMs = int(time.Hour / time.Millisecond) },
		})
		for j := range 20 {
			mcp.AddTool(s, &mcp.Tool{Name: fmt.Sprintf("tool_%d", j), Description: "a tool of the benchmark"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
				return text(in.Text), nil, nil
			})
		}
		up := serve(b, s, true)
		servers = append(servers, registry.Server{Name: fmt.Sprintf("ns/s%02d", i), Prefix: fmt.Sprintf("s%02d_", i), URL: up.URL})
	}
	snap, err := registry.NewSnapshot(servers)
	if err != nil {
		b.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{Name: "roles", Servers: []string{"*"}, CEL: `mcp.tool.name in jwt.roles`}}})
	if err != nil {
		b.Fatal(err)
	}
	var roles []any
	for j := range 10 {
		roles = append(roles, fmt.Sprintf("tool_%d", j))
	}
	var auth Authorizer = &celAuthz{set: set, claims: map[string]any{"sub": "alice", "roles": roles}}
	if viaAuthz {
		set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{Name: "tools", Servers: []string{"*"},
			CEL: `mcp.tool.name in ["tool_0", "tool_1", "tool_2", "tool_3", "tool_4", "tool_5", "tool_6", "tool_7", "tool_8", "tool_9"]`}}})
		if err != nil {
			b.Fatal(err)
		}
		if auth, err = authz.New(authz.Config{}, authz.Deps{Registry: reg, Policy: policy.NewEngine(set)}); err != nil {
			b.Fatal(err)
		}
	}
	r := newRouter(b, Config{}, Deps{Registry: reg, Authorizer: auth, AssertionKey: key})
	h := r.Handler()
	sg := assertion.NewSigner(key)
	post := func(sid, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer caller-alice")
		method := "initialize"
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			method = "tools/list"
		}
		v, err := sg.Sign(assertion.Claims{Method: method, Subject: "alice", BodyHash: assertion.BodyHash([]byte(body))})
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set(assertion.Header, v)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	sid := post("", initBody).Header().Get("Mcp-Session-Id")
	if w := post(sid, listBody); w.Code != http.StatusOK || strings.Count(w.Body.String(), `"name":"s`) != 500 {
		b.Fatalf("warm-up: %d, %d tools, want 500", w.Code, strings.Count(w.Body.String(), `"name":"s`))
	}
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		w := post(sid, listBody)
		lat = append(lat, time.Since(t0))
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
	reportLatency(b, lat)
}

// BenchmarkToolsCallLatency calls one tool with the go-sdk client over
// loopback HTTP, in one run: straight on the upstream ("direct"), straight
// on it with the signing transport that stands in for authz ("signed": the
// benchmark's own cost, not the router's) and through the router
// ("router"), and reports the percentiles of each call. The unsuffixed
// cases speak 2025-11-25 end to end; the "-2026" ones speak 2026-07-28 to a
// stateless upstream of that revision. The router adds router − signed.
// upstream-POSTs/op counts the requests the upstream got per call, the
// router's own (lists, initialize) included.
func BenchmarkToolsCallLatency(b *testing.B) {
	key, err := assertion.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	for _, gen := range []struct{ suffix, version string }{{"", "2025-11-25"}, {"-2026", "2026-07-28"}} {
		var posts atomic.Int64
		up := serveGeneration(b, benchBeta(gen.version), gen.version, &posts)
		snap, err := registry.NewSnapshot([]registry.Server{{Name: "ns/beta", Prefix: "beta_", URL: up.URL}})
		if err != nil {
			b.Fatal(err)
		}
		reg := &registry.Registry{}
		reg.Store(snap)
		r := newRouter(b, Config{}, Deps{Registry: reg, Authorizer: &testAuthz{}, AssertionKey: key})
		front := httptest.NewServer(r.Handler())
		b.Cleanup(front.Close)
		b.Cleanup(r.Close)
		sign := func() http.RoundTripper {
			return &signer{base: http.DefaultTransport, s: assertion.NewSigner(key), subject: "alice"}
		}
		for _, tc := range []struct {
			name, url, tool string
			rt              http.RoundTripper
		}{
			{name: "direct", url: up.URL, tool: "add", rt: http.DefaultTransport},
			{name: "signed", url: up.URL, tool: "add", rt: sign()},
			{name: "router", url: front.URL + "/mcp", tool: "beta_add", rt: sign()},
		} {
			b.Run(tc.name+gen.suffix, func(b *testing.B) {
				c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
				cs, err := c.Connect(b.Context(), &mcp.StreamableClientTransport{
					Endpoint: tc.url, HTTPClient: &http.Client{Transport: tc.rt}, DisableStandaloneSSE: true,
				}, &mcp.ClientSessionOptions{ProtocolVersion: gen.version})
				if err != nil {
					b.Fatal(err)
				}
				defer cs.Close()
				if v := cs.InitializeResult().ProtocolVersion; v != gen.version {
					b.Fatalf("negotiated %s, want %s", v, gen.version)
				}
				p := &mcp.CallToolParams{Name: tc.tool, Arguments: map[string]any{"a": 1, "b": 2}}
				var lat []time.Duration
				b.ReportAllocs()
				posts.Store(0)
				for b.Loop() {
					t0 := time.Now()
					res, err := cs.CallTool(b.Context(), p)
					lat = append(lat, time.Since(t0))
					if err != nil {
						b.Fatal(err)
					}
					if res.IsError || len(res.Content) != 1 {
						b.Fatalf("call: %+v", res)
					}
				}
				reportLatency(b, lat)
				b.ReportMetric(float64(posts.Load())/float64(len(lat)), "upstream-POSTs/op")
			})
		}
	}
}

// serveGeneration serves s over streamable HTTP with JSON answers, speaking
// only version: a 2026-07-28 server is stateless. posts counts the POSTs
// it gets.
func serveGeneration(b *testing.B, s *mcp.Server, version string, posts *atomic.Int64) *httptest.Server {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		JSONResponse: true, Stateless: version >= "2026",
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	b.Cleanup(srv.Close)
	return srv
}
