//go:build integration

package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// otlpReceiver is a real OTLP/gRPC trace receiver on loopback: the
// collector's TraceService, keeping every span it is sent.
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	addr string

	mu    sync.Mutex
	spans []*tracepb.Span
}

func startReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{addr: lis.Addr().String()}
	s := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(s, r)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return r
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) all() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return anyValue(kv.GetValue())
		}
	}
	return ""
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	default:
		return v.String()
	}
}

// TestTracingToolsCall follows one tools/call through the edge process
// (front + authz) and a router process to a go-sdk server, both processes
// exporting to a real OTLP receiver: one trace, front -> authz Check (with
// identity, exchange and its token-endpoint POST, policy) and front ->
// router -> forwarded call -> upstream HTTP client span, whose traceparent
// the upstream received; no token and no argument value in any attribute.
func TestTracingToolsCall(t *testing.T) {
	rcv := startReceiver(t)
	p := startIdP(t, "")
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list")
	a := startAggregate(t, 1, identityConfig(p)+fmt.Sprintf(`servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s
tracing:
  endpoint: %s
  insecureLoopback: true
`, kube.url, rcv.addr)+routerPolicy)

	token := p.login(t, "alice")
	alice := connectAs(t, a.front, token, nil)
	const secretArg = "argument-value-never-traced"
	if _, err := callTool(t, alice, &mcp.CallToolParams{Name: "kube_pods_list", Arguments: map[string]any{"namespace": secretArg}}); err != nil {
		t.Fatal(err)
	}

	// The spans of the trace of the tools/call: found by the router's span,
	// complete when the front's (the root, ended last) is in.
	var trace []*tracepb.Span
	waitFor(t, "the spans of the tools/call", 20*time.Second, func() bool {
		spans := rcv.all()
		var id []byte
		for _, s := range spans {
			if s.GetName() == "tools/call kube_pods_list" {
				id = s.GetTraceId()
			}
		}
		trace = trace[:0]
		for _, s := range spans {
			if id != nil && string(s.GetTraceId()) == string(id) {
				trace = append(trace, s)
			}
		}
		return len(trace) > 0 && slices.ContainsFunc(trace, func(s *tracepb.Span) bool { return len(s.GetParentSpanId()) == 0 }) &&
			slices.ContainsFunc(trace, func(s *tracepb.Span) bool { return s.GetName() == checkSpan })
	})
	t.Log("\n" + renderTree(trace))
	for _, r := range kube.requests() {
		t.Logf("upstream got %s %s", r.method, r.header.Get("Traceparent"))
	}

	find := func(name string) *tracepb.Span {
		t.Helper()
		for _, s := range trace {
			if s.GetName() == name {
				return s
			}
		}
		t.Fatalf("no span %q in the trace:\n%s", name, renderTree(trace))
		return nil
	}
	childOf := func(child, parent *tracepb.Span) {
		t.Helper()
		if string(child.GetParentSpanId()) != string(parent.GetSpanId()) {
			t.Errorf("span %q is not a child of %q", child.GetName(), parent.GetName())
		}
	}
	var root *tracepb.Span
	for _, s := range trace {
		if len(s.GetParentSpanId()) == 0 {
			if root != nil {
				t.Fatalf("two roots in one trace:\n%s", renderTree(trace))
			}
			root = s
		}
	}
	if root.GetName() != "POST" || root.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("root = %q kind %v, want the front's POST server span", root.GetName(), root.GetKind())
	}
	check := find(checkSpan)
	childOf(check, root)
	for _, name := range []string{"mcpparse.Parse", "identity.Verify", "exchange.Exchange", "policy.Decide"} {
		childOf(find(name), check)
	}
	if got := attr(check, "mcp.method.name"); got != "tools/call" {
		t.Errorf("check mcp.method.name = %q", got)
	}
	if got := attr(check, "gen_ai.tool.name"); got != "pods_list" {
		t.Errorf("check gen_ai.tool.name = %q", got)
	}
	if got := attr(check, "mcp_authz.server"); got != "mcp-test/kubernetes-mcp" {
		t.Errorf("check mcp_authz.server = %q", got)
	}
	// Each exchange step is an HTTP client span of the exchange.
	xchg := find("exchange.Exchange")
	steps := 0
	for _, s := range trace {
		if string(s.GetParentSpanId()) == string(xchg.GetSpanId()) && s.GetName() == "POST" && attr(s, "url.path") == "/realms/mcp/protocol/openid-connect/token" {
			steps++
		}
	}
	if steps != 1 {
		t.Errorf("exchange has %d token-endpoint POST spans, want 1:\n%s", steps, renderTree(trace))
	}

	routed := find("tools/call kube_pods_list")
	childOf(routed, root)
	if routed.GetKind() != tracepb.Span_SPAN_KIND_SERVER || attr(routed, "gen_ai.tool.name") != "kube_pods_list" {
		t.Errorf("router span: kind %v, gen_ai.tool.name %q", routed.GetKind(), attr(routed, "gen_ai.tool.name"))
	}
	fwd := find("tools/call pods_list mcp-test/kubernetes-mcp")
	childOf(fwd, routed)
	var client *tracepb.Span
	for _, s := range trace {
		if string(s.GetParentSpanId()) == string(fwd.GetSpanId()) && s.GetKind() == tracepb.Span_SPAN_KIND_CLIENT {
			client = s
		}
	}
	if client == nil {
		t.Fatalf("no upstream HTTP client span under the forwarded call:\n%s", renderTree(trace))
	}
	if attr(client, "http.request.method") != "POST" || attr(client, "http.response.status_code") != "200" || attr(client, "server.address") != "127.0.0.1" {
		t.Errorf("upstream span attributes: %v", client.GetAttributes())
	}
	// The upstream received the client span's context.
	want := fmt.Sprintf("00-%s-%s-01", hex.EncodeToString(client.GetTraceId()), hex.EncodeToString(client.GetSpanId()))
	found := false
	for _, r := range kube.requests() {
		if r.method == "tools/call" && r.header.Get("Traceparent") == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no tools/call reached the upstream with traceparent %s", want)
	}

	// Never a token or an argument value, in any span of any trace.
	for _, s := range rcv.all() {
		for _, kv := range s.GetAttributes() {
			v := anyValue(kv.GetValue())
			if strings.Contains(v, secretArg) || strings.Contains(v, token) || strings.HasPrefix(v, "eyJ") || strings.Contains(v, "Bearer") {
				t.Errorf("span %q attribute %s carries a secret: %q", s.GetName(), kv.GetKey(), v)
			}
		}
	}
	a.noTokenInLogs(t, token)
}

const checkSpan = "envoy.service.auth.v3.Authorization/Check"

// renderTree draws the spans as an indented tree, children in start order.
func renderTree(spans []*tracepb.Span) string {
	kids := map[string][]*tracepb.Span{}
	for _, s := range spans {
		kids[string(s.GetParentSpanId())] = append(kids[string(s.GetParentSpanId())], s)
	}
	var b strings.Builder
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		c := kids[parent]
		sort.Slice(c, func(i, j int) bool { return c[i].GetStartTimeUnixNano() < c[j].GetStartTimeUnixNano() })
		for _, s := range c {
			var kv []string
			for _, a := range s.GetAttributes() {
				kv = append(kv, a.GetKey()+"="+anyValue(a.GetValue()))
			}
			fmt.Fprintf(&b, "%s%s [%s] %s\n", strings.Repeat("  ", depth), s.GetName(), strings.TrimPrefix(s.GetKind().String(), "SPAN_KIND_"), strings.Join(kv, " "))
			walk(string(s.GetSpanId()), depth+1)
		}
	}
	walk("", 0)
	return b.String()
}
