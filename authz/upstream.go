package authz

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
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
	tok, err := s.exchangeFor(ctx, raw, id, server)
	if err != nil {
		return "", err
	}
	return tok.Authorization(), nil
}

// Visible reports which targets the caller may use, the filter of the
// router's lists: can see if and only if can use. Each target is evaluated
// by policy.Set.Filter as the request that uses it (a tool as tools/call, a
// prompt as prompts/get, a resource as resources/read of its uri, a resource
// template as resources/read with its uriTemplate as mcp.resource.uri), with
// the token exchanged for the target's server.
//
// Answers are reused for up to 30 s (never past the caller token's expiry)
// for the same caller (issuer, subject and a hash of the token; the token
// itself is kept nowhere), the same targets and the same policy set and
// registry snapshot in force: a reload or a new registration is seen at
// once, and one caller's answer never serves another. The returned slice
// must not be modified.
//
// A server the token service refuses shows nothing; an error is returned only
// when the caller cannot be identified or a service is down.
func (s *Server) Visible(ctx context.Context, callerAuthorization string, targets []policy.Target) ([]bool, error) {
	var in policy.Input
	var raw string
	var id *identity.Identity
	if s.verify != nil {
		var err error
		if raw, id, err = s.caller(ctx, callerAuthorization); err != nil {
			return nil, err
		}
		in.Identity = id.Claims
	}
	set, cacheable := s.policySet()
	snap := s.reg.Load()
	key := visibleKey(set, snap, id, callerAuthorization, targets)
	now := s.now()
	if cacheable {
		// The entry holds the set and snapshot it was computed with, so
		// their addresses in the key cannot be reused while it lives;
		// comparing them as well costs nothing.
		if v, ok := s.seen.Get(key, now); ok && v.set == set && v.snap == snap {
			return v.vis, nil
		}
	}
	out, err := s.visible(ctx, &in, raw, id, targets)
	if err == nil && cacheable {
		until := now.Add(visibleTTL)
		if id != nil && id.Expiry.Before(until) {
			until = id.Expiry
		}
		s.seen.Put(key, visibleEntry{set: set, snap: snap, vis: out}, now, until)
	}
	return out, err
}

// visibleEntry is one cached filtering and what it was computed with.
type visibleEntry struct {
	set  *policy.Set
	snap *registry.Snapshot
	vis  []bool
}

// visibleTTL bounds how long a caller's list filter is reused. The key
// changes with the caller's token, the policy set and the targets, so a
// reload or a new registration is seen at once; the bound covers what the
// key cannot see (the roles of a token the service would exchange anew).
const visibleTTL = 30 * time.Second

// policySet returns the policy set in force; ok is false when the policy
// cannot say which set that is, and then nothing is cached.
func (s *Server) policySet() (set *policy.Set, ok bool) {
	loader, ok := s.policy.(interface{ Load() *policy.Set })
	if !ok {
		return nil, false
	}
	return loader.Load(), true
}

// visibleKey identifies one filtering: the policy set and registry snapshot
// in force, the caller (issuer, subject and the SHA-256 of its Authorization
// value; anonymous callers are told apart by that value alone) and every
// field of every target, each length-prefixed so that no two distinct
// inputs share a key.
func visibleKey(set *policy.Set, snap *registry.Snapshot, id *identity.Identity, callerAuthorization string, targets []policy.Target) [32]byte {
	bp := keyBuffers.Get().(*[]byte)
	b := fmt.Appendf((*bp)[:0], "%p\x00%p", set, snap)
	if id != nil {
		b = appendField(b, id.Issuer)
		b = appendField(b, id.Subject)
	} else {
		b = appendField(b, "")
		b = appendField(b, "")
	}
	cred := sha256.Sum256([]byte(callerAuthorization))
	b = append(b, cred[:]...)
	for i := range targets {
		t := &targets[i]
		b = appendField(b, t.Server)
		b = appendField(b, t.Tool)
		b = appendField(b, t.Prompt)
		b = appendField(b, t.Resource)
	}
	key := sha256.Sum256(b)
	if cap(b) <= 1<<20 {
		*bp = b[:0]
		keyBuffers.Put(bp)
	}
	return key
}

// keyBuffers hold visibleKey's input between calls.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func appendField(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
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
	name, t, _ := srv.Target("") // the default target: lists and the router's own calls
	return s.xchg.Exchange(ctx, exchangeRequest(raw, id, srv, name, t))
}
