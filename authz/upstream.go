package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/registry"
)

// ErrNoServer is returned for a server name the registry does not hold.
var ErrNoServer = errors.New("authz: no such server")

// UpstreamAuthorization returns the Authorization header value for a call the
// router makes itself (initialize, lists, notifications, forwarded calls) to
// server on behalf of the caller whose Authorization header is given: the
// server registration's static credential (credentialRef) when it has one,
// else a token exchanged for that server (its default target's profile). It
// never returns the caller's own token, which is minted for the gateway, not
// for server: with no credential and exchange or identity off, it returns ""
// and the router sends no Authorization. (The exchanged token is the
// caller's own only when its audience is server alone, with exchange's
// SkipWhenAudienceMatches.) With identity on, a caller token that does not
// verify is an error, credential or not.
func (s *Server) UpstreamAuthorization(ctx context.Context, callerAuthorization, server string) (string, error) {
	var raw string
	var id *identity.Identity
	if s.verify != nil {
		var err error
		if raw, id, err = s.caller(ctx, callerAuthorization); err != nil {
			return "", err
		}
	}
	tok, err := s.upstreamFor(ctx, s.reg.Load(), raw, id, server)
	if err != nil || tok == nil {
		return "", err
	}
	return tok.Authorization(), nil
}

// caller validates an Authorization header value.
func (s *Server) caller(ctx context.Context, authorization string) (string, *identity.Identity, error) {
	raw, err := identity.BearerToken(authorization)
	if err != nil {
		return "", nil, fmt.Errorf("authz: caller token: %w", err)
	}
	id, err := s.verify.Verify(ctx, raw)
	if err != nil {
		return "", nil, fmt.Errorf("authz: caller token: %w", err)
	}
	return raw, id, nil
}

// upstreamFor is the token for server, as snap knows it, of a request that
// names no target (lists and the router's own calls: the default target),
// as upstreamToken makes it; nil when none is sent (id is nil with identity
// off). A server snap does not hold is ErrNoServer when a token would be
// exchanged for it.
func (s *Server) upstreamFor(ctx context.Context, snap *registry.Snapshot, raw string, id *identity.Identity, server string) (*exchange.Token, error) {
	exchanging := s.xchg != nil && id != nil
	srv, ok := snap.Server(server)
	switch {
	case !ok && exchanging:
		return nil, fmt.Errorf("%w: %q", ErrNoServer, server)
	case !ok, srv.Credential == nil && !exchanging:
		return nil, nil
	}
	name, t, _ := srv.Target("")
	return s.tokenFor(ctx, raw, id, srv, name, t)
}
