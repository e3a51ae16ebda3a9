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
// server on behalf of the caller whose Authorization header is given: a token
// exchanged for that server. It never returns the caller's own token, which
// is minted for the gateway, not for server: with exchange off, or identity
// off, it returns "" and the router sends no Authorization. (The exchanged
// token is the caller's own only when its audience is server alone, with
// exchange's SkipWhenAudienceMatches.) With identity on, a caller token that
// does not verify is an error.
func (s *Server) UpstreamAuthorization(ctx context.Context, callerAuthorization, server string) (string, error) {
	if s.verify == nil {
		return "", nil
	}
	raw, id, err := s.caller(ctx, callerAuthorization)
	if err != nil {
		return "", err
	}
	if s.xchg == nil {
		return "", nil
	}
	tok, err := s.exchangeFor(ctx, s.reg.Load(), raw, id, server)
	if err != nil {
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

// exchangeFor exchanges the caller's token for server, as snap knows it.
func (s *Server) exchangeFor(ctx context.Context, snap *registry.Snapshot, raw string, id *identity.Identity, server string) (*exchange.Token, error) {
	srv, ok := snap.Server(server)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoServer, server)
	}
	name, t, _ := srv.Target("") // the default target: lists and the router's own calls
	return s.xchg.Exchange(ctx, exchangeRequest(raw, id, srv, name, t))
}
