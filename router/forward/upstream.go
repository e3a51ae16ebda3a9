package forward

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// target is srv as the upstream client reaches it (see pool.Target).
func target(srv *registry.Server) upstream.Target { return pool.Target(srv) }

// UpstreamFor returns the caller's session with srv, opened by this replica
// on first use and kept by (session, server) in the pool: each replica
// opens its own, and only with the servers the session uses.
func (fw *Forwarder) UpstreamFor(ctx context.Context, s *session.Record, srv *registry.Server, auth string) (upstream.Session, error) {
	if up, ok := fw.pool.Get(s.Key(), srv.Name); ok {
		return up, nil
	}
	if fw.pool.Modern(ctx, srv, auth) {
		// A stateless server: no session, every request says it all.
		return upstream.Session{Version: upstream.Stateless}, nil
	}
	return fw.Reinit(ctx, s, srv, auth, upstream.Session{})
}

// Reinit opens a new session with srv in place of old (the zero session:
// none yet; see pool.Pool.Open); the session's GET streams relay the
// server's from then on. An ended or expired session gets none (errEnded).
func (fw *Forwarder) Reinit(ctx context.Context, s *session.Record, srv *registry.Server, auth string, old upstream.Session) (upstream.Session, error) {
	up, err := fw.pool.Open(ctx, pool.Owner{
		ID: s.ID, Key: s.Key(), Version: session.LegacyVersion(s.Version), Caps: s.Caps, Info: s.Info, Expiry: s.Expiry(fw.cfg.SessionTTL),
	}, srv, auth, old)
	if errors.Is(err, pool.ErrEnded) {
		return upstream.Session{}, errEnded
	}
	if err != nil {
		return upstream.Session{}, err
	}
	if !s.Stateless() {
		fw.streams.Watch(s.Key(), srv) // a stateless caller has no GET stream; watching again is nothing
	}
	return up, nil
}

// errEnded is what Reinit answers for an ended session: the caller's
// affair, not the server's (lists are not marked failed for it, as
// catalog.ErrCaller marks a failure that belongs to the caller).
var errEnded = fmt.Errorf("%w: %w", catalog.ErrCaller, session.ErrEnded)
