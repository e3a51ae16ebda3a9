package router

import (
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/tracing"
	"github.com/mcp-authz/mcp-authz/router/forward"
)

// traceClient returns client with a transport that makes an HTTP client
// span of each upstream request and carries its traceparent on, and the
// router's tracer; client as it is and nil when tracing is off.
func traceClient(client *http.Client, tp trace.TracerProvider) (*http.Client, trace.Tracer) {
	t := tracing.Tracer(tp, "github.com/mcp-authz/mcp-authz/router")
	if t == nil {
		return client, nil
	}
	traced := *client
	traced.Transport = tracing.Transport(client.Transport, t)
	return &traced, t
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
