package router

import "github.com/prometheus/client_golang/prometheus"

// metrics are the router's Prometheus series; labels carry server names
// and method names only, never caller data.
type metrics struct {
	requests *prometheus.CounterVec // by JSON-RPC method (known ones) or HTTP method
	failures *prometheus.CounterVec // upstream failures by server and operation
	tooLarge *prometheus.CounterVec // lists left out for a size limit, by server and limit
	shadowed *prometheus.CounterVec // names left out of lists: another server's longer prefix takes them
	sessions prometheus.Counter
	// upstreamSessions counts the upstream sessions this replica opened.
	upstreamSessions prometheus.Counter
	streams          prometheus.Gauge
	// streamsRefused counts streams refused for MaxStreamsPerCaller.
	streamsRefused prometheus.Counter
	// withheld counts resources/updated kept from a subscriptions/listen.
	withheld *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_authz_router_requests_total", Help: "Requests served, by MCP method.",
		}, []string{"method"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_authz_router_upstream_failures_total", Help: "Failed upstream initializes, lists and calls, by server and operation.",
		}, []string{"server", "op"}),
		tooLarge: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_authz_router_list_too_large_total",
			Help: "Upstream lists left out for exceeding a size limit, by server and limit (maxListBytes, maxListItems, maxAggregateBytes, maxAggregateItems).",
		}, []string{"server", "limit"}),
		shadowed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_authz_router_list_shadowed_total",
			Help: "Tool and prompt names left out of a server's fetched list because, with its prefix, they resolve to another server with a longer prefix, by server and list.",
		}, []string{"server", "list"}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcp_authz_router_sessions_total", Help: "Sessions opened (initialize).",
		}),
		upstreamSessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcp_authz_router_upstream_sessions_total", Help: "Upstream sessions opened (on a session's first use of a server, or after the server ended one).",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcp_authz_router_streams", Help: "Open client GET streams.",
		}),
		streamsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mcp_authz_router_streams_refused_total", Help: "Client GET and subscriptions/listen streams refused: the caller held maxStreamsPerCaller open.",
		}),
		withheld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcp_authz_router_notifications_withheld_total",
			Help: "notifications/resources/updated kept from a subscriptions/listen stream, by server and reason (denied: the policy does not let the caller read the URI; unsubscribed: the caller did not subscribe to it).",
		}, []string{"server", "reason"}),
	}
}

// methodLabel bounds the label values to the methods the router knows.
func methodLabel(m string) string {
	switch m {
	case "initialize", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get",
		"resources/list", "resources/read", "resources/templates/list", "notifications/cancelled", "":
		return m
	}
	return "other"
}

// Describe implements prometheus.Collector.
func (r *Router) Describe(ch chan<- *prometheus.Desc) {
	r.metrics.requests.Describe(ch)
	r.metrics.failures.Describe(ch)
	r.metrics.tooLarge.Describe(ch)
	r.metrics.shadowed.Describe(ch)
	r.metrics.sessions.Describe(ch)
	r.metrics.upstreamSessions.Describe(ch)
	r.metrics.streams.Describe(ch)
	r.metrics.streamsRefused.Describe(ch)
	r.metrics.withheld.Describe(ch)
}

// Collect implements prometheus.Collector: register the Router to export
// its metrics.
func (r *Router) Collect(ch chan<- prometheus.Metric) {
	r.metrics.requests.Collect(ch)
	r.metrics.failures.Collect(ch)
	r.metrics.tooLarge.Collect(ch)
	r.metrics.shadowed.Collect(ch)
	r.metrics.sessions.Collect(ch)
	r.metrics.upstreamSessions.Collect(ch)
	r.metrics.streams.Collect(ch)
	r.metrics.streamsRefused.Collect(ch)
	r.metrics.withheld.Collect(ch)
}
