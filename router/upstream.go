package router

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// upstreamSession is one upstream's session (see upstream.Session).
type upstreamSession = upstream.Session

var (
	errUpstreamSession      = upstream.ErrSessionEnded
	errUpstreamUnauthorized = upstream.ErrUnauthorized
	errUpstreamAnswer       = upstream.ErrAnswer
)

// target is srv as the upstream client reaches it (see pool.Target).
func target(srv *registry.Server) upstream.Target { return pool.Target(srv) }

// upstreamFor returns the caller's session with srv, opened by this replica
// on first use and kept by (session, server) in the pool: each replica
// opens its own, and only with the servers the session uses.
func (r *Router) upstreamFor(ctx context.Context, s *session, srv *registry.Server, auth string) (upstreamSession, error) {
	if up, ok := r.pool.Get(s.key(), srv.Name); ok {
		return up, nil
	}
	if r.pool.Modern(ctx, srv, auth) {
		// A stateless server: no session, every request says it all.
		return upstreamSession{Version: upstream.Stateless}, nil
	}
	return r.reinit(ctx, s, srv, auth, upstreamSession{})
}

// reinit opens a new session with srv in place of old (the zero session:
// none yet; see pool.Pool.Open); the session's GET streams relay the
// server's from then on. An ended or expired session gets none (errEnded).
func (r *Router) reinit(ctx context.Context, s *session, srv *registry.Server, auth string, old upstreamSession) (upstreamSession, error) {
	up, err := r.pool.Open(ctx, pool.Owner{
		ID: s.ID, Key: s.key(), Version: legacyVersion(s.Version), Caps: s.Caps, Info: s.Info, Expiry: r.sessionExpiry(s),
	}, srv, auth, old)
	if errors.Is(err, pool.ErrEnded) {
		return upstreamSession{}, errEnded
	}
	if err != nil {
		return upstreamSession{}, err
	}
	if !s.stateless() {
		r.streams.Watch(s.key(), srv) // a stateless caller has no GET stream; watching again is nothing
	}
	return up, nil
}

// upstreamOpened counts an upstream session just opened and gives it the log level
// its client session set, before any other request has it.
func (r *Router) upstreamOpened(ctx context.Context, o *pool.Owner, srv *registry.Server, auth string, up upstreamSession) {
	r.metrics.upstreamSessions.Inc()
	r.applyLevel(ctx, o.Key, srv, auth, up)
}

// errCaller marks a failure that belongs to the caller (no token for the
// server, or the server refused it) rather than to the server.
var errCaller = catalog.ErrCaller

// errEnded is what reinit answers for an ended session: the caller's
// affair, not the server's (lists are not marked failed for it).
var errEnded = fmt.Errorf("%w: %w", errCaller, errSessionEnded)

// deleteUpstream ends an upstream session; errors are only logged.
func (r *Router) deleteUpstream(ctx context.Context, srv *registry.Server, auth string, up upstreamSession) {
	r.pool.Delete(ctx, srv, auth, up)
}
