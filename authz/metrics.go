package authz

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
}

// newMetrics registers the decision counter and the Check latency histogram
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
