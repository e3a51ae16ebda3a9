package router

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// seenUpstream is one request an upstream received: its JSON-RPC method (the
// HTTP method for GET and DELETE) and its x-mcp-* headers.
type seenUpstream struct {
	Method  string
	Headers map[string]string
}

// kuadrantHeaders lists the Kuadrant headers of h.
func kuadrantHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, k := range []string{"x-mcp-method", "x-mcp-servername", "x-mcp-toolname", "x-mcp-promptname", "x-mcp-resourceuri"} {
		if v := h.Values(k); len(v) > 0 {
			out[k] = v[0]
			if len(v) > 1 {
				out[k] += " (repeated)"
			}
		}
	}
	return out
}

// forge adds a caller's own x-mcp-* headers to every request.
type forge struct{ base http.RoundTripper }

func (f forge) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("x-mcp-servername", "ns/alpha")
	req.Header.Set("x-mcp-toolname", "echo")
	req.Header.Set("x-mcp-method", "ping")
	req.Header.Set("x-mcp-promptname", "forged")
	req.Header.Set("x-mcp-resourceuri", "file:///forged")
	return f.base.RoundTrip(req)
}

// TestUpstreamKuadrantHeaders: every request the router sends a server
// carries Kuadrant's x-mcp-servername (the registration) and, for a
// message, x-mcp-method; a call carries the unprefixed tool or prompt name
// or the resource URI. Those are what an AuthPolicy or RateLimitPolicy on
// the server's own route keys on when the router reaches it through the
// gateway; the values are the router's own, never the caller's.
func TestUpstreamKuadrantHeaders(t *testing.T) {
	beta := betaServer(t)
	u, err := url.Parse(beta.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.FlushInterval = -1 // streams flow through
	var mu sync.Mutex
	var seen []seenUpstream
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(b, &m)
		if r.Method != http.MethodPost {
			m.Method = r.Method
		}
		mu.Lock()
		seen = append(seen, seenUpstream{Method: m.Method, Headers: kuadrantHeaders(r.Header)})
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(rec.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/beta", Prefix: "beta_", URL: rec.URL})
	cs, _ := e.client("alice", nil, func(tr *mcp.StreamableClientTransport) {
		sg := tr.HTTPClient.Transport.(*signer)
		sg.base = forge{base: sg.base}
	})
	if got := toolNames(t, cs); !cmp.Equal(got, []string{"beta_add"}) {
		t.Fatalf("tools %q", got)
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "beta_add", Arguments: map[string]any{"a": 1, "b": 2}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.GetPrompt(t.Context(), &mcp.GetPromptParams{Name: "beta_greet", Arguments: map[string]string{"who": "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "file:///beta/readme"}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	want := map[string]map[string]string{
		"initialize":                {"x-mcp-method": "initialize"},
		"notifications/initialized": {"x-mcp-method": "notifications/initialized"},
		"tools/list":                {"x-mcp-method": "tools/list"},
		"tools/call":                {"x-mcp-method": "tools/call", "x-mcp-toolname": "add"},
		"prompts/get":               {"x-mcp-method": "prompts/get", "x-mcp-promptname": "greet"},
		"resources/read":            {"x-mcp-method": "resources/read", "x-mcp-resourceuri": "file:///beta/readme"},
		"DELETE":                    {},
	}
	got := map[string]bool{}
	for _, s := range seen {
		w, ok := want[s.Method]
		if !ok {
			w = map[string]string{"x-mcp-method": s.Method}
			if s.Method == http.MethodGet {
				w = map[string]string{}
			}
		}
		w["x-mcp-servername"] = "ns/beta"
		if diff := cmp.Diff(w, s.Headers); diff != "" {
			t.Errorf("%s: x-mcp-* headers (-want +got):\n%s", s.Method, diff)
		}
		got[s.Method] = true
	}
	for m := range want {
		if !got[m] {
			t.Errorf("the server received no %s", m)
		}
	}
}
