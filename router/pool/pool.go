// Package pool holds the upstream sessions of the router's clients on one
// replica: one per client session and server, opened on first use, opened
// again when the server ends it, never for a client session that has
// ended; and which servers speak the stateless revision (no session).
package pool

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/internal/lru"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// ErrEnded is what Open answers for a client session that has
// ended (on this replica) or expired.
var ErrEnded = errors.New("pool: client session ended")

// Config sizes and times the pool.
type Config struct {
	// Size bounds the upstream sessions kept; at least 1.
	Size int
	// InitTimeout bounds the delete of an upstream session opened for a
	// client session that ended meanwhile.
	InitTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Deps are what the pool uses at run time.
type Deps struct {
	// Client reaches the servers; required.
	Client *upstream.Client
	// Log is the logger; nil logs nothing.
	Log *slog.Logger
	// Ended reports whether the client session of that id has ended on
	// this replica; required.
	Ended func(id string) bool
	// Opened is told of each upstream session just opened, before any
	// other request has it (the router applies the session's log level and
	// has its GET streams relay the server's); nil: not told.
	Opened func(ctx context.Context, o *Owner, srv *registry.Server, auth string, up upstream.Session)
	// Failed is told of each initialize that failed; nil: not told.
	Failed func(srv *registry.Server, op string, err error)
}

// Owner is the client session an upstream session is opened for.
type Owner struct {
	ID  string // as Deps.Ended knows it
	Key string // names it, and the caller it belongs to, in this replica's maps
	// Version is the revision an upstream session is initialized in.
	Version string
	// Caps and Info are the client's capabilities and clientInfo (JSON, or
	// nil), sent at initialize.
	Caps, Info json.RawMessage
	// Expiry is when the client session stops being valid.
	Expiry time.Time
}

// Pool is the upstream sessions of this replica's clients.
type Pool struct {
	cfg      Config
	client   *upstream.Client
	log      *slog.Logger
	ended    func(string) bool
	opened   func(context.Context, *Owner, *registry.Server, string, upstream.Session)
	failed   func(*registry.Server, string, error)
	sessions *lru.Cache[sessionKey, upstream.Session] // (owner key, server) -> upstream session
	inits    singleflight.Group                       // de-duplicates initializes and discovers
	gens     *generations                             // which servers speak the stateless revision
}

// New returns a pool.
func New(c Config, d Deps) (*Pool, error) {
	if d.Client == nil || d.Ended == nil {
		return nil, errors.New("pool: a client and Ended are required")
	}
	if c.Size < 1 {
		return nil, errors.New("pool: size must be positive")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Opened == nil {
		d.Opened = func(context.Context, *Owner, *registry.Server, string, upstream.Session) {}
	}
	if d.Failed == nil {
		d.Failed = func(*registry.Server, string, error) {}
	}
	return &Pool{
		cfg: c, client: d.Client, log: d.Log, ended: d.Ended, opened: d.Opened, failed: d.Failed,
		sessions: lru.New[sessionKey, upstream.Session](c.Size),
		gens:     newGenerations(),
	}, nil
}

// Target is srv as the upstream client reaches it: at its URL, trusting
// its own CA alone when it has one.
func Target(srv *registry.Server) upstream.Target {
	return upstream.Target{Server: srv.Name, URL: srv.URL, CACert: srv.CACert}
}

// sessionKey names the owner's upstream session with server.
type sessionKey struct{ owner, server string }

// Get returns the upstream session of the owner (by its Key) with server,
// if this replica has one.
func (p *Pool) Get(owner, server string) (upstream.Session, bool) {
	return p.sessions.Get(sessionKey{owner, server})
}

// Take is Get, and forgets the session.
func (p *Pool) Take(owner, server string) (upstream.Session, bool) {
	k := sessionKey{owner, server}
	up, ok := p.sessions.Get(k)
	p.sessions.Remove(k)
	return up, ok
}

// Open opens a session of the owner with srv (auth is the Authorization
// the router sends it) in place of old (the zero session: none yet), and
// keeps it; concurrent requests for the same (owner, server) share one
// initialize. An ended owner (see Deps.Ended) is never given a new upstream
// session, not even by a request that was in flight when it ended.
func (p *Pool) Open(ctx context.Context, o Owner, srv *registry.Server, auth string, old upstream.Session) (upstream.Session, error) {
	k := sessionKey{o.Key, srv.Name}
	v, err, _ := p.inits.Do(o.Key+"\x00"+srv.Name+"\x00"+old.ID, func() (any, error) {
		if p.ended(o.ID) || !p.cfg.Now().Before(o.Expiry) {
			return nil, ErrEnded
		}
		if up, ok := p.sessions.Get(k); ok && up != old {
			return up, nil
		}
		up, err := p.client.Open(ctx, Target(srv), upstream.Headers{Auth: auth}, o.Version, o.Caps, o.Info)
		if err != nil {
			p.failed(srv, "initialize", err)
			return nil, err
		}
		p.opened(ctx, &o, srv, auth, up)
		p.sessions.Put(k, up)
		// The owner's end marks it ended before it takes its sessions: if
		// it ended meanwhile, the session just opened is ended here.
		if p.ended(o.ID) {
			p.sessions.Remove(k)
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.InitTimeout)
			defer cancel()
			p.Delete(dctx, srv, auth, up)
			return nil, ErrEnded
		}
		return up, nil
	})
	if err != nil {
		return upstream.Session{}, err
	}
	return v.(upstream.Session), nil
}

// Delete ends an upstream session; errors are only logged.
func (p *Pool) Delete(ctx context.Context, srv *registry.Server, auth string, up upstream.Session) {
	if err := p.client.Delete(ctx, Target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}); err != nil {
		p.log.Debug("upstream delete failed", "server", srv.Name, "error", err)
	}
}
