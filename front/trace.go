package front

import (
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/tracing"
)

// traced wraps h, when tp is set, in the front's server span, as
// Envoy's tracing does: a child of the client's traceparent, if any, and
// the parent of the check and of the forwarded request, whose traceparent
// it replaces (so authz reads it from the CheckRequest's headers and the
// router from the request). No header value or query is recorded.
func traced(h http.Handler, tp trace.TracerProvider) http.Handler {
	t := tracing.Tracer(tp, "github.com/mcp-authz/mcp-authz/front")
	if t == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := t.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path)))
		defer span.End()
		r = r.WithContext(ctx)
		r.Header.Del("Tracestate")
		tracing.Propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		span.SetAttributes(semconv.HTTPResponseStatusCode(sw.status))
		if sw.status >= 500 {
			tracing.Fail(span, http.StatusText(sw.status))
		}
	})
}

// statusWriter remembers the status written; it keeps Flush (streams).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
