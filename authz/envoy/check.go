// Package envoy serves authz decisions as an Envoy external-authorization
// server (envoy.service.auth.v3.Authorization, gRPC): a CheckRequest becomes
// an authz.Request, the Decision a CheckResponse.
package envoy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
)

// Config configures the ext_authz gRPC server.
type Config struct {
	// Listen is the gRPC address Start listens on (authz.Config.Listen).
	// Default 127.0.0.1:9001.
	Listen string
	// Logger logs the address served; nil logs nothing.
	Logger *slog.Logger
}

// Server answers Envoy's Check calls with the decisions of an authz.Server.
type Server struct {
	// core is concrete, not an interface: a Request given to an
	// interface method escapes, and Check would allocate it on the heap.
	core   *authz.Server
	listen string
	log    *slog.Logger
}

// New returns the ext_authz server of d (not nil).
func New(c Config, d *authz.Server) *Server {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9001"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{core: d, listen: c.Listen, log: c.Logger}
}

// Check implements envoy.service.auth.v3.AuthorizationServer. It never
// returns an error: every failure is a denial with a reason.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp()
	if h == nil {
		return response(s.core.Decide(ctx, nil)), nil
	}
	r := authz.Request{
		Method:            h.GetMethod(),
		Path:              h.GetPath(),
		Host:              h.GetHost(),
		Scheme:            h.GetScheme(),
		Headers:           headerMap(h),
		Body:              h.GetRawBody(),
		ContextExtensions: req.GetAttributes().GetContextExtensions(),
	}
	if len(r.Body) == 0 && h.GetBody() != "" {
		r.Body = []byte(h.GetBody())
	}
	// Envoy marks a body it cut at with_request_body.max_request_bytes
	// (allow_partial_message) with this header.
	r.BodyTruncated = r.Headers["x-envoy-auth-partial-body"] == "true"
	return response(s.core.Decide(ctx, &r)), nil
}

// headerMap returns the request headers keyed by lower-case name. Envoy sends
// them in headers (repeated headers joined with ",") or, with
// encode_raw_headers, in header_map, where a repeated header is joined here
// the same way.
func headerMap(h *authv3.AttributeContext_HttpRequest) map[string]string {
	if hm := h.GetHeaderMap(); len(h.GetHeaders()) == 0 && hm != nil {
		m := make(map[string]string, len(hm.GetHeaders()))
		for _, kv := range hm.GetHeaders() {
			k := strings.ToLower(kv.GetKey())
			val := kv.GetValue()
			if val == "" {
				val = string(kv.GetRawValue())
			}
			if prev, ok := m[k]; ok {
				val = prev + "," + val
			}
			m[k] = val
		}
		return m
	}
	return h.GetHeaders()
}

// response is the CheckResponse of a decision: OK with headers, or a denial
// that an MCP client understands (HTTP status, JSON-RPC error body).
func response(d *authz.Decision) *authv3.CheckResponse {
	if d.Allow {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(code.Code_OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers:         setHeaders(d),
				HeadersToRemove: d.Remove,
			}},
		}
	}
	headers := []*corev3.HeaderValueOption{
		{Header: &corev3.HeaderValue{Key: "content-type", Value: "application/json"}},
	}
	if d.Challenge != "" {
		headers = append(headers, &corev3.HeaderValueOption{
			Header: &corev3.HeaderValue{Key: "www-authenticate", Value: d.Challenge},
		})
	}
	grpcCode := code.Code_PERMISSION_DENIED
	if d.Status == http.StatusUnauthorized {
		grpcCode = code.Code_UNAUTHENTICATED
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headers,
			Body:    string(d.Body()),
		}},
	}
}

// setHeaders are the headers an OK answer sets: Headers, then the assertion,
// each replacing the client's header of that name. They share two
// allocations.
func setHeaders(d *authz.Decision) []*corev3.HeaderValueOption {
	n := len(d.Headers)
	if d.Assertion != "" {
		n++
	}
	if n == 0 {
		return nil
	}
	type option struct {
		opt corev3.HeaderValueOption
		val corev3.HeaderValue
	}
	opts := make([]option, n)
	out := make([]*corev3.HeaderValueOption, n)
	for i := range opts {
		k, v := assertion.Header, d.Assertion
		if i < len(d.Headers) {
			k, v = d.Headers[i].Key, d.Headers[i].Value
		}
		o := &opts[i]
		o.val.Key, o.val.Value = k, v
		o.opt.Header = &o.val
		o.opt.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		out[i] = &o.opt
	}
	return out
}
