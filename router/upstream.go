package router

import (
	"context"
	"fmt"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// upstreamSession is one upstream's session (see upstream.Session).
type upstreamSession = upstream.Session

var (
	errUpstreamSession      = upstream.ErrSessionEnded
	errUpstreamUnauthorized = upstream.ErrUnauthorized
	errUpstreamAnswer       = upstream.ErrAnswer
)

// target is srv as the upstream client reaches it: at its URL, trusting
// its own CA alone when it has one.
func target(srv *registry.Server) upstream.Target {
	return upstream.Target{Server: srv.Name, URL: srv.URL, CACert: srv.CACert}
}

// upstreamFor returns the caller's session with srv, opened by this replica
// on first use and cached by (session, server): each replica opens its own,
// and only with the servers the session uses.
func (r *Router) upstreamFor(ctx context.Context, s *session, srv *registry.Server, auth string) (upstreamSession, error) {
	if up, ok := r.upstream.get(upstreamKey(s, srv)); ok {
		return up, nil
	}
	if r.modern(ctx, srv, auth) {
		// A stateless server: no session, every request says it all.
		return upstreamSession{Version: upstream.Stateless}, nil
	}
	return r.reinit(ctx, s, srv, auth, upstreamSession{})
}

// upstreamKey names the session's upstream session with srv.
func upstreamKey(s *session, srv *registry.Server) string {
	return s.key() + "\x00" + srv.Name
}

// reinit opens a new session with srv in place of old (the zero session:
// none yet); concurrent requests for the same (session, server) share one
// initialize. An ended session (DELETE on this replica) is never given a
// new upstream session, not even by a request that was in flight when it
// ended.
func (r *Router) reinit(ctx context.Context, s *session, srv *registry.Server, auth string, old upstreamSession) (upstreamSession, error) {
	key := upstreamKey(s, srv)
	v, err, _ := r.inits.Do(key+"\x00"+old.ID, func() (any, error) {
		if r.isEnded(s) || !r.now().Before(r.sessionExpiry(s)) {
			return nil, errEnded
		}
		if up, ok := r.upstream.get(key); ok && up != old {
			return up, nil
		}
		up, err := r.up.Open(ctx, target(srv), upstream.Headers{Auth: auth}, legacyVersion(s.Version), s.Caps, s.Info)
		if err != nil {
			r.upstreamFailed(srv, "initialize", err)
			return nil, err
		}
		r.metrics.upstreamSessions.Inc()
		r.applyLevel(ctx, s, srv, auth, up)
		r.upstream.put(key, up)
		if !s.stateless() {
			r.streams.watch(s.key(), srv) // a stateless caller has no GET stream
		}
		// delete marks the session ended before it clears this cache: if it
		// ended meanwhile, the session just opened is ended here.
		if r.isEnded(s) {
			r.upstream.remove(key)
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.InitTimeout)
			defer cancel()
			r.deleteUpstream(dctx, srv, auth, up)
			return nil, errEnded
		}
		return up, nil
	})
	if err != nil {
		return upstreamSession{}, err
	}
	return v.(upstreamSession), nil
}

// errCaller marks a failure that belongs to the caller (no token for the
// server, or the server refused it) rather than to the server.
var errCaller = catalog.ErrCaller

// errEnded is what reinit answers for an ended session: the caller's
// affair, not the server's (lists are not marked failed for it).
var errEnded = fmt.Errorf("%w: %w", errCaller, errSessionEnded)

// deleteUpstream ends an upstream session; errors are only logged.
func (r *Router) deleteUpstream(ctx context.Context, srv *registry.Server, auth string, up upstreamSession) {
	if err := r.up.Delete(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}); err != nil {
		r.log.Debug("upstream delete failed", "server", srv.Name, "error", err)
	}
}
