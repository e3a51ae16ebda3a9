package authz

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

// response is the CheckResponse of a verdict: OK with headers, or a denial
// that an MCP client understands (HTTP status, JSON-RPC error body).
func (v *verdict) response() *authv3.CheckResponse {
	if v.status == 0 {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(code.Code_OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers:         v.set,
				HeadersToRemove: v.remove,
			}},
		}
	}
	headers := []*corev3.HeaderValueOption{
		{Header: &corev3.HeaderValue{Key: "content-type", Value: "application/json"}},
	}
	if v.challenge != "" {
		headers = append(headers, &corev3.HeaderValueOption{
			Header: &corev3.HeaderValue{Key: "www-authenticate", Value: v.challenge},
		})
	}
	grpcCode := code.Code_PERMISSION_DENIED
	if v.status == http.StatusUnauthorized {
		grpcCode = code.Code_UNAUTHENTICATED
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(v.status)},
			Headers: headers,
			Body:    string(v.body()),
		}},
	}
}

// body is the JSON-RPC error answer of a denial. It carries the request id
// and the reason code, never error text: the same body for an unknown tool
// and a forbidden one.
func (v *verdict) body() []byte {
	b := make([]byte, 0, 160)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if len(v.id) > 0 {
		b = append(b, v.id...)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(v.code), 10)
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, message(v.status))
	b = append(b, `,"data":{"reason":`...)
	b = strconv.AppendQuote(b, v.reason)
	return append(b, "}}}"...)
}

func message(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusRequestEntityTooLarge:
		return "request too large"
	case http.StatusServiceUnavailable:
		return "service unavailable"
	case http.StatusInternalServerError:
		return "internal error"
	default:
		return "invalid request"
	}
}

// record counts the decision and writes the decision log: every denial, and
// one allowed decision in DecisionLogEvery. Both carry the verdict's cause
// when it has one (the log adds the reason the client was answered).
// Tokens are never logged.
func (s *Server) record(ctx context.Context, v *verdict, elapsed time.Duration) {
	decision := "allow"
	if v.status != 0 {
		decision = "deny"
	}
	reason := v.reason
	if v.cause != "" {
		reason = v.cause
	}
	s.metrics.decisions.WithLabelValues(decision, reason).Inc()
	s.metrics.latency.Observe(elapsed.Seconds())
	if v.status == 0 && !s.sampled.next() {
		return
	}
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("decision", decision),
		slog.String("reason", reason),
		slog.String("method", v.method),
		slog.String("server", v.server),
		slog.String("name", v.name),
		slog.String("subject", v.subject),
		slog.Duration("latency", elapsed),
	}
	if v.status != 0 {
		attrs = append(attrs, slog.Int("status", v.status))
	}
	if v.cause != "" {
		attrs = append(attrs, slog.String("answered", v.reason))
	}
	if v.detail != "" {
		attrs = append(attrs, slog.String("detail", v.detail))
	}
	if v.profile != "" {
		// The exchange, never a token: each step's grant and endpoint.
		attrs = append(attrs, slog.String("profile", v.profile), slog.String("target", v.target))
		for i, st := range v.steps {
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
