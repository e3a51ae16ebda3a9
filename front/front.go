// Package front is the built-in front that stands in for Envoy's ext_authz filter.
package front

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/internal/origin"
	"github.com/mcp-authz/mcp-authz/internal/resourcemeta"
)

// Each request is turned into an envoy.service.auth.v3.CheckRequest the way
// Envoy's ext_authz HTTP filter builds it with with_request_body set, sent to
// the authz server over gRPC, and the CheckResponse is applied the way Envoy
// applies it before the request is reverse-proxied to the upstream. The
// Envoy documentation each behaviour follows is cited beside the code; the
// versioned pages (v1.40, matching go-control-plane v1.40) are listed below.
// When authz runs in the same process (Deps.Authz), the front hands it the
// authz.Request authz/envoy would make of that CheckRequest and applies the
// Decision as it would apply authz/envoy's CheckResponse (decide.go), with
// neither message built. The pages:
//
//   - filter: https://www.envoyproxy.io/docs/envoy/v1.40.0/configuration/http/http_filters/ext_authz_filter
//   - filter API: https://www.envoyproxy.io/docs/envoy/v1.40.0/api-v3/extensions/filters/http/ext_authz/v3/ext_authz.proto
//   - CheckRequest: https://www.envoyproxy.io/docs/envoy/v1.40.0/api-v3/service/auth/v3/attribute_context.proto
//   - CheckResponse: https://www.envoyproxy.io/docs/envoy/v1.40.0/api-v3/service/auth/v3/external_auth.proto
//   - HeaderValueOption: https://www.envoyproxy.io/docs/envoy/v1.40.0/api-v3/config/core/v3/base.proto#config-core-v3-headervalueoption
//   - connection manager headers: https://www.envoyproxy.io/docs/envoy/v1.40.0/configuration/http/http_conn_man/headers

// Defaults applied by New to zero Config fields.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultAuthz           = "127.0.0.1:9001"
	DefaultMaxRequestBytes = 1 << 20
	DefaultTimeout         = time.Second
	DefaultStatusOnError   = http.StatusServiceUnavailable
)

// DefaultBodyTimeout is the default of Config.BodyTimeout.
const DefaultBodyTimeout = 30 * time.Second

// Config configures the front. Every field has a meaningful zero value except
// Upstream, which is required.
type Config struct {
	// Listen is the address the front listens on. Default 127.0.0.1:8080.
	Listen string `yaml:"listen" json:"listen"`

	// Upstream is the absolute http(s) URL requests are proxied to once
	// allowed: the router, or a single MCP server. Its path, if any, is
	// prepended to the request path. Required.
	Upstream string `yaml:"upstream" json:"upstream"`

	// Authz is the gRPC address of the ext_authz server. The front itself does
	// not dial it (the caller passes a Checker, or the authz server itself,
	// in Deps); it is read by the binary's wiring, which calls authz in
	// process (Deps.Authz: no gRPC, no CheckRequest) when authz runs in the
	// same process and Authz is empty or names its listen address. Default:
	// authz.listen, else 127.0.0.1:9001.
	Authz string `yaml:"authz" json:"authz"`

	// MaxRequestBytes is Envoy's with_request_body.max_request_bytes: how much
	// of the body is buffered and sent in the CheckRequest. Default 1 MiB.
	MaxRequestBytes int64 `yaml:"maxRequestBytes" json:"maxRequestBytes"`

	// AllowPartialMessage is Envoy's with_request_body.allow_partial_message.
	// False (default, as in Envoy): a body over MaxRequestBytes is answered
	// 413 and never checked nor forwarded. True: the first MaxRequestBytes are
	// checked with the header x-envoy-auth-partial-body: true, and the whole
	// body is forwarded if allowed.
	AllowPartialMessage bool `yaml:"allowPartialMessage" json:"allowPartialMessage"`

	// PackAsBytes is Envoy's with_request_body.pack_as_bytes: the body goes
	// in attributes.request.http.raw_body instead of body. Default false.
	PackAsBytes bool `yaml:"packAsBytes" json:"packAsBytes"`

	// EncodeRawHeaders is Envoy's encode_raw_headers: request headers go in
	// http.header_map, one entry per value, instead of the http.headers map.
	// Default false, as in Envoy.
	EncodeRawHeaders bool `yaml:"encodeRawHeaders" json:"encodeRawHeaders"`

	// ContextExtensions is Envoy's per-route check_settings.context_extensions,
	// sent unchanged in every CheckRequest (e.g. mcp-server: ns/name for
	// per-server attachment). Default none.
	ContextExtensions map[string]string `yaml:"contextExtensions" json:"contextExtensions"`

	// Timeout bounds each Check call (Envoy's grpc_service.timeout). Default
	// 1s. Envoy's own default is 200ms; authz may have to reach the identity
	// provider and the token service on a cache miss, so the front allows
	// more; Envoy configurations for mcp-authz should set the same 1s.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`

	// StatusOnError is the status answered when authz cannot be reached, fails
	// or times out (Envoy's status_on_error). Default 503. Envoy's own default
	// is 403, but "forbidden" would tell an MCP client to stop or re-authorize
	// when the fault is ours and passing: 503 says "retry later", as authz
	// does itself when the identity provider is down; Envoy configurations
	// for mcp-authz should set status_on_error to 503 too. Requests are never
	// forwarded on error (Envoy's failure_mode_allow is always false here).
	// Must be 400-599.
	StatusOnError int `yaml:"statusOnError" json:"statusOnError"`

	// BodyTimeout bounds how long a client may take to send the part of the
	// body that is buffered for the check (Envoy's stream idle timeout plays
	// this role); a slower client gets 408 and holds nothing longer. Default
	// 30s.
	BodyTimeout time.Duration `yaml:"bodyTimeout" json:"bodyTimeout"`

	// AutoHostRewrite sends the upstream's host in the Host header (Envoy's
	// route auto_host_rewrite). Default false: the client's Host is kept, as
	// Envoy keeps :authority by default.
	AutoHostRewrite bool `yaml:"autoHostRewrite" json:"autoHostRewrite"`

	// ResourceMetadata, when set, is served as RFC 9728 protected-resource
	// metadata by the front itself, without authz. Default: not served (those
	// paths then go through authz to the upstream like any other).
	ResourceMetadata *ResourceMetadata `yaml:"resourceMetadata,omitempty" json:"resourceMetadata,omitempty"`

	// AllowedOrigins and AllowedHosts protect against DNS rebinding (see
	// origin.Config): a request whose Origin is present and not allowed, or
	// whose Host is not listed when AllowedHosts is set, is answered 403
	// with a JSON-RPC error before it is checked or forwarded (the
	// protected-resource metadata excepted: it is public). Default:
	// loopback origins only (make run, the quick start), any Host. authz
	// and the router check the same with their own lists.
	AllowedOrigins []string `yaml:"allowedOrigins" json:"allowedOrigins"`
	AllowedHosts   []string `yaml:"allowedHosts" json:"allowedHosts"`
}

// origins is c's Origin and Host allowlist.
func (c Config) origins() origin.Config {
	return origin.Config{AllowedOrigins: c.AllowedOrigins, AllowedHosts: c.AllowedHosts}
}

// Validate reports every problem of c, each an *field.Error whose path is
// the field's YAML key ("upstream", "resourceMetadata.resource").
func (c Config) Validate() error {
	var errs []error
	add := func(path, format string, a ...any) { errs = append(errs, field.Errorf(path, format, a...)) }
	if c.Upstream == "" {
		add("upstream", "required")
	} else if u, err := url.Parse(c.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		// The URL is not quoted: it could carry credentials.
		add("upstream", "want an absolute http(s) URL without query, fragment or user")
	}
	if c.MaxRequestBytes < 0 {
		add("maxRequestBytes", "must not be negative, is %d", c.MaxRequestBytes)
	}
	if c.Timeout < 0 {
		add("timeout", "must not be negative, is %s", c.Timeout)
	}
	if c.BodyTimeout < 0 {
		add("bodyTimeout", "must not be negative, is %s", c.BodyTimeout)
	}
	if c.StatusOnError != 0 && (c.StatusOnError < 400 || c.StatusOnError > 599) {
		add("statusOnError", "want 400-599, not %d", c.StatusOnError)
	}
	if c.ResourceMetadata != nil {
		errs = append(errs, field.Under("resourceMetadata", c.ResourceMetadata.Validate()))
	}
	errs = append(errs, c.origins().Validate())
	return errors.Join(errs...)
}

// Checker answers a CheckRequest: authz in the same process (authz/envoy's
// *envoy.Server is one), or authz over gRPC (GRPC). An error, or no answer,
// is never an allow: the request is answered Config.StatusOnError.
type Checker interface {
	Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error)
}

// GRPC is a Checker that sends each check over gRPC through c, as Envoy does.
func GRPC(c authv3.AuthorizationClient) Checker { return grpcChecker{c} }

type grpcChecker struct{ c authv3.AuthorizationClient }

func (g grpcChecker) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return g.c.Check(ctx, req)
}

// Deps are the front's runtime dependencies: what a configuration file
// cannot say.
type Deps struct {
	// Checker answers each check over the Envoy API. Required unless Authz
	// is set; New refuses both.
	Checker Checker
	// Authz, when set, decides each request in this process instead of
	// Checker: the front hands it the authz.Request that authz/envoy would
	// make of the CheckRequest, and applies the Decision as it applies the
	// CheckResponse authz/envoy would make of it, without building either.
	Authz *authz.Server
	// Upstream, when set, serves the allowed requests in this process
	// instead of Config.Upstream over HTTP: the router's Handler when the
	// router runs in the same process. Each request reaches it as the
	// reverse proxy would send it (hop-by-hop and X-Forwarded-Host headers
	// dropped, Host kept unless AutoHostRewrite, the OK answer's response
	// headers added to its answer), and only after an OK answer, exactly as
	// over HTTP. Config.Upstream must then have no path (it is still
	// validated and names the upstream's host for AutoHostRewrite).
	Upstream http.Handler
	// Logger receives the front's logs; nil discards them.
	Logger *slog.Logger
	// Tracer makes a server span of each request, the parent of the check
	// and of the forwarded request; nil makes none.
	Tracer trace.TracerProvider
	// Now is the clock (request.time). Default time.Now.
	Now func() time.Time
}

// Front is the built-in front: build the CheckRequest, call authz, apply the answer,
// proxy. It is safe for concurrent use.
type Front struct {
	cfg      Config
	checker  Checker
	authz    *authz.Server // Deps.Authz
	log      *slog.Logger
	now      func() time.Time
	tracer   trace.TracerProvider
	upstream *url.URL
	proxy    *httputil.ReverseProxy // nil when inproc serves
	inproc   http.Handler           // Deps.Upstream
	meta     *resourcemeta.Handler
	origins  *origin.Matcher

	shutdownGrace time.Duration // how long Start waits for open requests
}

// New validates c, applies its defaults and returns a front that sends its
// checks to d.Checker. It starts nothing: Start serves.
func New(c Config, d Deps) (*Front, error) {
	if d.Checker == nil && d.Authz == nil {
		return nil, errors.New("front: no authz checker")
	}
	if d.Checker != nil && d.Authz != nil {
		return nil, errors.New("front: both an authz checker and an in-process authz: set one")
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Authz == "" {
		c.Authz = DefaultAuthz
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("front: %w", err)
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.StatusOnError == 0 {
		c.StatusOnError = DefaultStatusOnError
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	u, _ := url.Parse(c.Upstream) // Validate parsed it
	if d.Upstream != nil && u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("front: upstream %s: an upstream served in process takes no path", u.Redacted())
	}
	origins, err := origin.New(c.origins())
	if err != nil {
		return nil, fmt.Errorf("front: %w", err)
	}
	g := &Front{
		cfg: c, checker: d.Checker, authz: d.Authz, log: logger, now: now, tracer: d.Tracer, upstream: u, inproc: d.Upstream,
		origins: origins, shutdownGrace: 5 * time.Second,
	}
	if c.ResourceMetadata != nil {
		m, err := resourcemeta.New(*c.ResourceMetadata)
		if err != nil {
			return nil, err
		}
		g.meta = m
	}
	if g.inproc == nil {
		g.proxy = g.newProxy()
	}
	return g, nil
}

// Handler returns the front's HTTP handler. Paths are not cleaned nor
// redirected (unlike http.ServeMux): as in Envoy, the request target reaches
// authz and the upstream as the client sent it.
func (g *Front) Handler() http.Handler { return traced(http.HandlerFunc(g.route), g.tracer) }

// route serves the protected-resource metadata itself and sends everything
// else through the check.
func (g *Front) route(w http.ResponseWriter, r *http.Request) {
	if g.meta != nil && g.meta.Serves(r.URL.Path) {
		g.meta.ServeHTTP(w, r)
		return
	}
	o := r.Header.Values("Origin")
	if err := g.origins.Check(strings.Join(o, ","), len(o) > 0, r.Host); err != nil {
		w.Header().Set("Content-Type", "application/json")
		localReply(w, http.StatusForbidden, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"`+err.Error()+`"}}`, nil)
		return
	}
	g.serve(w, r)
}

// Start listens on Config.Listen and serves until ctx ends, then shuts down
// gracefully (open streams get a few seconds to finish, then are closed).
func (g *Front) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("front: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           g.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	g.log.Info("front listening", "addr", ln.Addr().String(), "upstream", g.upstream.Redacted())
	select {
	case err := <-errc:
		return fmt.Errorf("front: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Long-lived SSE streams do not end on their own: cut them.
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("front: serve: %w", err)
	}
	return nil
}

// ResourceMetadata is the RFC 9728 protected-resource metadata the front
// serves, without authz (see resourcemeta.Metadata).
type ResourceMetadata = resourcemeta.Metadata
