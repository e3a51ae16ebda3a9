package router

import (
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/tracing"
	"github.com/mcp-authz/mcp-authz/router/forward"
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
func (r *Router) traceCall(c *forward.Call) func() {
	if r.tracer == nil {
		return noEnd
	}
	ctx := tracing.Propagator.Extract(c.Req.Context(), propagation.HeaderCarrier(c.Req.Header))
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = tracing.ExtractMeta(ctx, c.Msg.Meta)
	}
	ctx, span := r.tracer.Start(ctx, tracing.SpanName(c.Msg.Method, c.Msg.Name),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(tracing.Method(c.Msg.Method, c.Msg.Name)...))
	c.Req = c.Req.WithContext(ctx)
	return func() { span.End() }
}
