package envoy

import (
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/internal/authztest"
	"github.com/mcp-authz/mcp-authz/internal/tracing"
	"github.com/mcp-authz/mcp-authz/policy"
)

// body1KiB is a tools/call of about 1 KiB, arguments included.
var body1KiB = func() string {
	args := `{"namespace":"default","labelSelector":"app=web","note":"` + strings.Repeat("x", 900) + `"}`
	return `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"kube_pods_list","arguments":` + args + `}}`
}()

func benchCheck(b *testing.B, s *Server, req *authv3.CheckRequest) {
	b.Helper()
	b.ReportAllocs()
	ctx := b.Context()
	for b.Loop() {
		resp, err := s.Check(ctx, req)
		if err != nil || resp.GetStatus().GetCode() != int32(code.Code_OK) {
			b.Fatalf("not OK: %v %v", err, resp)
		}
	}
}

// BenchmarkCheck is one in-process Check of a 1 KiB tools/call: parse,
// registry lookup, policy (allow by default), headers and assertion-free
// answer. Identity is off; see the identity benchmarks for the token path.
func BenchmarkCheck(b *testing.B) {
	benchCheck(b, newTestServer(b, authz.Config{}), checkRequest("POST", body1KiB, nil))
}

// BenchmarkCheckCEL adds a CEL tool policy to BenchmarkCheck.
func BenchmarkCheckCEL(b *testing.B) {
	s := newTestServer(b, authz.Config{}, policy.Policy{Name: "no-delete", CEL: `mcp.tool.name != "pods_delete"`})
	benchCheck(b, s, checkRequest("POST", body1KiB, nil))
}

// BenchmarkCheckTraced is BenchmarkCheck with every request sampled and
// its spans kept in memory: the cost of tracing on (BenchmarkCheck is off).
func BenchmarkCheckTraced(b *testing.B) {
	rec := tracetest.NewInMemoryExporter()
	tp := tracing.NewProvider(tracing.Config{}, sdktrace.WithSpanProcessor(sdktrace.NewSimpleSpanProcessor(rec)))
	b.Cleanup(func() { _ = tp.Shutdown(b.Context()) })
	s := newServer(b, authz.Config{}, authz.Deps{Policy: authztest.Engine(b), Tracer: tp})
	req := checkRequest("POST", body1KiB, map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	b.ResetTimer()
	benchCheck(b, s, req)
	b.StopTimer()
	if len(rec.GetSpans()) == 0 {
		b.Fatal("no span recorded")
	}
}
