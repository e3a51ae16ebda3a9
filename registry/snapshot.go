package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// Snapshot is an immutable, validated set of servers with fast lookups. The *Server values
// it returns are shared and must not be modified. The zero Snapshot holds no servers.
type Snapshot struct {
	servers   []Server // sorted by Name
	byName    map[string]*Server
	byHost    map[string]*Server // lower-case hostname
	prefixes  []entry            // sorted by prefix, distinct; they may nest
	resources []entry            // sorted, prefix-free

	version atomic.Uint64 // set by Registry.Store
}

// entry maps a name or URI prefix to its server. parent is the index of the longest
// other entry that is a prefix of this one, or -1.
type entry struct {
	prefix string
	server *Server
	parent int
}

// NewSnapshot validates servers and returns them as a snapshot. It reports every problem
// at once, each an *field.Error whose path names the server and its field by YAML key
// ("servers[1].prefix"). Two servers may not share a name prefix (the empty one
// included), but prefixes may nest: the longest wins. Resource prefixes of different
// servers may not overlap. Audience defaults to Name.
func NewSnapshot(servers []Server) (*Snapshot, error) {
	var errs []error
	fail := func(i int, f, format string, a ...any) {
		errs = append(errs, field.Errorf(fmt.Sprintf("servers[%d].%s", i, f), format, a...))
	}

	norm := make([]Server, len(servers))
	names := make(map[string]int, len(servers))
	hosts := make(map[string]int)
	for i := range servers {
		s, probs := check(servers[i])
		for _, p := range probs {
			fail(i, p.field, "%s", p.msg)
		}
		if j, dup := names[s.Name]; dup && s.Name != "" {
			fail(i, "name", "%q is also servers[%d]", s.Name, j)
		} else {
			names[s.Name] = i
		}
		if j, dup := hosts[s.Hostname]; dup && s.Hostname != "" {
			fail(i, "hostname", "%q is also used by servers[%d] %q", s.Hostname, j, servers[j].Name)
		} else {
			hosts[s.Hostname] = i
		}
		norm[i] = s
	}

	var resources []owned
	prefixes := make(map[string]int, len(norm))
	for i, s := range norm {
		if j, dup := prefixes[s.Prefix]; dup {
			fail(i, "prefix", "%q is also the prefix of servers[%d] %q", s.Prefix, j, servers[j].Name)
		} else {
			prefixes[s.Prefix] = i
		}
		for _, p := range s.ResourcePrefixes {
			if p != "" {
				resources = append(resources, owned{p, i})
			}
		}
	}
	for _, o := range overlaps(resources) {
		if o[0].server != o[1].server {
			fail(o[1].server, "resourcePrefixes", "%q overlaps servers[%d] %q resource prefix %q",
				o[1].prefix, o[0].server, servers[o[0].server].Name, o[0].prefix)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return build(norm), nil
}

// owned is a prefix owned by servers[server], before the snapshot is built.
type owned struct {
	prefix string
	server int
}

// overlaps sorts list and returns every pair in which the first prefix is a prefix of (or
// equal to) the second. In sorted order, all strings starting with p directly follow p.
func overlaps(list []owned) [][2]owned {
	slices.SortStableFunc(list, func(a, b owned) int { return strings.Compare(a.prefix, b.prefix) })
	var pairs [][2]owned
	for i, a := range list {
		for _, b := range list[i+1:] {
			if !strings.HasPrefix(b.prefix, a.prefix) {
				break
			}
			pairs = append(pairs, [2]owned{a, b})
		}
	}
	return pairs
}

// build indexes valid, normalized servers.
func build(servers []Server) *Snapshot {
	slices.SortFunc(servers, func(a, b Server) int { return strings.Compare(a.Name, b.Name) })
	s := &Snapshot{
		servers: servers,
		byName:  make(map[string]*Server, len(servers)),
		byHost:  make(map[string]*Server),
	}
	for i := range servers {
		srv := &servers[i]
		s.byName[srv.Name] = srv
		if srv.Hostname != "" {
			s.byHost[srv.Hostname] = srv
		}
		s.prefixes = append(s.prefixes, entry{srv.Prefix, srv, -1})
		for _, p := range srv.ResourcePrefixes {
			s.resources = append(s.resources, entry{p, srv, -1})
		}
	}
	byPrefix := func(a, b entry) int { return strings.Compare(a.prefix, b.prefix) }
	slices.SortFunc(s.prefixes, byPrefix)
	// Every entry's parent precedes it: walk back along the chain of the previous
	// entry's ancestors to the first that is a prefix of this one.
	for i := range s.prefixes {
		for p := i - 1; p >= 0; p = s.prefixes[p].parent {
			if strings.HasPrefix(s.prefixes[i].prefix, s.prefixes[p].prefix) {
				s.prefixes[i].parent = p
				break
			}
		}
	}
	slices.SortFunc(s.resources, byPrefix)
	// A server may list a prefix and a longer one below it: keep the shorter, so the
	// list is prefix-free (overlaps between servers were rejected).
	kept := s.resources[:0]
	for _, e := range s.resources {
		if len(kept) == 0 || !strings.HasPrefix(e.prefix, kept[len(kept)-1].prefix) {
			kept = append(kept, e)
		}
	}
	s.resources = kept
	return s
}

// find returns the entry whose prefix starts key. In a sorted prefix-free list, only the
// greatest prefix <= key can be a prefix of key.
func find(list []entry, key string) (entry, bool) {
	lo, hi := 0, len(list)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if list[m].prefix <= key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 || !strings.HasPrefix(key, list[lo-1].prefix) {
		return entry{}, false
	}
	return list[lo-1], true
}

// Resolve finds the server of a prefixed tool or prompt name and returns the name without
// the prefix, which is never empty: Resolve("kube_pods_list") returns the server with
// prefix "kube_" and "pods_list". Of nested prefixes the longest that leaves a non-empty
// name wins; a server without a prefix owns the names no other prefix takes.
func (s *Snapshot) Resolve(prefixed string) (srv *Server, name string, ok bool) {
	// In the sorted list, the longest prefix of the name is the greatest entry <= name
	// or one of that entry's ancestors (the entries between a prefix P of the name and
	// the name itself all start with P).
	lo, hi := 0, len(s.prefixes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.prefixes[m].prefix <= prefixed {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo - 1; i >= 0; i = s.prefixes[i].parent {
		e := s.prefixes[i]
		if len(e.prefix) < len(prefixed) && strings.HasPrefix(prefixed, e.prefix) {
			return e.server, prefixed[len(e.prefix):], true
		}
	}
	return nil, "", false
}

// ResolveURI finds the server owning a resource URI by its longest resource prefix.
func (s *Snapshot) ResolveURI(uri string) (*Server, bool) {
	e, ok := find(s.resources, uri)
	return e.server, ok
}

// Server returns the server named namespace/name.
func (s *Snapshot) Server(name string) (*Server, bool) {
	srv, ok := s.byName[name]
	return srv, ok
}

// ByHost returns the server attached to host, which may carry a :port and is compared
// case-insensitively. A malformed host matches nothing.
func (s *Snapshot) ByHost(host string) (*Server, bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		if !isPort(host[i+1:]) {
			return nil, false
		}
		host = host[:i]
	}
	for i := 0; i < len(host); i++ {
		if 'A' <= host[i] && host[i] <= 'Z' {
			host = strings.ToLower(host)
			break
		}
	}
	srv, ok := s.byHost[host]
	return srv, ok
}

func isPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// Version identifies the Store that put s in force: every Registry.Store
// gives its snapshot a number greater than any before it in the process, so
// a registry's current Version only grows, and a cache keyed by it sees every
// change. A snapshot never stored has Version 0.
func (s *Snapshot) Version() uint64 { return s.version.Load() }

// Servers returns a copy of the servers, sorted by Name.
func (s *Snapshot) Servers() []Server {
	out := slices.Clone(s.servers)
	for i := range out {
		out[i].ResourcePrefixes = slices.Clone(out[i].ResourcePrefixes)
		out[i].Scopes = slices.Clone(out[i].Scopes)
		out[i].CACert = slices.Clone(out[i].CACert)
		out[i].Category = slices.Clone(out[i].Category)
		out[i].Tags = slices.Clone(out[i].Tags)
	}
	return out
}
