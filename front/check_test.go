package front

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
)

func TestSanitize(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "valid", in: "héllo", want: "héllo"},
		{name: "one bad byte", in: "a\xffb", want: "a!b"},
		{name: "each bad byte", in: "\xff\xfe", want: "!!"},
		{name: "cut rune", in: "a\xc3", want: "a!"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitize(tc.in); got != tc.want {
				t.Errorf("sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestEditQuery(t *testing.T) {
	tests := []struct {
		name, raw string
		set       map[string]string
		remove    []string
		want      string
	}{
		{name: "set replaces every value", raw: "a=1&a=2&b=x", set: map[string]string{"a": "3"}, want: "a=3&b=x"},
		{name: "remove", raw: "a=1&token=t&b=2", remove: []string{"token"}, want: "a=1&b=2"},
		{name: "raw encodings kept, sorted", raw: "z=%20&y", set: map[string]string{"x": "1"}, want: "x=1&y=&z=%20"},
		{name: "empty", raw: "", set: map[string]string{"a": "1"}, want: "a=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var set []*corev3.QueryParameter
			for k, v := range tc.set {
				set = append(set, &corev3.QueryParameter{Key: k, Value: v})
			}
			got, err := editQuery(tc.raw, set, tc.remove)
			if err != nil || got != tc.want {
				t.Errorf("editQuery = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNewRequestID(t *testing.T) {
	a, b := newRequestID(), newRequestID()
	if a == b || len(a) != 36 || a[14] != '4' || strings.Count(a, "-") != 4 {
		t.Errorf("ids %q %q: want distinct version-4 UUIDs", a, b)
	}
}

// benchRequest is a typical MCP tools/call as the front receives it.
func benchRequest(b *testing.B) (*http.Request, []byte) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{"namespace":"` + strings.Repeat("x", 900) + `"}}}`)
	r := httptest.NewRequestWithContext(b.Context(), http.MethodPost, "/mcp", nil)
	r.RemoteAddr = "127.0.0.1:53124"
	r.Host = "127.0.0.1:8080"
	r.Header = http.Header{
		"Content-Type":         {"application/json"},
		"Accept":               {"application/json, text/event-stream"},
		"Authorization":        {"Bearer " + strings.Repeat("t", 800)},
		"Mcp-Session-Id":       {"8f0e6d4c-6a55-4a8e-9d57-1b8e4a2f9c11"},
		"Mcp-Protocol-Version": {"2025-11-25"},
		"User-Agent":           {"mcp-client/1.0"},
		"Content-Length":       {"1000"},
		"X-Request-Id":         {"3b1f2a9e-2c4d-4e8f-9a1b-0c2d3e4f5a6b"},
		"X-Forwarded-Proto":    {"http"},
		"X-Forwarded-For":      {"127.0.0.1"},
	}
	ctx := context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
	return r.WithContext(ctx), body
}

func BenchmarkBuildCheckRequest(b *testing.B) {
	g := &Front{cfg: Config{MaxRequestBytes: DefaultMaxRequestBytes, ContextExtensions: map[string]string{"mcp-server": "mcp-test/kubernetes-mcp"}}}
	r, body := benchRequest(b)
	in := checkInput{start: time.Unix(1, 0), body: body, hasBody: true, received: int64(len(body))}
	b.ReportAllocs()
	for b.Loop() {
		req := g.buildCheck(r, "3b1f2a9e-2c4d-4e8f-9a1b-0c2d3e4f5a6b", in)
		if req.GetAttributes().GetRequest().GetHttp().GetBody() == "" {
			b.Fatal("no body")
		}
	}
}

// TestBuildCheckHeaders pins the header map for the benchmark's request, so
// the benchmark measures the right thing.
func TestBuildCheckHeaders(t *testing.T) {
	g := &Front{cfg: Config{MaxRequestBytes: DefaultMaxRequestBytes}}
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/mcp?x=1", nil)
	r.RemoteAddr = "127.0.0.1:53124"
	r.Host = "example.test"
	r.Header = http.Header{"Content-Type": {"application/json"}, "Keep-Alive": {"timeout=5"}, "X-A": {"1", "2"}}
	got := g.buildCheck(r, "id", checkInput{hasBody: true, body: []byte("{}"), received: 2}).GetAttributes().GetRequest().GetHttp().GetHeaders()
	want := map[string]string{
		":authority": "example.test", ":path": "/mcp?x=1", ":method": "POST", ":scheme": "http",
		"content-type": "application/json", "x-a": "1,2", partialBodyHeader: "false",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

// FuzzBuildCheck: whatever bytes a client sends in the method, path, Host,
// headers and body, the CheckRequest marshals (protobuf strings must be
// UTF-8), so no request can turn into a failed check instead of a decision.
func FuzzBuildCheck(f *testing.F) {
	f.Add("POST", "/mcp?a=1", "127.0.0.1:8080", "X-Custom", "v", []byte(`{"jsonrpc":"2.0"}`), false)
	f.Add("GET", "/\xff", "h\xfe", "X-Bin", "\xc3", []byte("\xff\xfe"), true)
	f.Fuzz(func(t *testing.T, method, path, host, hk, hv string, body []byte, raw bool) {
		g := &Front{cfg: Config{MaxRequestBytes: DefaultMaxRequestBytes, EncodeRawHeaders: raw}}
		r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/", nil)
		r.Method, r.RequestURI, r.Host, r.RemoteAddr = method, path, host, "127.0.0.1:1"
		r.Header = http.Header{hk: {hv}}
		req := g.buildCheck(r, "id", checkInput{hasBody: true, body: body, received: int64(len(body))})
		if _, err := proto.Marshal(req); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
