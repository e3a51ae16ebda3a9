package router

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/registry"
)

// serverList is one server's list of one kind, as one authorization
// context fetched it.
type serverList struct {
	server string // registration name
	items  []item
	bytes  int64     // the items' JSON, as the client sees it
	fresh  time.Time // served without asking the server until then
	// until is the entry's deadline: between fresh and until the list is
	// served only while a refresh fails. Never past the upstream's ttlMs
	// nor the caller token's expiry.
	until time.Time
}

// listCache holds the lists fetched for each authorization context: by
// kind, server (name, URL, prefix and generation), the caller's issuer and
// subject, and the credential the router sent upstream. Keys are SHA-256
// digests: no token is kept. It is bounded by the bytes its lists take and
// forgets the least recently used first.
type listCache struct {
	max int64
	sf  singleflight.Group // de-duplicates concurrent fetches of one key

	// mu guards everything below.
	mu    sync.Mutex
	bytes int64
	ll    *list.List // of *cacheEntry, most recently used first
	m     map[[32]byte]*list.Element
	gen   map[string]uint64 // by server name: bumped by invalidate
	next  uint64
}

type cacheEntry struct {
	key  [32]byte
	l    *serverList
	cost int64
}

// Overheads counted besides an item's JSON and an entry's items: the Go
// structures around them, roughly.
const (
	itemOverhead  = 64
	entryOverhead = 256
)

func newListCache(maxBytes int64) *listCache {
	return &listCache{max: maxBytes, ll: list.New(), m: map[[32]byte]*list.Element{}, gen: map[string]uint64{}}
}

// key is the cache key of k's list of srv for the caller (issuer, subject)
// who reaches srv with the Authorization value auth.
func (c *listCache) key(k *kind, srv *registry.Server, issuer, subject, auth string) [32]byte {
	c.mu.Lock()
	gen := c.gen[srv.Name]
	c.mu.Unlock()
	var stack [512]byte
	b := stack[:0]
	for _, s := range [...]string{k.method, srv.Name, srv.URL, srv.Prefix, issuer, subject, auth} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, gen)
	return sha256.Sum256(b)
}

// get returns the list under key unless it has passed its deadline.
func (c *listCache) get(key [32]byte, now time.Time) (*serverList, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	ce := e.Value.(*cacheEntry)
	if !now.Before(ce.l.until) {
		c.remove(e)
		return nil, false
	}
	c.ll.MoveToFront(e)
	return ce.l, true
}

// put keeps l under key, replacing any list there, and forgets the least
// recently used lists until all fit. A list larger than the whole cache is
// not kept.
func (c *listCache) put(key [32]byte, l *serverList) {
	cost := int64(entryOverhead) + l.bytes + int64(len(l.items))*itemOverhead
	for _, it := range l.items {
		cost += int64(len(it.name))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.remove(e)
	}
	if cost > c.max {
		return
	}
	for c.bytes+cost > c.max {
		c.remove(c.ll.Back())
	}
	c.m[key] = c.ll.PushFront(&cacheEntry{key: key, l: l, cost: cost})
	c.bytes += cost
}

func (c *listCache) remove(e *list.Element) {
	ce := c.ll.Remove(e).(*cacheEntry)
	delete(c.m, ce.key)
	c.bytes -= ce.cost
}

// invalidate makes every authorization context's lists of server
// unreachable at once (O(1), however many contexts or however often an
// upstream sends list_changed); they are forgotten as the cache turns over.
func (c *listCache) invalidate(server string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	c.gen[server] = c.next
}

// retain drops the lists of servers no longer registered, and invalidates
// them, so that a server registered again starts afresh.
func (c *listCache) retain(snap *registry.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.ll.Front(); e != nil; {
		next := e.Next()
		if _, ok := snap.Server(e.Value.(*cacheEntry).l.server); !ok {
			c.remove(e)
		}
		e = next
	}
	for name := range c.gen {
		if _, ok := snap.Server(name); !ok {
			delete(c.gen, name)
		}
	}
}
