package authz

import (
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mcp-authz/mcp-authz/authz/internal/authztest"
	"github.com/mcp-authz/mcp-authz/authz/telemetry"
	"github.com/mcp-authz/mcp-authz/internal/tracing"
)

// newTracedServer is newTestServer (default allow) with a tracer provider
// whose spans go to sp.
func newTracedServer(t testing.TB, sp sdktrace.SpanProcessor) *Server {
	t.Helper()
	tp := tracing.NewProvider(tracing.Config{}, sdktrace.WithSpanProcessor(sp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	s, err := New(Config{}, Deps{Registry: authztest.Registry(t), Policy: authztest.Engine(t), Tracer: tp})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	headerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	headerSpan  = "00f067aa0ba902b7"
	metaTrace   = "0af7651916cd43dd8448eb211c80319c"
	metaSpan    = "b7ad6b7169203331"
)

// TestCheckSpan: the Check span is a child of the traceparent header, or,
// without one, of the message's _meta.traceparent (linked when both are
// there), has the method, tool and server, and no argument value.
func TestCheckSpan(t *testing.T) {
	const secret = "argument-value-never-traced"
	body := func(meta string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{"q":"` + secret + `"}` + meta + `}}`
	}
	metaTP := `,"_meta":{"traceparent":"00-` + metaTrace + `-` + metaSpan + `-01"}`
	headers := map[string]string{"traceparent": "00-" + headerTrace + "-" + headerSpan + "-01"}
	for _, tc := range []struct {
		name          string
		body          string
		headers       map[string]string
		trace, parent string // "" parent: a root span
		link          string // the linked trace, if any
	}{
		{name: "header", body: body(""), headers: headers, trace: headerTrace, parent: headerSpan},
		{name: "meta", body: body(metaTP), trace: metaTrace, parent: metaSpan},
		{name: "header and meta", body: body(metaTP), headers: headers, trace: headerTrace, parent: headerSpan, link: metaTrace},
		{name: "none", body: body("")},
		{name: "malformed header", body: body(metaTP), headers: map[string]string{"traceparent": "00-xyz-01"}, trace: metaTrace, parent: metaSpan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			s := newTracedServer(t, rec)
			if d := s.Decide(t.Context(), checkRequest("POST", tc.body, tc.headers)); !d.Allow {
				t.Fatalf("Decide: %+v", d)
			}
			var check sdktrace.ReadOnlySpan
			for _, sp := range rec.Ended() {
				for _, kv := range sp.Attributes() {
					if strings.Contains(kv.Value.String(), secret) {
						t.Errorf("span %s attribute %s carries an argument", sp.Name(), kv.Key)
					}
				}
				if sp.Name() == telemetry.CheckSpanName {
					check = sp
				}
			}
			if check == nil {
				t.Fatal("no check span")
			}
			for _, sp := range rec.Ended() {
				if sp != check && sp.Parent().SpanID() != check.SpanContext().SpanID() {
					t.Errorf("span %s is not a child of the check", sp.Name())
				}
			}
			if tc.trace != "" && check.SpanContext().TraceID().String() != tc.trace {
				t.Errorf("trace = %s, want %s", check.SpanContext().TraceID(), tc.trace)
			}
			gotParent := ""
			if check.Parent().IsValid() {
				gotParent = check.Parent().SpanID().String()
			}
			if gotParent != tc.parent {
				t.Errorf("parent = %q, want %q", gotParent, tc.parent)
			}
			gotLink := ""
			if l := check.Links(); len(l) == 1 {
				gotLink = l[0].SpanContext.TraceID().String()
			}
			if gotLink != tc.link {
				t.Errorf("link = %q, want %q", gotLink, tc.link)
			}
			attrs := map[string]string{}
			for _, kv := range check.Attributes() {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			for k, want := range map[string]string{"mcp.method.name": "tools/call", "gen_ai.tool.name": "pods_list", "mcp_authz.server": "mcp-test/kubernetes-mcp", "mcp_authz.reason": "allowed"} {
				if attrs[k] != want {
					t.Errorf("%s = %q, want %q", k, attrs[k], want)
				}
			}
		})
	}
}
