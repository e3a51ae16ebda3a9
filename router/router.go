// Package router serves one MCP Streamable HTTP endpoint that aggregates,
// prefixes, filters and forwards to the registered MCP servers.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/internal/lru"
	"github.com/mcp-authz/mcp-authz/internal/origin"
	"github.com/mcp-authz/mcp-authz/internal/resourcemeta"
	"github.com/mcp-authz/mcp-authz/internal/seal"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/mrtr"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/tasks"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Config configures the router. The zero value serves on 127.0.0.1:8081 and
// needs only an assertion key (AssertionKeyFile or AssertionKey).
type Config struct {
	// Listen is the address Start serves on; "" means 127.0.0.1:8081.
	Listen string `yaml:"listen" json:"listen"`
	// SessionKeyFiles hold the AES-256 keys that seal session ids, each 32
	// bytes raw or base64. The first seals; any opens, so keys rotate by
	// prepending a new one. Every replica serving the same clients needs the
	// same list. Empty: one random key per process (sessions do not survive a
	// restart nor span replicas).
	SessionKeyFiles []string `yaml:"sessionKeyFiles" json:"sessionKeyFiles"`
	// AssertionKeyFile holds the key that verifies the x-mcp-authz assertion
	// authz adds (Ed25519 PEM, private or public, or an HMAC-SHA256 secret).
	// One of it and Deps.AssertionKey is required.
	AssertionKeyFile string `yaml:"assertionKeyFile" json:"assertionKeyFile"`
	// InitTimeout bounds the initialize of each upstream; 0 means 5s.
	InitTimeout time.Duration `yaml:"initTimeout" json:"initTimeout"`
	// ListTimeout bounds fetching one server's list; 0 means 10s.
	ListTimeout time.Duration `yaml:"listTimeout" json:"listTimeout"`
	// CallTimeout bounds one forwarded call, streaming included; 0 means 5m.
	CallTimeout time.Duration `yaml:"callTimeout" json:"callTimeout"`
	// MaxInputRounds bounds the InputRequiredResults (MCP 2026-07-28,
	// SEP-2322) one call may get where the router bridges them between
	// revisions; past it the call fails with an error saying so. 0 means 10.
	MaxInputRounds int `yaml:"maxInputRounds" json:"maxInputRounds"`
	// InputTimeout bounds the wait for a client's input where the router
	// bridges input requests between revisions: a 2025 client's answers to
	// the requests the router sends it, and a 2026-07-28 client's retry of a
	// call it holds with a server of an earlier revision (then cancelled
	// upstream). 0 means 5m.
	InputTimeout time.Duration `yaml:"inputTimeout" json:"inputTimeout"`
	// ListRefresh is how long a server's cached list is served before it is
	// fetched again (list_changed refreshes it sooner), and the longest a
	// caller's tool definitions are used past their ttlMs for its calls'
	// Mcp-Param headers (catalog.Definition); 0 means 5m.
	ListRefresh time.Duration `yaml:"listRefresh" json:"listRefresh"`
	// SessionTTL is how long a session id stays valid after initialize;
	// 0 means 24h.
	SessionTTL time.Duration `yaml:"sessionTTL" json:"sessionTTL"`
	// MaxResponseBytes limits a non-streamed upstream answer and each event
	// of a streamed one; 0 means 4 MiB.
	MaxResponseBytes int64 `yaml:"maxResponseBytes" json:"maxResponseBytes"`
	// MaxListBytes bounds the JSON of one server's list of one kind (all
	// pages, as the client would see it); 0 means 8 MiB. MaxListItems bounds
	// its entries; 0 means 10,000. An upstream list past either is refused
	// whole, as a failed fetch: the server is left out of that list (counted
	// in mcp_authz_router_list_too_large_total and logged), never cut, and
	// the rest is not read. The defaults hold a hundred times a large MCP
	// server's tools (GitHub's has about 100, of some 1 KiB each) and a big
	// resource listing, while one upstream can make a replica hold at most
	// two pages (2 x MaxResponseBytes) beyond them.
	MaxListBytes int64 `yaml:"maxListBytes" json:"maxListBytes"`
	MaxListItems int   `yaml:"maxListItems" json:"maxListItems"`
	// MaxAggregateBytes and MaxAggregateItems bound one aggregated list
	// (all servers, before filtering); 0 means 32 MiB and 50,000. Past
	// either, whole servers are left out, those with the largest lists
	// first, until the rest fit (each counted and logged as above), so a
	// few large upstreams cannot push the others out. 32 MiB is four servers
	// at MaxListBytes, and what a client is sent at most per list page.
	MaxAggregateBytes int64 `yaml:"maxAggregateBytes" json:"maxAggregateBytes"`
	MaxAggregateItems int   `yaml:"maxAggregateItems" json:"maxAggregateItems"`
	// ListCacheBytes bounds the lists cached for all authorization contexts
	// together (their JSON plus a fixed overhead per entry and item); the
	// least recently used are forgotten first. 0 means 128 MiB.
	ListCacheBytes int64 `yaml:"listCacheBytes" json:"listCacheBytes"`
	// ResourceMetadata, when set, is served as RFC 9728 protected-resource
	// metadata at /.well-known/oauth-protected-resource and its form suffixed
	// with the resource's path, without an assertion: set it when Envoy or
	// Istio, not the built-in front, faces the clients. Default: not served.
	ResourceMetadata *resourcemeta.Metadata `yaml:"resourceMetadata,omitempty" json:"resourceMetadata,omitempty"`
	// PageSize is the number of items per page of an aggregated list; 0 means
	// everything in one page.
	PageSize int `yaml:"pageSize" json:"pageSize"`
	// CacheSize bounds the per-replica caches of upstream sessions opened
	// after initialize and of ended sessions; 0 means 10000.
	CacheSize int `yaml:"cacheSize" json:"cacheSize"`
	// MaxStreamsPerCaller bounds the streams one caller (issuer and subject
	// of authz's assertion) holds open on a replica at once: GET streams of
	// its sessions and subscriptions/listen streams together, each of which
	// holds a stream to every server the caller uses. One more is answered
	// 429 with a JSON-RPC error. Anonymous callers (identity off) are not
	// told apart, so the bound does not apply to them. 0 means 16.
	MaxStreamsPerCaller int `yaml:"maxStreamsPerCaller" json:"maxStreamsPerCaller"`
	// ShutdownTimeout bounds the drain of open requests when Start's context
	// ends; 0 means 10s.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout" json:"shutdownTimeout"`
	// AllowedOrigins and AllowedHosts protect the MCP endpoint against DNS
	// rebinding (see origin.Config), for a router reached without the
	// front or Envoy checking them: a request whose Origin is present and
	// not allowed, or whose Host is not listed when AllowedHosts is set, is
	// answered 403 with a JSON-RPC error. Default: loopback origins only,
	// any Host. Give the router the lists given to the front and authz.
	AllowedOrigins []string `yaml:"allowedOrigins" json:"allowedOrigins"`
	AllowedHosts   []string `yaml:"allowedHosts" json:"allowedHosts"`
}

// Deps are the router's runtime dependencies: what a configuration file
// cannot say.
type Deps struct {
	// Registry is the source of registered servers. Required.
	Registry Registry
	// Authorizer filters lists and obtains upstream credentials; nil: lists
	// are unfiltered and upstream calls carry no Authorization (the
	// caller's own is never passed on).
	Authorizer Authorizer
	// AssertionKey verifies the x-mcp-authz assertion when
	// Config.AssertionKeyFile is empty (authz and the router in one
	// process).
	AssertionKey assertion.Key
	// Transport reaches the upstream servers; nil means a clone of
	// http.DefaultTransport keeping more idle connections. Calls are bounded
	// by Config's timeouts; a server's redirect is never followed.
	Transport http.RoundTripper
	// Tracer makes the spans of each request and upstream call; nil makes
	// none.
	Tracer trace.TracerProvider
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Audit writes one audit event per completed upstream call; nil none.
	Audit *audit.Writer
	// Logger receives the router's logs; nil discards them.
	Logger *slog.Logger
}

// Registry is the source of registered servers.
type Registry interface {
	Load() *registry.Snapshot
	Changed() <-chan struct{}
}

// Authorizer is what the router asks of authz.
type Authorizer interface {
	// UpstreamAuthorization returns the Authorization header value for a
	// call the router makes itself to server on behalf of the caller: a
	// credential obtained for that server, never the caller's own; ""
	// sends no Authorization.
	UpstreamAuthorization(ctx context.Context, callerAuthorization, server string) (string, error)
	// Visible reports which targets the caller may use: every list entry
	// is one (a tool, a prompt, a resource, or a resource template whose
	// uriTemplate is its Resource), shown only if the request that uses it
	// (tools/call, prompts/get, resources/read) would be allowed. The
	// answer has one element per target; an error hides the whole list.
	Visible(ctx context.Context, callerAuthorization string, targets []policy.Target) ([]bool, error)
}

// Router is the aggregating MCP endpoint.
//
// It speaks raw JSON-RPC to the upstreams rather than through the go-sdk
// client: forwarding must stream each answer through as it comes (progress,
// elicitation, sampling) and send on upstream sessions it holds per client
// session and server, which the go-sdk client does not do.
//
// What is per replica and what is not: the sealed session id carries the
// caller and the client's capabilities and clientInfo, never an upstream
// session (none is opened at initialize, and one opened later cannot be
// written back into the client's id): each replica opens its own with a
// server on first use and caches it by (session, server) in a bounded LRU.
// A client's answer to a server request goes back only over such a session
// (forward.Forwarder.RelayResponse). Sessions, and everything a replica
// keeps for one (upstream sessions, calls in flight, GET streams), belong
// to the caller's (issuer, subject). A session ended with DELETE is refused by the
// replica that ended it, which closes its GET streams at once and never
// opens an upstream session for it again (its upstream sessions are gone
// everywhere); another replica refuses it only once SessionTTL has passed.
// A GET stream also ends when the session expires or the caller's token
// does. Request ids are compared by value (see idKey).
//
// Lists are cached per authorization context: per server and kind, per
// caller (issuer and subject from authz's assertion) and per credential the
// router sends that server for the caller (a SHA-256 of it; no token is
// kept), so an upstream that answers each caller differently never has one
// caller's entries served to another. A list is served for ListRefresh, or
// the upstream's ttlMs if shorter, never past the caller token's expiry (a
// context's own tool definitions are used for its calls' Mcp-Param headers
// past ttlMs, for ListRefresh at most); list_changed from a server drops
// every context's lists of it. Each list is then filtered per caller by
// Authorizer.Visible, every kind with the policy of the method that uses
// its entries. With no Authorizer, lists are not filtered.
type Router struct {
	cfg      Config
	reg      Registry
	auth     Authorizer
	tracer   trace.Tracer // nil when tracing is off
	log      *slog.Logger
	now      func() time.Time
	up       *upstream.Client
	answer   mcpparse.Options // how an upstream's messages are read
	verifier *assertion.Verifier
	sealer   *seal.Sealer                        // seals session ids (session.Seal), requestStates and task ids
	opened   *lru.Cache[string, *session.Record] // sealed session ids this replica opened -> the session
	cat      *catalog.Catalog
	pool     *pool.Pool                    // (session key, server) -> upstream session, opened on first use
	fwd      *forward.Forwarder            // forwards calls to one server
	ended    *lru.Cache[string, time.Time] // ended session ids -> their expiry
	levels   *lru.Cache[string, []byte]    // session key -> the params of its last logging/setLevel
	streams  *relay.Hub
	watcher  *relay.Watcher        // serves GET streams (notify.go)
	input    *mrtr.Table           // calls waiting for input (forward's mrtr.go)
	meta     *resourcemeta.Handler // protected-resource metadata, if served
	origins  *origin.Matcher
	metrics  *metrics
	params   *catalog.Params // Mcp-Param headers of the tools called: checked here, sent by fwd
	done     chan struct{}   // closed when shutdown starts: GET streams end
	held     callerStreams   // streams open per caller (MaxStreamsPerCaller)
	closed   atomic.Bool
	parsed   atomic.Int64 // client bodies decoded (parse), for tests

	// UpstreamFailures counts list fetches and initializes that failed.
	UpstreamFailures atomic.Int64
}

// New validates c and returns a Router. It starts nothing: Start (or Serve)
// serves and follows the registry until its context ends; a Router only
// used through Handler follows it with Watch.
func New(c Config, d Deps) (*Router, error) {
	if d.Registry == nil {
		return nil, errors.New("router: no registry")
	}
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	setDefaults(&c)
	key := d.AssertionKey
	if c.AssertionKeyFile != "" {
		k, err := assertion.LoadKey(c.AssertionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
		key = k
	}
	if key == nil {
		return nil, errors.New("router: an assertion key is required (assertionKeyFile)")
	}
	s, err := seal.Load(c.SessionKeyFiles)
	if err != nil {
		return nil, fmt.Errorf("router: session ids: %w", err)
	}
	if len(c.SessionKeyFiles) == 0 {
		logger.Warn("no sessionKeyFiles: session ids are sealed with a random key and valid only in this process")
	}
	var meta *resourcemeta.Handler
	if c.ResourceMetadata != nil {
		if meta, err = resourcemeta.New(*c.ResourceMetadata); err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
	}
	origins, err := origin.New(origin.Config{AllowedOrigins: c.AllowedOrigins, AllowedHosts: c.AllowedHosts})
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	transport := d.Transport
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 1024 // every session's calls go to few hosts
		t.MaxIdleConnsPerHost = 256
		transport = t
	}
	wrap, tracer := traceTransport(d.Tracer)
	r := &Router{
		cfg: c, reg: d.Registry, auth: d.Authorizer, log: logger, now: now, tracer: tracer,
		up:       upstream.New(upstream.Config{Transport: transport, WrapTransport: wrap, MaxResponseBytes: c.MaxResponseBytes, InitTimeout: c.InitTimeout}),
		answer:   upstream.AnswerOptions(c.MaxResponseBytes),
		verifier: assertion.NewVerifier(key),
		sealer:   s,
		opened:   lru.New[string, *session.Record](c.CacheSize),
		ended:    lru.New[string, time.Time](c.CacheSize),
		levels:   lru.New[string, []byte](c.CacheSize),
		streams:  relay.NewHub(),
		input:    mrtr.NewTable(c.InputTimeout, c.CacheSize),
		metrics:  newMetrics(),
		params:   &catalog.Params{},
		done:     make(chan struct{}),
		meta:     meta,
		origins:  origins,
	}
	taskIDs, err := tasks.New(c.CacheSize, s.AEADs())
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r.cat, err = catalog.New(catalog.Config{
		ListTimeout: c.ListTimeout, ListRefresh: c.ListRefresh,
		MaxListBytes: c.MaxListBytes, MaxListItems: c.MaxListItems,
		MaxAggregateBytes: c.MaxAggregateBytes, MaxAggregateItems: c.MaxAggregateItems,
		CacheBytes: c.ListCacheBytes, MaxResponseBytes: c.MaxResponseBytes, PageSize: c.PageSize, Now: now,
	}, catalog.Deps{Registry: d.Registry, Log: logger, Tracer: tracer, Source: lister{r}, Reporter: reporter{r}})
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r.watcher = &relay.Watcher{Up: r.up, Lists: r.cat, Answer: r.answer, MaxBytes: r.cfg.MaxResponseBytes, Done: r.done, Open: r.metrics.streams}
	r.pool, err = pool.New(pool.Config{Size: c.CacheSize, InitTimeout: c.InitTimeout, Now: now}, pool.Deps{
		Client: r.up, Log: logger, Opened: r.upstreamOpened, Failed: r.upstreamFailed,
		Ended: func(id string) bool { _, ended := r.ended.Get(id); return ended },
	})
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r.fwd = forward.New(forward.Config{
		CallTimeout: c.CallTimeout, InitTimeout: c.InitTimeout, ListTimeout: c.ListTimeout, InputTimeout: c.InputTimeout,
		MaxInputRounds: c.MaxInputRounds, MaxResponseBytes: c.MaxResponseBytes, SessionTTL: c.SessionTTL,
	}, forward.Deps{
		Registry: d.Registry, Authorizer: d.Authorizer, Upstream: r.up, Answer: r.answer, Sealer: s,
		Catalog: r.cat, Params: r.params, Pool: r.pool, Streams: r.streams, Tasks: taskIDs, Input: r.input,
		Audit: d.Audit, Tracer: tracer, Log: logger, Now: now, Failed: r.upstreamFailed,
	})
	return r, nil
}

func setDefaults(c *Config) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.InitTimeout, 5*time.Second)
	def(&c.ListTimeout, 10*time.Second)
	def(&c.CallTimeout, 5*time.Minute)
	def(&c.ListRefresh, 5*time.Minute)
	def(&c.SessionTTL, 24*time.Hour)
	def(&c.ShutdownTimeout, 10*time.Second)
	def(&c.InputTimeout, 5*time.Minute)
	if c.MaxInputRounds <= 0 {
		c.MaxInputRounds = 10
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8081"
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = 4 << 20
	}
	defInt64 := func(d *int64, v int64) {
		if *d == 0 {
			*d = v
		}
	}
	defInt64(&c.MaxListBytes, 8<<20)
	defInt64(&c.MaxAggregateBytes, 32<<20)
	defInt64(&c.ListCacheBytes, 128<<20)
	if c.MaxListItems == 0 {
		c.MaxListItems = 10_000
	}
	if c.MaxAggregateItems == 0 {
		c.MaxAggregateItems = 50_000
	}
	if c.CacheSize <= 0 {
		c.CacheSize = 10000
	}
	if c.MaxStreamsPerCaller == 0 {
		c.MaxStreamsPerCaller = 16
	}
}

// Handler serves the MCP endpoint at /mcp.
func (r *Router) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", r.serveMCP)
	if r.meta != nil {
		// Public by RFC 9728: clients read it after a 401, before they
		// hold a token, so it needs no assertion.
		mux.HandleFunc("/.well-known/oauth-protected-resource/", r.serveMeta)
		mux.HandleFunc("/.well-known/oauth-protected-resource", r.serveMeta)
	}
	return mux
}

func (r *Router) serveMeta(w http.ResponseWriter, req *http.Request) {
	if !r.meta.Serves(req.URL.Path) {
		http.NotFound(w, req)
		return
	}
	r.meta.ServeHTTP(w, req)
}

// Start serves on Listen, and follows the registry (Watch), until ctx ends,
// then stops taking requests, ends the GET streams and drains the calls in
// flight for up to ShutdownTimeout.
func (r *Router) Start(ctx context.Context) error {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("router: listen: %w", err)
	}
	return r.Serve(ctx, ln)
}

// Serve is Start on a listener of the caller's.
func (r *Router) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(r.Close)
	go r.Watch(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	r.log.Info("router listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("router: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("router: shutdown: %w", err)
	}
	return nil
}

// Close ends the GET streams, Watch and the calls held for a client's
// input; calls in flight continue. Start calls it when its context ends.
func (r *Router) Close() {
	if r.closed.CompareAndSwap(false, true) {
		close(r.done)
		r.input.EndAll()
	}
}
