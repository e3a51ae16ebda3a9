package router

import lrucache "github.com/mcp-authz/mcp-authz/internal/lru"

// lru is a bounded map that forgets the least recently used entry (see
// lru.Cache).
type lru[V any] struct{ c *lrucache.Cache[V] }

func newLRU[V any](max int) *lru[V] { return &lru[V]{lrucache.New[V](max)} }

func (c *lru[V]) get(key string) (V, bool) { return c.c.Get(key) }
func (c *lru[V]) put(key string, v V)      { c.c.Put(key, v) }
