package exchange

import (
	"container/heap"
	"sync"
	"time"
)

// entry is one cached exchanged token. Only the token and its deadline
// are kept: its claims come from the verifier, which caches them itself,
// so 100,000 entries cost little more than their tokens.
type entry struct {
	token string
	until int64 // unix nanoseconds after which it is not served
	key   [32]byte
	index int // in the cache's heap
}

// cache holds exchanged tokens by key. It holds at most size entries;
// when full it drops the expired ones, then the one expiring first.
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

// get returns the entry for key if it may still be served at now.
func (c *cache) get(key [32]byte, now time.Time) (*entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	if now.UnixNano() >= e.until {
		c.drop(e)
		return nil, false
	}
	return e, true
}

func (c *cache) remove(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.drop(e)
	}
}

func (c *cache) drop(e *entry) {
	heap.Remove(&c.h, e.index)
	delete(c.m, e.key)
}

// put caches token under key until until, if that is after now.
func (c *cache) put(key [32]byte, token string, now, until time.Time) {
	if c.size == 0 || !until.After(now) {
		return
	}
	e := &entry{token: token, until: until.UnixNano(), key: key}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		c.drop(old)
	}
	for len(c.h) > 0 && (len(c.h) >= c.size || c.h[0].until <= now.UnixNano()) {
		if len(c.h) >= c.size && c.h[0].until > e.until {
			return
		}
		c.drop(c.h[0])
	}
	heap.Push(&c.h, e)
	c.m[key] = e
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
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
