// Package listen serves subscriptions/listen (MCP 2026-07-28): the one
// stream that merges, for one caller, the notifications of every
// registered server.
package listen

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// MaxURIs bounds the resource subscriptions of one subscriptions/listen
// (authz refuses more too).
const MaxURIs = 100

// MetaSubscriptionID is the _meta key naming the listen request a message
// of its stream belongs to.
const MetaSubscriptionID = "io.modelcontextprotocol/subscriptionId"

// ErrInvalidParams is Open's answer to a filter that is not what the
// revision defines.
var ErrInvalidParams = errors.New("listen: invalid params.notifications")

// RefusedError is Open's answer to a resource subscription whose URI no
// server has or the caller may not read (the same refusal for both).
type RefusedError struct {
	URI string // the first URI refused
}

func (e *RefusedError) Error() string { return "listen: resource subscription refused: " + e.URI }

// listKinds are the list_changed notifications, in the order of the
// notifications filter's flags (flags).
var (
	listKinds = [3]string{"notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed"}
	flags     = [3]string{"toolsListChanged", "promptsListChanged", "resourcesListChanged"}
)

// Router is what a listen needs of the router, bound to the caller whose
// listen it is.
type Router interface {
	// Owner is the server of a resource URI, found as resources/read finds it.
	Owner(uri string) (*registry.Server, bool)
	// FanOut is the registered servers the policy allows method on for
	// the caller (none when it cannot say).
	FanOut(ctx context.Context, method string) []registry.Server
	// UpdateAllowed reports whether notifications/resources/updated m of
	// srv may reach the caller.
	UpdateAllowed(ctx context.Context, srv *registry.Server, m *mcpparse.Message) bool
	// UpstreamAuth is the Authorization of a call the router makes itself
	// to server for the caller ("" sends none).
	UpstreamAuth(ctx context.Context, server string) (string, error)
	// Failed counts and logs a failed operation with srv.
	Failed(srv *registry.Server, op string, err error)
}

// Registry is the registered servers.
type Registry interface {
	Load() *registry.Snapshot
	Changed() <-chan struct{}
}

// Authorizer decides what the caller may use (the router's Authorizer).
type Authorizer interface {
	Visible(ctx context.Context, callerAuthorization string, targets []policy.Target) ([]bool, error)
}

// Config is one listen request and what serving it takes. Every field but
// Auth and Expiry must be set.
type Config struct {
	Router   Router
	Registry Registry
	// Auth decides the caller's resource subscriptions; nil: every one
	// is allowed.
	Auth Authorizer
	// CallerAuth is the Authorization the caller's request carried, as
	// Auth knows the caller by it. It never goes upstream.
	CallerAuth string

	Upstream *upstream.Client
	Pool     *pool.Pool       // which servers are of the stateless revision; ends sessions
	Catalog  *catalog.Catalog // invalidated on a server's list_changed
	Streams  *relay.Hub       // registry changes reach the stream through it
	// Sessions counts the upstream sessions opened; Withheld the
	// resources/updated kept from the stream, by server and reason.
	Sessions prometheus.Counter
	Withheld *prometheus.CounterVec

	Request mcpparse.Options // how the client's params are read
	Answer  mcpparse.Options // how an upstream's messages are read
	// InitTimeout bounds the wait for the servers' listens before the
	// acknowledgment, and the deletion of an upstream session.
	InitTimeout time.Duration
	// MaxResponseBytes bounds one message of an upstream stream.
	MaxResponseBytes int64
	KeepAlive        time.Duration // between SSE comments on a quiet stream
	Now              func() time.Time
	Done             <-chan struct{} // closed when the router shuts down
	Key              string          // the stream's name in Streams, unique

	ID      json.RawMessage // the listen request's id, as the client sent it
	Expiry  time.Time       // the caller's token's; zero: none
	Version string          // the revision sessions with earlier servers are opened in
	Caps    json.RawMessage // the client's capabilities
	Info    json.RawMessage // the client's clientInfo
}

// Stream is one client's subscriptions/listen: one SSE stream merging
// the notifications of every registered server. A server of the stateless
// revision gets a subscriptions/listen of its own; a server of an earlier
// one gets a session of this listen's own (initialize, its GET stream,
// resources/subscribe for each of its URIs), deleted when the listen
// ends. What reaches the client is rebuilt: list_changed of the kinds the
// client asked for, and resources/updated of the URIs it subscribed to
// while the policy still lets the caller read them (the others are
// withheld and counted); nothing else of an upstream stream (progress,
// logs, requests, its own _meta) passes.
type Stream struct {
	cfg    *Config
	kinds  [3]bool
	uris   []string          // subscribed, in the client's order
	owner  map[string]string // subscribed URI -> its server
	events chan []byte       // rebuilt notifications for the client
	wg     sync.WaitGroup    // the upstream listens running
}

// Open reads a listen's params: a filter that is not what the revision
// defines is ErrInvalidParams; a resource subscription naming a URI no
// server has or the caller may not read is a *RefusedError. Nothing opens
// upstream before Serve.
func Open(ctx context.Context, cfg *Config, params json.RawMessage) (*Stream, error) {
	s := &Stream{cfg: cfg, owner: map[string]string{}, events: make(chan []byte, 64)}
	if !s.parse(params) {
		return nil, ErrInvalidParams
	}
	if uri, ok := s.route(ctx); !ok {
		return nil, &RefusedError{URI: uri}
	}
	return s, nil
}

// Serve streams the listen to w until the client closes it (ctx ends;
// every upstream listen, stream and session of it is closed and awaited),
// the caller's token expires or the router shuts down (both with the
// graceful-closure result). A server that fails is opened again with a
// growing pause, on its own: the stream and the other servers go on.
func (s *Stream) Serve(ctx context.Context, w http.ResponseWriter) {
	cfg := s.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.wg.Wait()
	}()
	// Registry changes reach the client as list_changed (the router's
	// watchRegistry), and servers registered later are listened to as well.
	st := relay.NewStream(cfg.Key)
	cfg.Streams.Add(st)
	defer cfg.Streams.Remove(st)
	changed := cfg.Registry.Changed()
	started := map[string]context.CancelFunc{}
	ready := make(chan struct{}, len(cfg.Registry.Load().Servers())+1)
	n := s.sync(ctx, started, ready)
	// The acknowledgment says the stream is on: it waits (a bounded time)
	// until each server's listen is open or has failed once.
	wait := time.NewTimer(cfg.InitTimeout)
wait:
	for ; n > 0; n-- {
		select {
		case <-ready:
		case <-wait.C:
			break wait
		case <-ctx.Done():
			wait.Stop()
			return
		}
	}
	wait.Stop()
	var expired <-chan time.Time
	if e := cfg.Expiry; !e.IsZero() {
		t := time.NewTimer(e.Sub(cfg.Now()))
		defer t.Stop()
		expired = t.C
	}
	sw := relay.Start(w, "")
	if err := sw.Event(s.ack()); err != nil {
		return
	}
	if !s.kinds[0] && !s.kinds[1] && !s.kinds[2] && len(s.uris) == 0 {
		_ = sw.Event(s.complete()) // nothing to listen for
		return
	}
	tick := time.NewTicker(cfg.KeepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-cfg.Done:
			_ = sw.Event(s.complete())
			return
		case <-expired:
			_ = sw.Event(s.complete())
			return
		case <-changed:
			changed = cfg.Registry.Changed()
			s.sync(ctx, started, nil)
		case ev := <-st.Events:
			if k := listKind(ev, cfg.Answer); k >= 0 && s.kinds[k] {
				err = sw.Event(s.notification(listKinds[k], ""))
			}
		case ev := <-s.events:
			err = sw.Event(ev)
		case <-tick.C:
			err = sw.Comment("keep-alive")
		}
		if err != nil {
			return
		}
	}
}

// parse reads params.notifications; it reports false for anything the
// revision does not define: a missing filter, a flag that is not a boolean,
// subscriptions that are not up to MaxURIs non-empty strings.
// Repeated URIs count once.
func (s *Stream) parse(params json.RawMessage) bool {
	if params == nil {
		return false
	}
	// As strict as every read of a client's message: a member that differs
	// from a flag only in case is refused, not ignored.
	o := s.cfg.Request
	f, err := mcpparse.Fields(params, o, "notifications")
	if err != nil || f[0].Raw == nil {
		return false
	}
	names := append(flags[:], "resourceSubscriptions")
	if f, err = mcpparse.Fields(f[0].Raw, o, names...); err != nil {
		return false
	}
	for i := range flags {
		switch string(f[i].Raw) {
		case "true":
			s.kinds[i] = true
		case "", "false":
		default:
			return false
		}
	}
	subs := f[3].Raw
	if subs == nil || string(subs) == "null" {
		return true
	}
	raws, err := mcpparse.Elements(subs, o)
	if err != nil || len(raws) > MaxURIs {
		return false
	}
	for _, raw := range raws {
		uri, err := mcpparse.String(raw)
		if err != nil || uri == "" {
			return false
		}
		if _, dup := s.owner[uri]; !dup {
			s.owner[uri] = ""
			s.uris = append(s.uris, uri)
		}
	}
	return true
}

// route finds the server of each subscribed URI, as resources/read does,
// and asks the Authorizer whether the caller may read it there. It returns
// the first URI that has no server or is not allowed (any failure refuses).
func (s *Stream) route(ctx context.Context) (string, bool) {
	cfg := s.cfg
	targets := make([]policy.Target, len(s.uris))
	for i, uri := range s.uris {
		srv, ok := cfg.Router.Owner(uri)
		if !ok {
			return uri, false
		}
		s.owner[uri] = srv.Name
		targets[i] = policy.Target{Server: srv.Name, Resource: uri}
	}
	if cfg.Auth == nil || len(targets) == 0 {
		return "", true
	}
	// Grouped by server, as Visible evaluates them.
	grouped := make([]policy.Target, 0, len(targets))
	for _, srv := range cfg.Registry.Load().Servers() {
		for _, t := range targets {
			if t.Server == srv.Name {
				grouped = append(grouped, t)
			}
		}
	}
	if len(grouped) != len(targets) {
		return targets[0].Resource, false // a server left the registry meanwhile
	}
	vis, err := cfg.Auth.Visible(ctx, cfg.CallerAuth, grouped)
	if err != nil || len(vis) != len(grouped) {
		return grouped[0].Resource, false
	}
	for i, ok := range vis {
		if !ok {
			return grouped[i].Resource, false
		}
	}
	return "", true
}
