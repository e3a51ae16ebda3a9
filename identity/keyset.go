package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// maxKeySetBytes bounds a key-set document.
const maxKeySetBytes = 1 << 20

// keySet is an oidc.KeySet over a remote JWKS. go-oidc's RemoteKeySet
// fetches the JWKS again for every token that no cached key verifies,
// sharing a fetch in flight even if it began before the token arrived, and
// never spacing fetches out. keySet bounds fetches and still takes a newly
// published key on its first use:
//   - fetches are at least the refresh interval apart, whatever the tokens;
//   - a token whose key is not cached waits for a fetch that began after it
//     arrived: it joins one in flight, or waits (briefly, within its
//     deadline) for the next one the interval allows, rather than being
//     refused because a fetch happened a moment ago;
//   - a key id such a fetch did not find is refused without another fetch
//     for unknownKeyTTL, so replaying one random kid costs nothing.
type keySet struct {
	url        string
	client     *http.Client
	now        func() time.Time
	timing     timing
	algorithms []jose.SignatureAlgorithm

	gate gate
	// mu guards keys, loaded, fetched and unknown.
	mu      sync.RWMutex
	keys    []jose.JSONWebKey
	loaded  bool
	fetched time.Time
	unknown map[string]time.Time // key ids a fresh fetch did not hold, until when they are refused
}

// unknownKeyTTL is how long a key id that a fetch made for it did not find
// is refused without another fetch; maxUnknownKeys bounds how many are kept.
// Forgetting one early costs only a wait for the next fetch.
const (
	unknownKeyTTL  = 10 * time.Second
	maxUnknownKeys = 1024
)

// maxKeyWait bounds how long a token waits for the next allowed key-set
// fetch; a longer wait (a refresh interval set long) refuses it instead.
const maxKeyWait = 2 * time.Second

// VerifySignature implements oidc.KeySet. Its errors are the package's
// sentinels; they also go into the errSlot of ctx, since go-oidc keeps
// only their text.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := k.verify(ctx, raw)
	if err != nil {
		if slot, ok := ctx.Value(errSlot{}).(*error); ok {
			*slot = err
		}
		return nil, err
	}
	return payload, nil
}

func (k *keySet) verify(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, k.algorithms)
	if err != nil {
		return nil, fmt.Errorf("%w: not a signed JWT", ErrMalformed)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: not exactly one signature", ErrMalformed)
	}
	if payload, ok := k.try(jws); ok {
		k.mu.RLock()
		stale := k.now().Sub(k.fetched) >= k.timing.maxAge
		k.mu.RUnlock()
		if stale {
			k.gate.start(k.now(), k.fetch) // a failure keeps the keys
		}
		return payload, nil
	}
	kid := jws.Signatures[0].Header.KeyID
	if k.isUnknown(kid) {
		return nil, fmt.Errorf("%w: key id unknown to the issuer", ErrSignature)
	}
	ran, err := k.gate.fresh(ctx, k.now(), k.now, min(k.timing.refresh, maxKeyWait), k.fetch)
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	loaded := k.loaded
	k.mu.RUnlock()
	if !loaded {
		return nil, fmt.Errorf("%w: key set not loaded yet", ErrUnavailable)
	}
	if !ran {
		return nil, fmt.Errorf("%w: no cached key verifies it and the key set was fetched too recently", ErrSignature)
	}
	if payload, ok := k.try(jws); ok {
		return payload, nil
	}
	k.markUnknown(kid)
	return nil, fmt.Errorf("%w: no key of the issuer verifies it", ErrSignature)
}

// isUnknown reports whether a fetch made for kid recently did not find it.
func (k *keySet) isUnknown(kid string) bool {
	if kid == "" {
		return false
	}
	k.mu.RLock()
	until, ok := k.unknown[kid]
	k.mu.RUnlock()
	return ok && k.now().Before(until)
}

// markUnknown remembers kid as unknown, unless the key set holds it (a key
// of that id failed: the token is forged or corrupt, not its kid unknown).
func (k *keySet) markUnknown(kid string) {
	if kid == "" {
		return
	}
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := range k.keys {
		if k.keys[i].KeyID == kid {
			return
		}
	}
	if len(k.unknown) >= maxUnknownKeys {
		for id, until := range k.unknown {
			if !now.Before(until) {
				delete(k.unknown, id)
			}
		}
		if len(k.unknown) >= maxUnknownKeys {
			clear(k.unknown)
		}
	}
	if k.unknown == nil {
		k.unknown = make(map[string]time.Time)
	}
	k.unknown[kid] = now.Add(unknownKeyTTL)
}

// try verifies jws with the cached keys its kid names (all of them if it
// names none).
func (k *keySet) try(jws *jose.JSONWebSignature) ([]byte, bool) {
	h := jws.Signatures[0].Header
	k.mu.RLock()
	keys := k.keys
	k.mu.RUnlock()
	for i := range keys {
		key := &keys[i]
		if h.KeyID != "" && key.KeyID != h.KeyID {
			continue
		}
		if key.Use != "" && key.Use != "sig" || key.Algorithm != "" && key.Algorithm != h.Algorithm {
			continue
		}
		if payload, err := jws.Verify(key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// fetch loads the key set; it runs at most once at a time.
func (k *keySet) fetch() (time.Duration, error) {
	now := k.now()
	ctx, cancel := context.WithTimeout(context.Background(), k.timing.timeout)
	defer cancel()
	keys, err := k.get(ctx)
	if err != nil {
		return retryAfterFailure, fmt.Errorf("%w: jwks: %w", ErrUnavailable, err)
	}
	k.mu.Lock()
	k.keys, k.loaded, k.fetched = keys, true, now
	k.mu.Unlock()
	return k.timing.refresh, nil
}

func (k *keySet) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxKeySetBytes {
		return nil, errors.New("document too large")
	}
	return parseKeySet(body)
}

// parseKeySet decodes a JWKS, skipping the keys it cannot use (unknown
// key types or curves, private keys) as RFC 7517 section 5 advises.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("not a JSON key set")
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable key")
	}
	return keys, nil
}
