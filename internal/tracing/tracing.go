// Package tracing builds the OpenTelemetry tracer provider of one process
// from its configuration and carries W3C trace context in and out.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// Protocols of the OTLP exporter.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Config is the top-level tracing section. Tracing is off when the section
// is absent: every part then gets no tracer and pays nothing.
type Config struct {
	// Endpoint is the OTLP collector: host:port for grpc (port 4317 by
	// convention), a URL (https://collector:4318) for http/protobuf, which
	// posts to its /v1/traces. Required.
	Endpoint string `yaml:"endpoint" json:"endpoint"`
	// Protocol is "grpc" (the default when empty) or "http/protobuf".
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	// SamplingRatio is the fraction of new traces recorded, 0 to 1; nil
	// means 1. A request whose traceparent says sampled is always recorded
	// and one that says not sampled never is (parent-based sampling).
	SamplingRatio *float64 `yaml:"samplingRatio,omitempty" json:"samplingRatio,omitempty"`
	// InsecureLoopback sends spans without TLS. It MUST NOT be used for a
	// collector beyond this host: it is refused unless Endpoint is a
	// loopback address (127.0.0.0/8, ::1, localhost).
	InsecureLoopback bool `yaml:"insecureLoopback,omitempty" json:"insecureLoopback,omitempty"`
	// ServiceName is the service.name resource attribute; empty means
	// "mcp-authz".
	ServiceName string `yaml:"serviceName,omitempty" json:"serviceName,omitempty"`
}

// Validate reports every problem of c, each an *field.Error whose path is
// relative to the tracing section.
func (c Config) Validate() error {
	var errs []error
	switch c.Protocol {
	case "", ProtocolGRPC, ProtocolHTTP:
	default:
		errs = append(errs, field.Errorf("protocol", "%q is neither %q nor %q", c.Protocol, ProtocolGRPC, ProtocolHTTP))
	}
	host, err := c.host()
	if err != nil {
		errs = append(errs, &field.Error{Path: "endpoint", Err: err})
	}
	if r := c.SamplingRatio; r != nil && !(*r >= 0 && *r <= 1) {
		errs = append(errs, field.Errorf("samplingRatio", "%v is not between 0 and 1", *r))
	}
	if c.InsecureLoopback && err == nil && !loopback(host) {
		errs = append(errs, field.Errorf("insecureLoopback", "endpoint host %q is not a loopback address: spans would cross the network in clear text", host))
	}
	return errors.Join(errs...)
}

// host is the host of Endpoint, which must name a port.
func (c Config) host() (string, error) {
	if c.Endpoint == "" {
		return "", errors.New("required")
	}
	hostport := c.Endpoint
	if c.Protocol == ProtocolHTTP {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return "", fmt.Errorf("not a URL: %w", err)
		}
		if u.Scheme != "https" && (u.Scheme != "http" || !c.InsecureLoopback) {
			return "", fmt.Errorf("scheme %q: want https (http only with insecureLoopback)", u.Scheme)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return "", errors.New("no user, query or fragment allowed")
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("%q is not host:port", hostport)
	}
	return host, nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// New returns a tracer provider that batches spans to the collector of c.
// The caller shuts it down (flushing what is left) when the process ends.
func New(ctx context.Context, c Config) (*sdktrace.TracerProvider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	exp, err := exporter(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	return NewProvider(c, sdktrace.WithBatcher(exp)), nil
}

// NewProvider returns a tracer provider with the sampler and resource of c
// and the given span processors (tests pass an in-memory one).
func NewProvider(c Config, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	ratio := 1.0
	if c.SamplingRatio != nil {
		ratio = *c.SamplingRatio
	}
	name := c.ServiceName
	if name == "" {
		name = "mcp-authz"
	}
	res := resource.NewSchemaless(semconv.ServiceName(name))
	opts = append([]sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(res),
	}, opts...)
	return sdktrace.NewTracerProvider(opts...)
}

func exporter(ctx context.Context, c Config) (*otlptrace.Exporter, error) {
	if c.Protocol == ProtocolHTTP {
		u, _ := url.Parse(c.Endpoint) // checked by Validate
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host)}
		if p := strings.TrimSuffix(u.Path, "/"); p != "" {
			opts = append(opts, otlptracehttp.WithURLPath(p+"/v1/traces"))
		}
		if c.InsecureLoopback {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.Endpoint)}
	if c.InsecureLoopback {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	return otlptracegrpc.New(ctx, opts...)
}

// Propagator reads and writes W3C traceparent and tracestate.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracer returns the named tracer of tp, or nil when tp is nil: a part
// with a nil tracer starts no span at all.
func Tracer(tp trace.TracerProvider, name string) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(name)
}
