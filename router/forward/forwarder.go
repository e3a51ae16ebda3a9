// Package forward serves one client request that goes to one upstream
// server: it picks the credential, sends the request on the caller's
// upstream session, and relays or streams the answer back, bridging input
// requests (multi round-trip requests) and task ids between the client and
// the server. It also passes the requests that reach every server of a
// session (NotifyAll, ListTasks) and makes the per-server policy decisions
// they and the router's fan-outs need (FanOut, UpdateAllowed).
package forward

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/internal/seal"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/mrtr"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/tasks"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Config are the router's limits a forwarded call keeps to, with the
// router's defaults already applied (router.Config documents each).
type Config struct {
	CallTimeout      time.Duration
	InitTimeout      time.Duration
	ListTimeout      time.Duration
	InputTimeout     time.Duration
	MaxInputRounds   int
	MaxResponseBytes int64
	SessionTTL       time.Duration
}

// Registry is the source of registered servers.
type Registry interface {
	Load() *registry.Snapshot
}

// Authorizer obtains upstream credentials and decides what a caller may
// see (router.Authorizer documents both).
type Authorizer interface {
	UpstreamAuthorization(ctx context.Context, callerAuthorization, server string) (string, error)
	Visible(ctx context.Context, callerAuthorization string, targets []policy.Target) ([]bool, error)
}

// Deps are what a Forwarder shares with the rest of the router. All are
// required but Authorizer, Params, Audit and Tracer.
type Deps struct {
	Registry   Registry
	Authorizer Authorizer // nil: no upstream credentials, nothing filtered
	Upstream   *upstream.Client
	Answer     mcpparse.Options // how an upstream's messages are read
	Sealer     *seal.Sealer
	Catalog    *catalog.Catalog
	Params     *catalog.Params // Mcp-Param headers, shared with the router's check; nil: its own
	Pool       *pool.Pool
	Streams    *relay.Hub
	Tasks      *tasks.Table
	Input      *mrtr.Table
	Audit      *audit.Writer // nil: no audit trail
	Tracer     trace.Tracer  // nil: no spans
	Log        *slog.Logger
	Now        func() time.Time
	// Failed counts and logs an upstream failure (server, operation).
	Failed func(srv *registry.Server, op string, err error)
}

// Forwarder forwards calls to the upstream servers.
type Forwarder struct {
	cfg     Config
	audit   *audit.Writer // nil: no audit trail
	reg     Registry
	auth    Authorizer
	tracer  trace.Tracer // nil when tracing is off
	log     *slog.Logger
	now     func() time.Time
	up      *upstream.Client
	answer  mcpparse.Options
	sealer  *seal.Sealer
	cat     *catalog.Catalog
	params  *catalog.Params
	pool    *pool.Pool // (session key, server) -> upstream session, opened on first use
	streams *relay.Hub
	tasks   *tasks.Table // the task ids of this replica's callers (tasks.go)
	input   *mrtr.Table  // calls waiting for input (mrtr.go)
	failed  func(srv *registry.Server, op string, err error)

	// inflight maps (session key, value of the request id) of forwarded
	// calls to their server and the cancel of their context, so that the
	// client's notifications/cancelled reaches the server and ends the call.
	mu       sync.Mutex
	inflight map[callKey]inflightCall
	// nextID numbers the ids the router gives requests it sends on an
	// upstream session that several of a caller's requests share (ownID).
	nextID atomic.Uint64
}

// New returns a Forwarder of c and d.
func New(c Config, d Deps) *Forwarder {
	if d.Params == nil {
		d.Params = &catalog.Params{}
	}
	return &Forwarder{
		cfg: c, audit: d.Audit, reg: d.Registry, auth: d.Authorizer, tracer: d.Tracer, log: d.Log, now: d.Now,
		up: d.Upstream, answer: d.Answer, sealer: d.Sealer, cat: d.Catalog, params: d.Params, pool: d.Pool, streams: d.Streams,
		tasks: d.Tasks, input: d.Input, failed: d.Failed,
		inflight: map[callKey]inflightCall{},
	}
}

// inflightCall is a forwarded call in flight.
type inflightCall struct {
	srv    *registry.Server
	cancel context.CancelFunc // its context's
}

// InFlight is the number of forwarded calls in flight.
func (fw *Forwarder) InFlight() int {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return len(fw.inflight)
}

// UpstreamAuth is the Authorization for a call the router makes itself to
// server: what the Authorizer obtained for that server, or "" (none). The
// caller's own token is never sent upstream: without an Authorizer, or when
// it answers with the caller's token, upstream calls carry no Authorization.
func (fw *Forwarder) UpstreamAuth(ctx context.Context, callerAuth, server string) (string, error) {
	if fw.auth == nil {
		return "", nil
	}
	a, err := fw.auth.UpstreamAuthorization(ctx, callerAuth, server)
	if err != nil {
		return "", err
	}
	if a == callerAuth {
		// An Authorizer that passes the caller's token through (no
		// exchange): it is still never sent upstream.
		return "", nil
	}
	return a, nil
}
