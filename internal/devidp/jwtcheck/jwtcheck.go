// Package jwtcheck checks the JWT assertions the dev provider accepts (RFC
// 7523 client assertions and authorization grants): signature, times, and
// single use. Development and tests only.
package jwtcheck

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// SignatureAlgs are the algorithms an assertion may be signed with.
var SignatureAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// ReplayCache remembers used assertion IDs until they can no longer be
// presented.
type ReplayCache struct {
	max int

	mu   sync.Mutex
	seen map[string]time.Time // key -> the end of its validity
}

// NewReplayCache holds at most max unexpired IDs.
func NewReplayCache(max int) *ReplayCache {
	return &ReplayCache{max: max, seen: map[string]time.Time{}}
}

// Errors of ReplayCache.Use; their text completes "assertion ...".
var (
	ErrReplayed   = errors.New("already used")
	ErrReplayFull = errors.New("too many unexpired assertions")
)

// Use records key as used until `until`; it fails if key is in use already
// or the cache is full of unexpired entries (fail closed).
func (c *ReplayCache) Use(key string, until, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if end, ok := c.seen[key]; ok && now.Before(end) {
		return ErrReplayed
	}
	if len(c.seen) >= c.max {
		for k, end := range c.seen {
			if !now.Before(end) {
				delete(c.seen, k)
			}
		}
		if len(c.seen) >= c.max {
			return ErrReplayFull
		}
	}
	c.seen[key] = until
	return nil
}

// Claims are the registered claims an assertion is checked on, plus the
// ID-JAG client_id and the scope.
type Claims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// Peek reads an assertion's typ header and claims WITHOUT verifying its
// signature: only to pick the keys that verify it.
func Peek(raw string) (typ string, c Claims, err error) {
	jws, err := jose.ParseSigned(raw, SignatureAlgs)
	if err != nil {
		return "", c, err
	}
	if len(jws.Signatures) != 1 {
		return "", c, errors.New("want one signature")
	}
	typ, _ = jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string)
	err = json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c)
	return typ, c, err
}

// Verify checks raw's signature against ks and returns its payload and
// claims.
func Verify(ctx context.Context, ks gooidc.KeySet, raw string) ([]byte, Claims, error) {
	var c Claims
	payload, err := ks.VerifySignature(ctx, raw)
	if err != nil {
		return nil, c, err
	}
	err = json.Unmarshal(payload, &c)
	return payload, c, err
}

// CheckTimes requires exp and applies it, nbf and iat with skew; exp may be
// at most maxLifetime ahead.
func (c *Claims) CheckTimes(now time.Time, maxLifetime, skew time.Duration) error {
	if c.Expiry == nil {
		return errors.New("exp is required")
	}
	exp := c.Expiry.Time()
	switch {
	case !now.Before(exp.Add(skew)):
		return errors.New("expired")
	case exp.After(now.Add(maxLifetime + skew)):
		return errors.New("expires too far in the future")
	case c.NotBefore != nil && now.Add(skew).Before(c.NotBefore.Time()):
		return errors.New("not valid yet")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(skew)):
		return errors.New("issued in the future")
	}
	return nil
}
