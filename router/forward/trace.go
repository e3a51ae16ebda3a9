package forward

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/tracing"
	"github.com/mcp-authz/mcp-authz/registry"
)

// traceUpstream starts the span of one request to one server: a list
// fetch or a forwarded call (name unprefixed). nil when tracing is off.
func (fw *Forwarder) traceUpstream(ctx context.Context, method, name string, srv *registry.Server) (context.Context, trace.Span) {
	return tracing.StartUpstream(ctx, fw.tracer, method, name, srv.Name)
}

// endTrace ends a span of traceUpstream, failed when err is not nil (its
// text is not recorded).
func endTrace(span trace.Span, err error) { tracing.EndUpstream(span, err) }
