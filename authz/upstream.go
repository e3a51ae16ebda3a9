package authz

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
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
	tok, err := s.exchangeFor(ctx, raw, id, server)
	if err != nil {
		return "", err
	}
	return "Bearer " + tok.AccessToken, nil
}

// Visible reports which targets the caller may call: the policy evaluated as
// tools/call of each, with the token exchanged for each target's server.
// Answers are reused for the same caller token, policy set and targets for
// up to 30 s; the returned slice must not be modified.
// A server the token service refuses shows nothing; an error is returned only
// when the caller cannot be identified or a service is down.
func (s *Server) Visible(ctx context.Context, callerAuthorization string, targets []policy.Target) ([]bool, error) {
	in := policy.Input{MCP: policy.MCP{Method: "tools/call"}}
	var raw string
	var id *identity.Identity
	if s.verify != nil {
		var err error
		if raw, id, err = s.caller(ctx, callerAuthorization); err != nil {
			return nil, err
		}
		in.Identity = id.Claims
	}
	key, cacheable := s.visibleKey(callerAuthorization, targets)
	now := s.now()
	if cacheable {
		if v, ok := s.seen.Get(key, now); ok {
			return v, nil
		}
	}
	out, err := s.visible(ctx, &in, raw, id, targets)
	if err == nil && cacheable {
		until := now.Add(visibleTTL)
		if id != nil && id.Expiry.Before(until) {
			until = id.Expiry
		}
		s.seen.Put(key, out, now, until)
	}
	return out, err
}

// visibleTTL bounds how long a caller's list filter is reused. The key
// changes with the caller's token, the policy set and the targets, so a
// reload or a new registration is seen at once; the bound covers what the
// key cannot see (the roles of a token the service would exchange anew).
const visibleTTL = 30 * time.Second

// visibleKey identifies one filtering: the caller's token, the policy set and
// registry snapshot in force, and the targets. cacheable is false when the policy cannot say which
// set is in force.
func (s *Server) visibleKey(callerAuthorization string, targets []policy.Target) (key [32]byte, cacheable bool) {
	loader, ok := s.policy.(interface{ Load() *policy.Set })
	if !ok {
		return key, false
	}
	h := sha256.New()
	fmt.Fprintf(h, "%p\x00%p\x00%s\x00", loader.Load(), s.reg.Load(), callerAuthorization)
	for _, t := range targets {
		h.Write([]byte(t.Server))
		h.Write([]byte{0})
		h.Write([]byte(t.Tool))
		h.Write([]byte{0})
	}
	h.Sum(key[:0])
	return key, true
}

func (s *Server) visible(ctx context.Context, in *policy.Input, raw string, id *identity.Identity, targets []policy.Target) ([]bool, error) {
	out := make([]bool, len(targets))
	// Targets come grouped by server from the router's lists; evaluate each
	// run of one server with that server's token.
	for start := 0; start < len(targets); {
		end := start + 1
		for end < len(targets) && targets[end].Server == targets[start].Server {
			end++
		}
		srvIn := *in
		srvIn.MCP.Server = targets[start].Server
		if s.xchg != nil && id != nil {
			tok, err := s.exchangeFor(ctx, raw, id, targets[start].Server)
			var re *exchange.RetrieveError
			switch {
			case errors.As(err, &re), errors.Is(err, ErrNoServer):
				start = end
				continue
			case err != nil:
				return nil, err
			}
			srvIn.Token = tok.Claims
		}
		copy(out[start:end], s.policy.Filter(ctx, &srvIn, targets[start:end]))
		start = end
	}
	return out, nil
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

func (s *Server) exchangeFor(ctx context.Context, raw string, id *identity.Identity, server string) (*exchange.Token, error) {
	srv, ok := s.reg.Load().Server(server)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoServer, server)
	}
	return s.xchg.Exchange(ctx, exchangeRequest(raw, id, srv))
}
