// Package expiry is a bounded cache whose entries expire, for verified and
// exchanged tokens.
package expiry

import (
	"container/heap"
	"math"
	"sync"
	"time"
)

// Cache holds at most a fixed number of values by a 32-byte key (a
// SHA-256), each until a deadline. When full it drops its expired entries,
// then the one expiring first. It is safe for concurrent use.
type Cache[V any] struct {
	size int
	// mu guards m and h.
	mu sync.Mutex
	m  map[[32]byte]*item[V]
	h  queue[V]
}

// item is one entry: its value, the key, the deadline and where it sits in
// the heap, and nothing more, since a cache may hold 100,000 of them.
type item[V any] struct {
	v     V
	until int64 // unix nanoseconds from which the entry has expired
	key   [32]byte
	index int // in the cache's heap
}

// New returns a cache of at most size entries; one of size 0 or less
// caches nothing.
func New[V any](size int) *Cache[V] {
	return &Cache[V]{size: max(size, 0), m: make(map[[32]byte]*item[V])}
}

// Get returns the value under key unless it has expired at now, in which
// case the entry is dropped.
func (c *Cache[V]) Get(key [32]byte, now time.Time) (V, bool) {
	return c.lookup(key, now, true)
}

// Peek returns the value under key whether or not it has expired, and
// drops nothing: for a caller that checks expiry itself and answers from
// an expired entry without doing again the work the entry saved.
func (c *Cache[V]) Peek(key [32]byte) (V, bool) {
	return c.lookup(key, time.Time{}, false)
}

// lookup returns the value under key; with expire, not once it has expired
// at now, and then the entry is dropped.
func (c *Cache[V]) lookup(key [32]byte, now time.Time, expire bool) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if ok && expire && nanos(now) >= e.until {
		c.drop(e)
		ok = false
	}
	if !ok {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put keeps v under key until until, replacing any entry under key, if
// until is after now. A full cache first drops its entries expired at
// now, then the one expiring first, unless v expires sooner still: then v
// is not kept.
func (c *Cache[V]) Put(key [32]byte, v V, now, until time.Time) {
	if c.size == 0 || !until.After(now) {
		return
	}
	e := &item[V]{v: v, until: nanos(until), key: key}
	at := nanos(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		c.drop(old)
	}
	for len(c.h) > 0 && (len(c.h) >= c.size || c.h[0].until <= at) {
		if len(c.h) >= c.size && c.h[0].until > e.until {
			return
		}
		c.drop(c.h[0])
	}
	heap.Push(&c.h, e)
	c.m[key] = e
}

// Remove drops the entry under key, if any.
func (c *Cache[V]) Remove(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.drop(e)
	}
}

// Len returns the number of entries, expired ones included.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *Cache[V]) drop(e *item[V]) {
	heap.Remove(&c.h, e.index)
	delete(c.m, e.key)
}

// The first and last instants that unix nanoseconds in an int64 hold.
var minNanos, maxNanos = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// nanos returns t in unix nanoseconds, clamped to the int64 range, out of
// which UnixNano is undefined (before the year 1678 or after 2262).
func nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanos):
		return math.MinInt64
	case t.After(maxNanos):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// queue orders items by until, soonest first (a container/heap).
type queue[V any] []*item[V]

func (q queue[V]) Len() int           { return len(q) }
func (q queue[V]) Less(i, j int) bool { return q[i].until < q[j].until }
func (q queue[V]) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *queue[V]) Push(x any) {
	e := x.(*item[V])
	e.index = len(*q)
	*q = append(*q, e)
}

func (q *queue[V]) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}
