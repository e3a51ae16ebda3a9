package authz

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/authz/telemetry"
	"github.com/mcp-authz/mcp-authz/internal/tracing"
)

// traced returns d with its Verifier, Exchanger and Decider wrapped in
// spans, and the tracer of d.Tracer; d as it is and nil when tracing is off.
func traced(d Deps) (Deps, trace.Tracer) {
	t := tracing.Tracer(d.Tracer, "github.com/mcp-authz/mcp-authz/authz")
	if t == nil {
		return d, nil
	}
	if d.Verifier != nil {
		d.Verifier = telemetry.TraceVerifier(d.Verifier, t)
	}
	if d.Exchanger != nil {
		d.Exchanger = telemetry.TraceExchanger(d.Exchanger, t)
	}
	d.Policy = telemetry.TraceDecider(d.Policy, t)
	return d, t
}

// startCheck starts the span of one decision (telemetry.StartCheck); nil
// when tracing is off.
func (s *Server) startCheck(ctx context.Context, r *Request) (context.Context, trace.Span) {
	if s.tracer == nil || r == nil {
		return ctx, nil
	}
	return telemetry.StartCheck(ctx, s.tracer, r.Headers, r.Body, s.cfg.MaxBodyBytes)
}

// endCheck ends span with what d was about (telemetry.EndCheck).
func endCheck(span trace.Span, d *Decision) {
	if span == nil {
		return
	}
	rec := d.record()
	telemetry.EndCheck(span, &rec)
}

// startSpan starts an internal span under ctx's; nil when tracing is off.
func (s *Server) startSpan(ctx context.Context, name string) trace.Span {
	if s.tracer == nil {
		return nil
	}
	_, span := s.tracer.Start(ctx, name)
	return span
}

// endSpan ends a span of startSpan (telemetry.EndSpan).
func endSpan(span trace.Span, err error) { telemetry.EndSpan(span, err) }
