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
// sharing only concurrent fetches; keySet does the same at most once per
// refresh interval, so tokens naming random key ids cannot make the
// verifier flood the identity provider.
type keySet struct {
	url        string
	client     *http.Client
	now        func() time.Time
	timing     timing
	algorithms []jose.SignatureAlgorithm

	gate gate
	// mu guards keys, loaded and fetched.
	mu      sync.RWMutex
	keys    []jose.JSONWebKey
	loaded  bool
	fetched time.Time
}

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
	ran, err := k.gate.run(ctx, k.now(), k.fetch)
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	loaded := k.loaded
	k.mu.RUnlock()
	if !loaded {
		return nil, fmt.Errorf("%w: key set not loaded yet", ErrUnavailable)
	}
	if ran {
		if payload, ok := k.try(jws); ok {
			return payload, nil
		}
	}
	return nil, fmt.Errorf("%w: no key of the issuer verifies it", ErrSignature)
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
