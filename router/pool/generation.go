package pool

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// generationTTL is how long a server's revision, as server/discover told
// it, is trusted before it is asked again.
const generationTTL = 5 * time.Minute

// generations remembers, per server (name and URL), whether it speaks the
// stateless revision: each replica asks each server once per generationTTL.
type generations struct {
	mu sync.Mutex
	m  map[genKey]generation
}

// genKey names a server in generations: its name and URL.
type genKey struct{ name, url string }

type generation struct {
	modern bool
	until  time.Time
}

func newGenerations() *generations { return &generations{m: map[genKey]generation{}} }

// Modern reports whether srv speaks the stateless revision, asking it with
// server/discover (auth is the Authorization the router sends it for the
// caller) when this replica does not know. A server that cannot be reached
// counts as one of an earlier revision for this request, and is asked
// again on the next.
func (p *Pool) Modern(ctx context.Context, srv *registry.Server, auth string) bool {
	key := genKey{srv.Name, srv.URL}
	now := p.cfg.Now()
	p.gens.mu.Lock()
	g, ok := p.gens.m[key]
	p.gens.mu.Unlock()
	if ok && now.Before(g.until) {
		return g.modern
	}
	v, _, _ := p.inits.Do("discover\x00"+key.name+"\x00"+key.url, func() (any, error) {
		// Another request may have asked between the look above and now.
		p.gens.mu.Lock()
		g, ok := p.gens.m[key]
		p.gens.mu.Unlock()
		if ok && now.Before(g.until) {
			return g.modern, nil
		}
		_, err := p.client.Discover(ctx, Target(srv), auth, nil, nil)
		switch {
		case err == nil:
		case errors.Is(err, upstream.ErrLegacy):
		default:
			p.log.Debug("server/discover failed", "server", srv.Name, "error", err.Error())
			return false, nil // not remembered
		}
		p.gens.mu.Lock()
		if len(p.gens.m) > 4096 {
			clear(p.gens.m) // servers come and go: never unbounded
		}
		p.gens.m[key] = generation{modern: err == nil, until: now.Add(generationTTL)}
		p.gens.mu.Unlock()
		return err == nil, nil
	})
	return v.(bool)
}

// KnownModern reports whether this replica knows srv to speak the stateless
// revision (see Modern), without asking it.
func (p *Pool) KnownModern(srv *registry.Server) bool {
	p.gens.mu.Lock()
	g, ok := p.gens.m[genKey{srv.Name, srv.URL}]
	p.gens.mu.Unlock()
	return ok && g.modern && p.cfg.Now().Before(g.until)
}
