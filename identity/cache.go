package identity

import (
	"time"

	"github.com/mcp-authz/mcp-authz/internal/expiry"
)

// entry is a token whose signature, issuer and algorithm were verified:
// what the cache keeps, by the SHA-256 of the token's text.
type entry struct {
	id  *Identity
	nbf time.Time
	iss *issuer
}

// newCache returns the cache of verified tokens for Config.CacheSize: 0
// means DefaultCacheSize, a negative value caches nothing. Entries are
// read with Peek, expired or not: the caller checks exp and nbf on each
// hit with its clock, and refuses an expired token without checking its
// signature again.
func newCache(size int) *expiry.Cache[entry] {
	if size == 0 {
		size = DefaultCacheSize
	}
	return expiry.New[entry](size)
}

// cacheUntil is the instant from which the cache may drop e: the first
// one at which check refuses it (after exp + leeway).
func cacheUntil(e *entry, leeway time.Duration) time.Time {
	return e.id.Expiry.Add(leeway + time.Nanosecond)
}
