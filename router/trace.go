package router

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/tracing"
	"github.com/mcp-authz/mcp-authz/registry"
)

// traceTransport returns what wraps a transport to make an HTTP client
// span of each upstream request and carry its traceparent on, and the
// router's tracer; nil and nil when tracing is off.
func traceTransport(tp trace.TracerProvider) (func(http.RoundTripper) http.RoundTripper, trace.Tracer) {
	t := tracing.Tracer(tp, "github.com/mcp-authz/mcp-authz/router")
	if t == nil {
		return nil, nil
	}
	return func(rt http.RoundTripper) http.RoundTripper { return tracing.Transport(rt, t) }, t
}

func noEnd() {}

// traceCall starts the server span of one MCP request, a child of the
// traceparent header (the front's or Envoy's) or, without one, of the
// message's params._meta.traceparent (SEP-414), and puts it in c's
// context. The span has the method and the tool or prompt name the
// caller used (prefixed), never an argument or a token.
func (r *Router) traceCall(c *call) func() {
	if r.tracer == nil {
		return noEnd
	}
	ctx := tracing.Propagator.Extract(c.req.Context(), propagation.HeaderCarrier(c.req.Header))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = tracing.ExtractMeta(ctx, c.msg.Meta)
	}
	ctx, span := r.tracer.Start(ctx, tracing.SpanName(c.msg.Method, c.msg.Name),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(tracing.Method(c.msg.Method, c.msg.Name)...))
	c.req = c.req.WithContext(ctx)
	return func() { span.End() }
}

// traceUpstream starts the span of one request to one server: a list
// fetch or a forwarded call (name unprefixed). nil when tracing is off.
func (r *Router) traceUpstream(ctx context.Context, method, name string, srv *registry.Server) (context.Context, trace.Span) {
	return tracing.StartUpstream(ctx, r.tracer, method, name, srv.Name)
}

// endTrace ends a span of traceUpstream, failed when err is not nil (its
// text is not recorded).
func endTrace(span trace.Span, err error) { tracing.EndUpstream(span, err) }
