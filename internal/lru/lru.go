// Package lru is a bounded map that forgets the least recently used entry,
// safe for concurrent use.
package lru

import (
	"container/list"
	"sync"
)

// Cache holds at most a fixed number of entries.
type Cache[K comparable, V any] struct {
	max int
	// mu guards ll and m.
	mu sync.Mutex
	ll *list.List // of *entry[K, V], most recently used first
	m  map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a cache of at most n entries (at least one).
func New[K comparable, V any](n int) *Cache[K, V] {
	return &Cache[K, V]{max: max(n, 1), ll: list.New(), m: map[K]*list.Element{}}
}

// Get returns the value under key, now the most recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Put sets key to v, forgetting the least recently used entry when full.
func (c *Cache[K, V]) Put(key K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		e.Value.(*entry[K, V]).val = v
		c.ll.MoveToFront(e)
		return
	}
	c.m[key] = c.ll.PushFront(&entry[K, V]{key: key, val: v})
	if c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*entry[K, V]).key)
	}
}

// Remove forgets key.
func (c *Cache[K, V]) Remove(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.ll.Remove(e)
		delete(c.m, key)
	}
}
