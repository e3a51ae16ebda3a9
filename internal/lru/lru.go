// Package lru is a bounded map by string key that forgets the least
// recently used entry, safe for concurrent use.
package lru

import (
	"container/list"
	"sync"
)

// Cache holds at most a fixed number of entries.
type Cache[V any] struct {
	max int
	// mu guards ll and m.
	mu sync.Mutex
	ll *list.List // of *entry[V], most recently used first
	m  map[string]*list.Element
}

type entry[V any] struct {
	key string
	val V
}

// New returns a cache of at most n entries (at least one).
func New[V any](n int) *Cache[V] {
	return &Cache[V]{max: max(n, 1), ll: list.New(), m: map[string]*list.Element{}}
}

// Get returns the value under key, now the most recently used.
func (c *Cache[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*entry[V]).val, true
	}
	var zero V
	return zero, false
}

// Put sets key to v, forgetting the least recently used entry when full.
func (c *Cache[V]) Put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		e.Value.(*entry[V]).val = v
		c.ll.MoveToFront(e)
		return
	}
	c.m[key] = c.ll.PushFront(&entry[V]{key: key, val: v})
	if c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*entry[V]).key)
	}
}

// Remove forgets key.
func (c *Cache[V]) Remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		c.ll.Remove(e)
		delete(c.m, key)
	}
}
