package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// Attribute keys of the OpenTelemetry MCP and GenAI semantic conventions
// (not yet in the semconv Go package), and mcp-authz's own.
const (
	MCPMethodName   = attribute.Key("mcp.method.name")
	MCPSessionID    = attribute.Key("mcp.session.id")
	GenAIToolName   = attribute.Key("gen_ai.tool.name")
	GenAIOperation  = attribute.Key("gen_ai.operation.name")
	GenAIPromptName = attribute.Key("gen_ai.prompt.name")
	// Server is the registered server (namespace/name) a request is for.
	Server = attribute.Key("mcp_authz.server")
	// Reason is authz's reason code (allowed, tool_denied...).
	Reason = attribute.Key("mcp_authz.reason")
	// Profile is the exchange profile.
	Profile = attribute.Key("mcp_authz.exchange.profile")
)

// Method returns the attributes of an MCP request for method and its named
// tool or prompt; never an argument.
func Method(method, name string) []attribute.KeyValue {
	kv := []attribute.KeyValue{MCPMethodName.String(method)}
	switch {
	case name == "":
	case method == "tools/call":
		kv = append(kv, GenAIToolName.String(name), GenAIOperation.String("execute_tool"))
	case method == "prompts/get":
		kv = append(kv, GenAIPromptName.String(name))
	}
	return kv
}

// SpanName is the MCP conventions' span name: the method and, when there
// is one, the tool or prompt name.
func SpanName(method, name string) string {
	if name == "" {
		return method
	}
	return method + " " + name
}

// Fail marks span failed with a low-cardinality reason, never an error's
// text (it may quote a token or an argument).
func Fail(span trace.Span, reason string) {
	span.SetAttributes(semconv.ErrorTypeKey.String(reason))
	span.SetStatus(codes.Error, reason)
}

// StartUpstream starts the span of one request the router makes to one
// registered server (a list fetch or a forwarded call, name unprefixed);
// a nil span when t is nil (tracing off).
func StartUpstream(ctx context.Context, t trace.Tracer, method, name, server string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	kv := append(Method(method, name), Server.String(server))
	return t.Start(ctx, SpanName(method, name)+" "+server, trace.WithAttributes(kv...))
}

// EndUpstream ends a span of StartUpstream (nil: none), failed when err is
// not nil (its text is not recorded).
func EndUpstream(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		Fail(span, "upstream")
	}
	span.End()
}

// Extract returns ctx with the remote span context of the W3C traceparent
// in headers (keyed by lower-case name, as authz.Request has them).
func Extract(ctx context.Context, headers map[string]string) context.Context {
	return Propagator.Extract(ctx, propagation.MapCarrier(headers))
}

var metaTraceparent = []byte(`"traceparent"`)

// ExtractMeta returns ctx with the remote span context of
// params._meta.traceparent (and tracestate) of an MCP message (SEP-414);
// ctx unchanged when there is none or it is malformed.
func ExtractMeta(ctx context.Context, meta []byte) context.Context {
	if !bytes.Contains(meta, metaTraceparent) {
		return ctx
	}
	f, err := mcpparse.Fields(meta, mcpparse.Options{MaxBytes: len(meta)}, "traceparent", "tracestate")
	if err != nil {
		return ctx
	}
	carrier := propagation.MapCarrier{}
	for i, name := range []string{"traceparent", "tracestate"} {
		var s string
		if i < len(f) && f[i].Raw != nil && json.Unmarshal(f[i].Raw, &s) == nil {
			carrier[name] = s
		}
	}
	return Propagator.Extract(ctx, carrier)
}

// Transport wraps base so that each request made in a traced context gets
// an HTTP client span and carries its traceparent on. A request without a
// span in its context (a background refresh) is sent as it is: no orphan
// root spans. The span has no URL query (it may hold a credential) and no
// header.
func Transport(base http.RoundTripper, t trace.Tracer) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, tracer: t}
}

type transport struct {
	base   http.RoundTripper
	tracer trace.Tracer
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(req.Context()).IsValid() {
		return t.base.RoundTrip(req)
	}
	host, port := req.URL.Hostname(), req.URL.Port()
	kv := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(req.Method),
		semconv.ServerAddress(host),
		semconv.URLPath(req.URL.Path),
		semconv.URLScheme(req.URL.Scheme),
	}
	if p, err := strconv.Atoi(port); err == nil {
		kv = append(kv, semconv.ServerPort(p))
	} else if _, _, err := net.SplitHostPort(req.URL.Host); err != nil {
		kv = append(kv, semconv.ServerPort(defaultPort(req.URL.Scheme)))
	}
	ctx, span := t.tracer.Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(kv...))
	req = req.Clone(ctx) // RoundTrip must not change the caller's request
	Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		Fail(span, "transport")
		span.End()
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		Fail(span, strconv.Itoa(resp.StatusCode))
	}
	span.End() // the headers are in; a stream's body is not waited for
	return resp, nil
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}
