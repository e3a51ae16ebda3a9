package catalog

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/registry"
)

// serverList is one server's list of one kind, as one authorization
// context fetched it.
type serverList struct {
	server string // registration name
	items  []Item
	bytes  int64     // the items' JSON, as the client sees it
	fresh  time.Time // served without asking the server until then
	// until is the deadline for serving the list: between fresh and until
	// it is served only while a refresh fails. Never past the upstream's
	// ttlMs nor the caller token's expiry.
	until time.Time
	// defs is the deadline for reading its tool definitions for this
	// authorization context's own calls (Catalog.Definition), however
	// stale the list is for serving: ListRefresh after it was fetched,
	// never past the caller token's expiry. Zero: none.
	defs time.Time
	// private: the server's list was not cacheScope "public".
	private bool
}

// listCache holds the lists fetched for each authorization context: by
// kind, server (name, URL, prefix and generation) and a SHA-256 of the
// caller's issuer and subject and of the credential the router sent
// upstream: no token is kept. It is bounded by the bytes its lists take and
// forgets the least recently used first.
type listCache struct {
	max int64
	sf  singleflight.Group // de-duplicates concurrent fetches of one key

	// mu guards everything below.
	mu    sync.Mutex
	bytes int64
	ll    *list.List // of *cacheEntry, most recently used first
	m     map[listKey]*list.Element
	gen   map[string]uint64 // by server name: bumped by invalidate
	next  uint64
	puts  uint64 // lists put so far: each entry's seq is the count at its put
}

// listKey names one server's list of one kind for one authorization context.
type listKey struct {
	kind                *Kind
	server, url, prefix string
	// nested are the other servers' prefixes that start with prefix
	// (shadowIndex): the names a list may keep depend on them.
	nested  string
	gen     uint64
	context [32]byte // authContext
}

// String is the key for singleflight.
func (k *listKey) String() string {
	return k.kind.Method + "\x00" + k.server + "\x00" + k.url + "\x00" + k.prefix + "\x00" + k.nested + "\x00" +
		strconv.FormatUint(k.gen, 10) + "\x00" + string(k.context[:])
}

// authContext digests an authorization context: the caller's issuer and
// subject and the Authorization value the router sends a server for them.
func authContext(issuer, subject, auth string) [32]byte {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, s := range [...]string{issuer, subject, auth} {
		h.Write(binary.AppendUvarint(n[:0], uint64(len(s))))
		h.Write([]byte(s))
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

type cacheEntry struct {
	key  listKey
	l    *serverList
	cost int64
	seq  uint64 // listCache.puts when it was put
}

// Overheads counted besides an item's JSON and an entry's items: the Go
// structures around them, roughly.
const (
	itemOverhead  = 64
	entryOverhead = 256
)

func newListCache(maxBytes int64) *listCache {
	return &listCache{max: maxBytes, ll: list.New(), m: map[listKey]*list.Element{}, gen: map[string]uint64{}}
}

// lookup returns the key of k's list of srv for an authorization context,
// where nested are the prefixes that shadow some of srv's names, the list
// under it unless it has passed its deadline (as get), and the count of
// lists put so far (for putSince).
func (c *listCache) lookup(k *Kind, srv *registry.Server, nested string, context [32]byte, now time.Time) (listKey, *serverList, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := listKey{kind: k, server: srv.Name, url: srv.URL, prefix: srv.Prefix, nested: nested, gen: c.gen[srv.Name], context: context}
	l, ok := c.getLocked(key, now)
	return key, l, ok, c.puts
}

// putSince returns the list under key if it was put after the count of
// puts was seen and is fresh at now: a list that a fetch in flight when
// it was looked up has since put, which a fetch of its own would only
// fetch again.
func (c *listCache) putSince(key listKey, seen uint64, now time.Time) (*serverList, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	ce := e.Value.(*cacheEntry)
	if ce.seq <= seen || !now.Before(ce.l.fresh) {
		return nil, false
	}
	c.ll.MoveToFront(e)
	return ce.l, true
}

// get returns the list under key unless it has passed its deadline (the
// later of until and defs: check until before serving it).
func (c *listCache) get(key listKey, now time.Time) (*serverList, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.getLocked(key, now)
}

func (c *listCache) getLocked(key listKey, now time.Time) (*serverList, bool) {
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	ce := e.Value.(*cacheEntry)
	if !now.Before(ce.l.until) && !now.Before(ce.l.defs) {
		c.remove(e)
		return nil, false
	}
	c.ll.MoveToFront(e)
	return ce.l, true
}

// put keeps l under key, replacing any list there, and forgets the least
// recently used lists until all fit. A list larger than the whole cache is
// not kept.
func (c *listCache) put(key listKey, l *serverList) {
	cost := int64(entryOverhead) + l.bytes + int64(len(l.items))*itemOverhead
	for _, it := range l.items {
		cost += int64(len(it.Name))
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
	c.puts++
	c.m[key] = c.ll.PushFront(&cacheEntry{key: key, l: l, cost: cost, seq: c.puts})
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
