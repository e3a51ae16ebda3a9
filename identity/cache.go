package identity

import (
	"container/heap"
	"sync"
	"time"
)

// entry is a token whose signature, issuer and algorithm were verified.
type entry struct {
	id  *Identity
	nbf time.Time
	iss *issuer

	key   [32]byte
	until int64 // unix nanoseconds after which the entry is useless
	index int   // in the cache's heap
}

// cache remembers verified tokens by the SHA-256 of their text. It holds
// at most size entries; when full it drops the one that expires first.
// Entries are dropped, not trusted, once expired: the caller still checks
// exp on each hit with its clock.
type cache struct {
	size int
	// mu guards m and h.
	mu sync.Mutex
	m  map[[32]byte]*entry
	h  expiryHeap
}

func newCache(size int) *cache {
	if size == 0 {
		size = DefaultCacheSize
	}
	if size < 0 {
		size = 0
	}
	return &cache{size: size, m: make(map[[32]byte]*entry)}
}

func (c *cache) get(key [32]byte) (*entry, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	return e, ok
}

// put remembers e until until. A full cache first drops its expired
// entries, then the one expiring first if that is sooner than e.
func (c *cache) put(key [32]byte, e *entry, now, until time.Time) {
	if c.size == 0 {
		return
	}
	e.key, e.until = key, until.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		heap.Remove(&c.h, old.index)
		delete(c.m, key)
	}
	for len(c.h) > 0 && (len(c.h) >= c.size || c.h[0].until < now.UnixNano()) {
		if len(c.h) >= c.size && c.h[0].until > e.until {
			return
		}
		old := heap.Pop(&c.h).(*entry)
		delete(c.m, old.key)
	}
	heap.Push(&c.h, e)
	c.m[key] = e
}

// expiryHeap orders entries by until, soonest first.
type expiryHeap []*entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].until < h[j].until }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
