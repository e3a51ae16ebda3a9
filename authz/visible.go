package authz

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

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
// registry snapshot in force (by their Versions): a reload or a new
// registration is seen at once, and one caller's answer never serves
// another. The returned slice
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
	snap := s.reg.Load()
	var filter filterer = s.policy
	loader, cacheable := s.policy.(setLoader)
	var set *policy.Set
	if cacheable {
		// Filter with the set the key names, not whichever is in force
		// by the time Filter loads it.
		set = loader.Load()
		filter = set
	}
	key := visibleKey(set.Version(), snap.Version(), id, callerAuthorization, targets)
	now := s.now()
	if cacheable {
		if vis, ok := s.seen.Get(key, now); ok {
			return vis, nil
		}
	}
	out, err := s.visible(ctx, filter, snap, &in, raw, id, targets)
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

// setLoader is a Decider that says which policy set is in force
// (policy.Engine). With any other Decider, Visible caches nothing.
type setLoader interface {
	Load() *policy.Set
}

// filterer filters list targets: a Decider, or the policy set it holds.
type filterer interface {
	Filter(ctx context.Context, in *policy.Input, targets []policy.Target) []bool
}

// visibleKey identifies one filtering: the Versions of the policy set and
// registry snapshot in force (never their addresses, which the runtime may
// reuse for another set), the caller (issuer, subject and the SHA-256 of its Authorization
// value; anonymous callers are told apart by that value alone) and every
// field of every target, each length-prefixed so that no two distinct
// inputs share a key.
func visibleKey(setVersion, snapVersion uint64, id *identity.Identity, callerAuthorization string, targets []policy.Target) [32]byte {
	bp := keyBuffers.Get().(*[]byte)
	b := binary.BigEndian.AppendUint64((*bp)[:0], setVersion)
	b = binary.BigEndian.AppendUint64(b, snapVersion)
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
		b = appendField(b, t.Method)
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

// visible filters targets with filter, exchanging the caller's token for each
// server as snap knows it.
func (s *Server) visible(ctx context.Context, filter filterer, snap *registry.Snapshot, in *policy.Input, raw string, id *identity.Identity, targets []policy.Target) ([]bool, error) {
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
		tok, err := s.upstreamFor(ctx, snap, raw, id, targets[start].Server)
		var re *exchange.RetrieveError
		switch {
		case errors.As(err, &re), errors.Is(err, ErrNoServer):
			start = end
			continue
		case err != nil:
			return nil, err
		case tok != nil:
			srvIn.Token = tok.Claims
			srvIn.Exchange = new(exchangeDoc).fill(tok)
		}
		copy(out[start:end], filter.Filter(ctx, &srvIn, targets[start:end]))
		for i := start; i < end; i++ {
			out[i] = out[i] && s.readable(snap, &targets[i])
		}
		start = end
	}
	return out, nil
}

// readable reports whether a resources/read of t's resource would reach
// t's server, as target resolves the server of a read: a resource whose
// URI another server's resourcePrefixes claim is read there, and one that
// none claims is refused when exchange is on (no token can be minted for a
// server authz cannot name). Such a resource is not listed: a list shows
// what the caller can use. Targets other than resources are readable.
func (s *Server) readable(snap *registry.Snapshot, t *policy.Target) bool {
	if t.Resource == "" {
		return true
	}
	owner, found := snap.ResolveURI(t.Resource)
	if !found {
		return s.xchg == nil
	}
	return owner.Name == t.Server
}
