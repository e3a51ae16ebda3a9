package tracing

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

func ratio(f float64) *float64 { return &f }

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		path string // of the error; "" when valid
	}{
		{name: "grpc", c: Config{Endpoint: "collector.observability:4317"}},
		{name: "grpc loopback insecure", c: Config{Endpoint: "127.0.0.1:4317", InsecureLoopback: true}},
		{name: "localhost insecure", c: Config{Endpoint: "localhost:4317", InsecureLoopback: true}},
		{name: "ipv6 loopback insecure", c: Config{Endpoint: "[::1]:4317", InsecureLoopback: true}},
		{name: "http", c: Config{Endpoint: "https://collector:4318", Protocol: ProtocolHTTP, SamplingRatio: ratio(0.1)}},
		{name: "http loopback insecure", c: Config{Endpoint: "http://127.0.0.1:4318", Protocol: ProtocolHTTP, InsecureLoopback: true}},
		{name: "no endpoint", c: Config{}, path: "endpoint"},
		{name: "no port", c: Config{Endpoint: "collector"}, path: "endpoint"},
		{name: "unknown protocol", c: Config{Endpoint: "collector:4317", Protocol: "http/json"}, path: "protocol"},
		{name: "ratio above 1", c: Config{Endpoint: "collector:4317", SamplingRatio: ratio(1.5)}, path: "samplingRatio"},
		{name: "ratio below 0", c: Config{Endpoint: "collector:4317", SamplingRatio: ratio(-0.1)}, path: "samplingRatio"},
		{name: "insecure beyond loopback", c: Config{Endpoint: "collector.observability:4317", InsecureLoopback: true}, path: "insecureLoopback"},
		{name: "insecure to a routable address", c: Config{Endpoint: "10.0.0.1:4317", InsecureLoopback: true}, path: "insecureLoopback"},
		{name: "http without insecure", c: Config{Endpoint: "http://127.0.0.1:4318", Protocol: ProtocolHTTP}, path: "endpoint"},
		{name: "http with user", c: Config{Endpoint: "https://u:p@collector:4318", Protocol: ProtocolHTTP}, path: "endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.path == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *field.Error
			if !errors.As(err, &fe) || fe.Path != tc.path {
				t.Fatalf("Validate() = %v, want an error at %s", err, tc.path)
			}
		})
	}
}

func TestExtractMeta(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name  string
		meta  string
		trace string // "" when no context is taken
	}{
		{name: "traceparent", meta: `{"traceparent":"` + tp + `"}`, trace: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{name: "with tracestate", meta: `{"traceparent":"` + tp + `","tracestate":"k=v"}`, trace: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{name: "none", meta: `{"progressToken":1}`},
		{name: "malformed", meta: `{"traceparent":"00-zz-00f067aa0ba902b7-01"}`},
		{name: "not a string", meta: `{"traceparent":1}`},
		{name: "duplicate key", meta: `{"traceparent":"` + tp + `","traceparent":"` + tp + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := trace.SpanContextFromContext(ExtractMeta(t.Context(), []byte(tc.meta)))
			got := ""
			if sc.IsValid() {
				got = sc.TraceID().String()
			}
			if got != tc.trace {
				t.Errorf("trace id = %q, want %q", got, tc.trace)
			}
		})
	}
}

// TestTransport: a request in a traced context gets a client span and
// carries its traceparent on; one without a span goes as it is; the span
// has no query.
func TestTransport(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("Traceparent"))
	}))
	defer srv.Close()
	rec := tracetest.NewSpanRecorder()
	tp := NewProvider(Config{}, sdktrace.WithSpanProcessor(rec))
	client := &http.Client{Transport: Transport(srv.Client().Transport, tp.Tracer("test"))}

	get := func(req *http.Request) {
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/x?access_token=secret", nil)
	get(req)
	ctx, parent := tp.Tracer("test").Start(t.Context(), "parent")
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x?access_token=secret", nil)
	get(req)
	parent.End()

	if got[0] != "" {
		t.Errorf("untraced request carried traceparent %q", got[0])
	}
	spans := rec.Ended()
	if len(spans) != 2 || spans[0].Name() != http.MethodGet || spans[0].Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("spans = %v, want GET under parent", spans)
	}
	if want := "-" + spans[0].SpanContext().SpanID().String() + "-"; !strings.Contains(got[1], want) {
		t.Errorf("traceparent %q does not name the client span %s", got[1], want)
	}
	for _, kv := range spans[0].Attributes() {
		if strings.Contains(kv.Value.String(), "secret") {
			t.Errorf("attribute %s = %q carries the query", kv.Key, kv.Value.String())
		}
	}
}
