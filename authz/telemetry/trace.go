package telemetry

import (
	"bytes"
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/tracing"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
)

// CheckSpanName is the span of one decision, named after the ext_authz RPC
// it answers (in process or over gRPC alike).
const CheckSpanName = "envoy.service.auth.v3.Authorization/Check"

// StartCheck starts with t the span of one decision, a child of the
// request's traceparent header (Envoy's, or the front's) or, without one,
// of its MCP message's params._meta.traceparent (SEP-414), which is
// otherwise linked; body is read within maxBytes, only when it names a
// traceparent.
func StartCheck(ctx context.Context, t trace.Tracer, headers map[string]string, body []byte, maxBytes int) (context.Context, trace.Span) {
	ctx = tracing.Extract(ctx, headers)
	var opts []trace.SpanStartOption
	if meta := metaContext(body, maxBytes); meta.IsValid() {
		if parent := trace.SpanContextFromContext(ctx); !parent.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, meta)
		} else if parent.TraceID() != meta.TraceID() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: meta}))
		}
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("rpc.system.name", "grpc"),
		attribute.String("rpc.method", CheckSpanName),
	))
	return t.Start(ctx, CheckSpanName, opts...)
}

var traceparentKey = []byte(`"traceparent"`)

// metaContext is the span context of the body's _meta.traceparent; only
// looked for when the body names one, with the bounds of every parse.
func metaContext(body []byte, maxBytes int) trace.SpanContext {
	if len(body) == 0 || len(body) > maxBytes || mcpparse.IsBatch(body) || !bytes.Contains(body, traceparentKey) {
		return trace.SpanContext{}
	}
	m, err := mcpparse.Parse(body, mcpparse.Options{MaxBytes: maxBytes})
	if err != nil {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(tracing.ExtractMeta(context.Background(), m.Meta))
}

// EndCheck ends span with what the decision was about: never a token, a
// subject or an argument. A nil span is left.
func EndCheck(span trace.Span, d *Record) {
	if span == nil {
		return
	}
	span.SetAttributes(tracing.Method(d.Method, d.Name)...)
	span.SetAttributes(tracing.Reason.String(d.Reason), attribute.Bool("mcp_authz.allow", d.Allow))
	if d.Server != "" {
		span.SetAttributes(tracing.Server.String(d.Server))
	}
	if d.Profile != "" {
		span.SetAttributes(tracing.Profile.String(d.Profile))
	}
	if !d.Allow {
		tracing.Fail(span, d.Reason)
	}
	span.End()
}

// EndSpan ends span, failed when err is not nil (the error's text is not
// recorded). A nil span is left.
func EndSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		tracing.Fail(span, "error")
	}
	span.End()
}

// Verifier, Exchanger and Decider are the calls of a decision that get a
// span of their own (authz's dependencies of the same names).
type (
	Verifier interface {
		Verify(ctx context.Context, raw string) (*identity.Identity, error)
	}
	Exchanger interface {
		Exchange(ctx context.Context, r exchange.Request) (*exchange.Token, error)
	}
	Decider interface {
		Decide(ctx context.Context, in *policy.Input) policy.Decision
		Filter(ctx context.Context, in *policy.Input, targets []policy.Target) []bool
	}
)

// TraceVerifier is v with each Verify in a span of t.
func TraceVerifier(v Verifier, t trace.Tracer) Verifier { return tracedVerifier{v, t} }

// TraceExchanger is x with each Exchange in a span of t.
func TraceExchanger(x Exchanger, t trace.Tracer) Exchanger { return tracedExchanger{x, t} }

// TraceDecider is d with each Decide and Filter in a span of t.
func TraceDecider(d Decider, t trace.Tracer) Decider { return tracedDecider{d, t} }

type tracedVerifier struct {
	v Verifier
	t trace.Tracer
}

func (v tracedVerifier) Verify(ctx context.Context, raw string) (*identity.Identity, error) {
	ctx, span := v.t.Start(ctx, "identity.Verify")
	id, err := v.v.Verify(ctx, raw)
	EndSpan(span, err)
	return id, err
}

type tracedExchanger struct {
	x Exchanger
	t trace.Tracer
}

// Exchange spans the whole exchange; each of its steps is an HTTP client
// span below it when the exchange client's transport is traced.
func (x tracedExchanger) Exchange(ctx context.Context, r exchange.Request) (*exchange.Token, error) {
	ctx, span := x.t.Start(ctx, "exchange.Exchange", trace.WithAttributes(attribute.String("mcp_authz.exchange.audience", r.Audience)))
	if r.Profile != "" {
		span.SetAttributes(tracing.Profile.String(r.Profile))
	}
	tok, err := x.x.Exchange(ctx, r)
	EndSpan(span, err)
	return tok, err
}

type tracedDecider struct {
	d Decider
	t trace.Tracer
}

func (p tracedDecider) Decide(ctx context.Context, in *policy.Input) policy.Decision {
	ctx, span := p.t.Start(ctx, "policy.Decide")
	d := p.d.Decide(ctx, in)
	span.SetAttributes(attribute.Bool("mcp_authz.allow", d.Allow), tracing.Reason.String(d.Reason))
	if d.Policy != "" {
		span.SetAttributes(attribute.String("mcp_authz.policy", d.Policy))
	}
	span.End()
	return d
}

func (p tracedDecider) Filter(ctx context.Context, in *policy.Input, targets []policy.Target) []bool {
	ctx, span := p.t.Start(ctx, "policy.Filter", trace.WithAttributes(attribute.Int("mcp_authz.targets", len(targets))))
	ok := p.d.Filter(ctx, in, targets)
	span.End()
	return ok
}
