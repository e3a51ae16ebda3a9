package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
}

// newMetrics registers the decision counter and the decision latency histogram
// with r (a private registry when r is nil).
func newMetrics(r prometheus.Registerer) (*metrics, error) {
	if r == nil {
		r = prometheus.NewRegistry()
	}
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_authz_decisions_total",
			Help: "Check decisions by decision (allow, deny) and reason code.",
		}, []string{"decision", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mcp_authz_check_duration_seconds",
			Help:    "Time to answer one Check, from request to decision.",
			Buckets: []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}),
	}
	var err error
	if m.decisions, err = register(r, m.decisions); err != nil {
		return nil, err
	}
	if m.latency, err = register(r, m.latency); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c with r, or returns the collector already registered
// under its name (two servers in one process share their metrics).
func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	err := r.Register(c)
	var are prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &are):
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("authz: metrics: %w", err)
}

// record counts the decision and writes the decision log: every denial, and
// one allowed decision in DecisionLogEvery. Both carry the decision's cause
// when it has one (the log adds the reason the client was answered).
// Tokens are never logged.
func (s *Server) record(ctx context.Context, d *Decision, elapsed time.Duration) {
	decision := "allow"
	if !d.Allow {
		decision = "deny"
	}
	reason := d.Reason
	if d.cause != "" {
		reason = d.cause
	}
	s.metrics.decisions.WithLabelValues(decision, reason).Inc()
	s.metrics.latency.Observe(elapsed.Seconds())
	if d.Allow && !s.sampled.next() {
		return
	}
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("decision", decision),
		slog.String("reason", reason),
		slog.String("method", d.method),
		slog.String("server", d.server),
		slog.String("name", d.name),
		slog.String("subject", d.subject),
		slog.Duration("latency", elapsed),
	}
	if !d.Allow {
		attrs = append(attrs, slog.Int("status", d.Status))
	}
	if d.cause != "" {
		attrs = append(attrs, slog.String("answered", d.Reason))
	}
	if d.detail != "" {
		attrs = append(attrs, slog.String("detail", d.detail))
	}
	if d.profile != "" {
		// The exchange, never a token: each step's grant and endpoint.
		attrs = append(attrs, slog.String("profile", d.profile), slog.String("target", d.target))
		for i, st := range d.steps {
			attrs = append(attrs, slog.String("step"+strconv.Itoa(i+1), st.Grant+" "+st.Endpoint))
		}
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "decision", attrs...)
}

// sampler says yes once in every calls.
type sampler struct {
	every uint64
	n     atomic.Uint64
}

func (s *sampler) next() bool { return s.every <= 1 || s.n.Add(1)%s.every == 1 }
