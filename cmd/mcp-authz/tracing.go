package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/config"
	"github.com/mcp-authz/mcp-authz/internal/tracing"
)

// newTracing returns the tracer provider of f's tracing section and the
// part that flushes it when the process stops; nil and nil when tracing is
// off (then no part makes a span).
func newTracing(ctx context.Context, f *config.File) (trace.TracerProvider, starter, error) {
	if f.Tracing == nil {
		return nil, nil, nil
	}
	tp, err := tracing.New(ctx, *f.Tracing)
	if err != nil {
		return nil, nil, err
	}
	flush := startFunc(func(ctx context.Context) error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return nil
	})
	return tp, flush, nil
}

// traceHTTP makes client's requests (JWKS, token endpoint: each exchange
// step) HTTP client spans of the decision that makes them.
func traceHTTP(client *http.Client, tp trace.TracerProvider) {
	if tp != nil {
		client.Transport = tracing.Transport(client.Transport, tp.Tracer("github.com/mcp-authz/mcp-authz/cmd/mcp-authz"))
	}
}
