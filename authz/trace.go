package authz

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

// checkSpanName is the span of one decision, named after the ext_authz RPC
// it answers (in process or over gRPC alike).
const checkSpanName = "envoy.service.auth.v3.Authorization/Check"

// traced returns d with its Verifier, Exchanger and Decider wrapped in
// spans, and the tracer of d.Tracer; d as it is and nil when tracing is off.
func traced(d Deps) (Deps, trace.Tracer) {
	t := tracing.Tracer(d.Tracer, "github.com/mcp-authz/mcp-authz/authz")
	if t == nil {
		return d, nil
	}
	if d.Verifier != nil {
		d.Verifier = tracedVerifier{d.Verifier, t}
	}
	if d.Exchanger != nil {
		d.Exchanger = tracedExchanger{d.Exchanger, t}
	}
	d.Policy = tracedDecider{d.Policy, t}
	return d, t
}

// startCheck starts the span of one decision, a child of the request's
// traceparent header (Envoy's, or the front's) or, without one, of its
// MCP message's params._meta.traceparent (SEP-414), which is otherwise
// linked. nil when tracing is off.
func (s *Server) startCheck(ctx context.Context, r *Request) (context.Context, trace.Span) {
	if s.tracer == nil || r == nil {
		return ctx, nil
	}
	ctx = tracing.Extract(ctx, r.Headers)
	var opts []trace.SpanStartOption
	if meta := s.metaContext(r); meta.IsValid() {
		if parent := trace.SpanContextFromContext(ctx); !parent.IsValid() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, meta)
		} else if parent.TraceID() != meta.TraceID() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: meta}))
		}
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("rpc.system.name", "grpc"),
		attribute.String("rpc.method", checkSpanName),
	))
	return s.tracer.Start(ctx, checkSpanName, opts...)
}

var traceparentKey = []byte(`"traceparent"`)

// metaContext is the span context of the body's _meta.traceparent; only
// looked for when the body names one, with the bounds of every parse.
func (s *Server) metaContext(r *Request) trace.SpanContext {
	if len(r.Body) == 0 || len(r.Body) > s.cfg.MaxBodyBytes || mcpparse.IsBatch(r.Body) || !bytes.Contains(r.Body, traceparentKey) {
		return trace.SpanContext{}
	}
	m, err := mcpparse.Parse(r.Body, mcpparse.Options{MaxBytes: s.cfg.MaxBodyBytes})
	if err != nil {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(tracing.ExtractMeta(context.Background(), m.Meta))
}

// endCheck ends span with what the decision was about: never a token, a
// subject or an argument.
func endCheck(span trace.Span, d *Decision) {
	if span == nil {
		return
	}
	span.SetAttributes(tracing.Method(d.method, d.name)...)
	span.SetAttributes(tracing.Reason.String(d.Reason), attribute.Bool("mcp_authz.allow", d.Allow))
	if d.server != "" {
		span.SetAttributes(tracing.Server.String(d.server))
	}
	if d.profile != "" {
		span.SetAttributes(tracing.Profile.String(d.profile))
	}
	if !d.Allow {
		tracing.Fail(span, d.Reason)
	}
	span.End()
}

// startSpan starts an internal span under ctx's; nil when tracing is off.
func (s *Server) startSpan(ctx context.Context, name string) trace.Span {
	if s.tracer == nil {
		return nil
	}
	_, span := s.tracer.Start(ctx, name)
	return span
}

// endSpan ends a span of startSpan, failed when err is not nil (the error's
// text is not recorded).
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		tracing.Fail(span, "error")
	}
	span.End()
}

type tracedVerifier struct {
	v Verifier
	t trace.Tracer
}

func (v tracedVerifier) Verify(ctx context.Context, raw string) (*identity.Identity, error) {
	ctx, span := v.t.Start(ctx, "identity.Verify")
	id, err := v.v.Verify(ctx, raw)
	endSpan(span, err)
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
	endSpan(span, err)
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
