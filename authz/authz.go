// Package authz decides every MCP request: who calls, which server and tool
// they want, and whether they may (Server.Decide, over plain Go types, with
// no transport). Package authz/envoy serves those decisions as an Envoy
// external-authorization server (envoy.service.auth.v3.Authorization).
package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/authz/telemetry"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/internal/expiry"
	"github.com/mcp-authz/mcp-authz/internal/origin"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// Config configures the decisions and their ext_authz server. The zero
// value listens on 127.0.0.1:9001 and accepts bodies of up to 1 MiB.
type Config struct {
	// Listen is the gRPC address of the ext_authz server (authz/envoy).
	// Default 127.0.0.1:9001.
	Listen string `yaml:"listen" json:"listen"`
	// MaxBodyBytes is the largest request body that is parsed. A larger body,
	// or one that Envoy cut (x-envoy-auth-partial-body), is denied with 413.
	// Set Envoy's with_request_body.max_request_bytes to at least this.
	// Default 1 MiB.
	MaxBodyBytes int `yaml:"maxBodyBytes" json:"maxBodyBytes"`
	// AllowBatch admits JSON-RPC batches, which only MCP 2025-03-26 clients
	// send. Every element is checked and the strictest answer wins; the
	// elements may target one server at most. Default false: a batch is
	// denied with 400.
	AllowBatch bool `yaml:"allowBatch" json:"allowBatch"`
	// ResourceMetadataURL is the RFC 9728 protected-resource metadata URL named
	// in WWW-Authenticate. Empty: derived from each request as
	// <scheme>://<host>/.well-known/oauth-protected-resource<path>.
	ResourceMetadataURL string `yaml:"resourceMetadataURL" json:"resourceMetadataURL"`
	// AssertionKeyFile holds the key that signs the x-mcp-authz assertion
	// the router requires (Ed25519 PEM or >= 32 bytes for HMAC-SHA256).
	// Empty: the assertion is signed with the key given to New, if any (one
	// process), else not added.
	AssertionKeyFile string `yaml:"assertionKeyFile" json:"assertionKeyFile"`
	// DecisionLogEvery logs one in this many allowed decisions; denials are
	// always logged. 0 or 1 logs every decision.
	DecisionLogEvery int `yaml:"decisionLogEvery" json:"decisionLogEvery"`
	// AllowedOrigins and AllowedHosts protect against DNS rebinding (see
	// origin.Config): a request whose Origin is present and not allowed, or
	// whose Host is not listed when AllowedHosts is set, is denied 403
	// (origin_denied, host_denied) before anything else. Default: loopback
	// origins only, any Host. Behind Istio or Envoy, Envoy is the front
	// and this is where the check happens: list the origins of the browser
	// clients allowed (non-browser clients send no Origin) and the
	// gateway's host names.
	AllowedOrigins []string `yaml:"allowedOrigins" json:"allowedOrigins"`
	AllowedHosts   []string `yaml:"allowedHosts" json:"allowedHosts"`
	// Scopes are named in the scope parameter of the 401 challenge: the
	// scopes a client should ask for (MCP authorization). offline_access
	// is refused: it is never advertised. Empty: no scope parameter.
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
}

// origins is c's Origin and Host allowlist.
func (c Config) origins() origin.Config {
	return origin.Config{AllowedOrigins: c.AllowedOrigins, AllowedHosts: c.AllowedHosts}
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9001"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
}

// Verifier validates a caller's bearer token (identity.Verifier).
type Verifier interface {
	Verify(ctx context.Context, raw string) (*identity.Identity, error)
}

// Exchanger trades a caller's token for one minted for a server
// (exchange.Client).
type Exchanger interface {
	Exchange(ctx context.Context, r exchange.Request) (*exchange.Token, error)
}

// Decider evaluates the tool-access policy (policy.Engine).
type Decider interface {
	Decide(ctx context.Context, in *policy.Input) policy.Decision
	Filter(ctx context.Context, in *policy.Input, targets []policy.Target) []bool
}

// Deps are the parts a Server composes. Registry and Policy are required;
// a nil Verifier admits anonymous callers and a nil Exchanger exchanges
// nothing: no upstream then gets an Authorization from authz, and the
// caller's own goes no further than the router (see ContextExtensionServer).
type Deps struct {
	Registry  *registry.Registry
	Verifier  Verifier
	Exchanger Exchanger
	Policy    Decider
	// Signer signs the x-mcp-authz assertion; nil adds none.
	Signer *assertion.Signer
	Logger *slog.Logger
	// Metrics registers the server's collectors; nil keeps them private.
	Metrics prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Audit writes one audit event per decision; nil writes none.
	Audit *audit.Writer
	// Tracer makes the spans of each decision; nil makes none.
	Tracer trace.TracerProvider
}

// Server decides MCP requests (Decide, served to Envoy by authz/envoy) and
// answers the router (UpstreamAuthorization, Visible).
type Server struct {
	cfg     Config
	reg     *registry.Registry
	verify  Verifier
	xchg    Exchanger
	policy  Decider
	signer  *assertion.Signer
	now     func() time.Time
	metrics *telemetry.Recorder
	seen    *expiry.Cache[[]bool] // Visible's answers
	origins *origin.Matcher
	audit   *audit.Writer
	tracer  trace.Tracer // nil when tracing is off
}

// New returns a Server. It validates the configuration once.
func New(c Config, d Deps) (*Server, error) {
	c.setDefaults()
	if d.Registry == nil {
		return nil, errors.New("authz: a registry is required")
	}
	if d.Policy == nil {
		return nil, errors.New("authz: a policy is required")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	m, err := telemetry.NewRecorder(d.Metrics, d.Logger, c.DecisionLogEvery)
	if err != nil {
		return nil, err
	}
	origins, err := origin.New(c.origins())
	if err != nil {
		return nil, fmt.Errorf("authz: %w", err)
	}
	d, tracer := traced(d)
	return &Server{
		tracer:  tracer,
		origins: origins,
		cfg:     c,
		reg:     d.Registry,
		verify:  d.Verifier,
		xchg:    d.Exchanger,
		policy:  d.Policy,
		signer:  d.Signer,
		now:     d.Now,
		metrics: m,
		seen:    expiry.New[[]bool](4096),
		audit:   d.Audit,
	}, nil
}
