package exchange

import (
	"container/heap"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// entry is one cached exchanged token. Only the token and its deadline
// are kept: its claims come from the verifier, which caches them itself,
// so 100,000 entries cost little more than their tokens. A compact JWS is
// kept base64url-decoded, a quarter smaller.
type entry struct {
	token []byte // packed by pack
	until int64  // unix nanoseconds after which it is not served
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
	e := &entry{token: pack(token), until: until.UnixNano(), key: key}
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

// pack returns a compact JWS base64url-decoded: a marker byte 1, the
// lengths of the header and payload (2 bytes each), then the three parts.
// Any other token, or one whose decoding would not give back the same
// text, is kept as it is behind a marker byte 0.
func pack(token string) []byte {
	h, rest, ok := strings.Cut(token, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if ok && ok2 && len(h) < 1<<16 && len(p) < 1<<16 {
		enc := base64.RawURLEncoding
		b := make([]byte, 5, 5+enc.DecodedLen(len(h))+enc.DecodedLen(len(p))+enc.DecodedLen(len(sig)))
		b[0] = 1
		var err error
		for _, part := range []string{h, p, sig} {
			if b, err = enc.AppendDecode(b, []byte(part)); err != nil {
				break
			}
		}
		if err == nil {
			binary.BigEndian.PutUint16(b[1:], uint16(enc.DecodedLen(len(h))))
			binary.BigEndian.PutUint16(b[3:], uint16(enc.DecodedLen(len(p))))
			if unpack(b) == token {
				return b
			}
		}
	}
	return append([]byte{0}, token...)
}

// unpack returns the token that pack packed.
func unpack(b []byte) string {
	if b[0] == 0 {
		return string(b[1:])
	}
	enc := base64.RawURLEncoding
	hn, pn := int(binary.BigEndian.Uint16(b[1:])), int(binary.BigEndian.Uint16(b[3:]))
	h, p, sig := b[5:5+hn], b[5+hn:5+hn+pn], b[5+hn+pn:]
	out := make([]byte, 0, enc.EncodedLen(len(h))+enc.EncodedLen(len(p))+enc.EncodedLen(len(sig))+2)
	out = enc.AppendEncode(out, h)
	out = append(out, '.')
	out = enc.AppendEncode(out, p)
	out = append(out, '.')
	out = enc.AppendEncode(out, sig)
	return string(out)
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
