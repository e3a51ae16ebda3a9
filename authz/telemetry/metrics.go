package telemetry

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

// Recorder counts decisions, times them and writes the decision log.
type Recorder struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	log       *slog.Logger
	sampled   sampler
}

// NewRecorder registers the decision counter and the decision latency
// histogram with r (a private registry when r is nil), and logs to log
// every denial and one allowed decision in logEvery (every one when
// logEvery is 1 or less).
func NewRecorder(r prometheus.Registerer, log *slog.Logger, logEvery int) (*Recorder, error) {
	if r == nil {
		r = prometheus.NewRegistry()
	}
	m := &Recorder{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_authz_decisions_total",
			Help: "Check decisions by decision (allow, deny) and reason code.",
		}, []string{"decision", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mcp_authz_check_duration_seconds",
			Help:    "Time to answer one Check, from request to decision.",
			Buckets: []float64{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}),
		log:     log,
		sampled: sampler{every: uint64(max(logEvery, 1))},
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

// Record counts the decision and writes the decision log: every denial, and
// one allowed decision in the recorder's logEvery. Both carry the decision's
// cause when it has one (the log adds the reason the client was answered).
// Tokens are never logged.
func (m *Recorder) Record(ctx context.Context, d *Record, elapsed time.Duration) {
	decision := "allow"
	if !d.Allow {
		decision = "deny"
	}
	reason := d.Reason
	if d.Cause != "" {
		reason = d.Cause
	}
	m.decisions.WithLabelValues(decision, reason).Inc()
	m.latency.Observe(elapsed.Seconds())
	if d.Allow && !m.sampled.next() {
		return
	}
	if !m.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("decision", decision),
		slog.String("reason", reason),
		slog.String("method", d.Method),
		slog.String("server", d.Server),
		slog.String("name", d.Name),
		slog.String("subject", d.Subject),
		slog.Duration("latency", elapsed),
	}
	if !d.Allow {
		attrs = append(attrs, slog.Int("status", d.Status))
	}
	if d.Cause != "" {
		attrs = append(attrs, slog.String("answered", d.Reason))
	}
	if d.Detail != "" {
		attrs = append(attrs, slog.String("detail", d.Detail))
	}
	if d.Profile != "" {
		// The exchange, never a token: each step's grant and endpoint.
		attrs = append(attrs, slog.String("profile", d.Profile), slog.String("target", d.Target))
		for i, st := range d.Steps {
			attrs = append(attrs, slog.String("step"+strconv.Itoa(i+1), st.Grant+" "+st.Endpoint))
		}
	}
	m.log.LogAttrs(ctx, slog.LevelInfo, "decision", attrs...)
}

// sampler says yes once in every calls.
type sampler struct {
	every uint64
	n     atomic.Uint64
}

func (s *sampler) next() bool { return s.every <= 1 || s.n.Add(1)%s.every == 1 }
