package identity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// randomKid is a key id no provider published.
func randomKid(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "rogue-" + hex.EncodeToString(b)
}

// TestRotationAfterUnknownKidFlood: callers sending tokens with made-up key
// ids keep the key set busy; the provider then publishes a new key and signs
// with it. The first token with the new key is accepted, the JWKS fetches
// stay at most one per refresh interval, and made-up kids stay refused.
// Real clock: the waits for the next allowed fetch are real.
func TestRotationAfterUnknownKidFlood(t *testing.T) {
	p := newProvider(t)
	v, err := New(Config{Issuers: []Issuer{{IssuerURL: p.issuer, Audiences: []string{"mcp-gateway"}}}}, Deps{HTTPClient: p.Client()})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if _, err := v.Verify(t.Context(), p.sign(t, "rsa-1", p.claims(time.Now(), "mcp-gateway"))); err != nil {
		t.Fatal(err)
	}
	rogue := newKey(t, jose.ES256)

	// The flood: 32 callers, each token a new random kid, for 1.5 refresh
	// intervals (each caller waits for the next fetch).
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, wrong := 0, []error(nil)
	until := time.Now().Add(DefaultKeyRefreshInterval * 3 / 2)
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(until) {
				k := &signingKey{kid: randomKid(t), alg: jose.ES256, key: rogue}
				_, err := v.Verify(t.Context(), signWith(t, k, p.claims(time.Now(), "mcp-gateway")))
				mu.Lock()
				sent++
				if !errors.Is(err, ErrSignature) {
					wrong = append(wrong, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(wrong) > 0 {
		t.Fatalf("%d of %d random-kid tokens: errors %v, want ErrSignature", len(wrong), sent, wrong[:min(len(wrong), 3)])
	}

	// The provider rotates right after the flood's last fetch.
	p.addKey(t, "rsa-2", jose.RS256)
	asked := time.Now()
	if _, err := v.Verify(t.Context(), p.sign(t, "rsa-2", p.claims(time.Now(), "mcp-gateway"))); err != nil {
		t.Fatalf("Verify(token signed by the key just published) error = %v, want it accepted on first use", err)
	}
	t.Logf("%d random-kid tokens; the new key was accepted after %v", sent, time.Since(asked).Round(time.Millisecond))

	// A made-up kid is still refused.
	k := &signingKey{kid: randomKid(t), alg: jose.ES256, key: rogue}
	if _, err := v.Verify(t.Context(), signWith(t, k, p.claims(time.Now(), "mcp-gateway"))); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify(random kid) after the rotation: error = %v, want ErrSignature", err)
	}

	// Fetches are at least DefaultKeyRefreshInterval apart: over the whole
	// test (about 2.5 intervals) no more than one per interval begun, plus
	// the first.
	elapsed := time.Since(begin)
	limit := int32(elapsed/DefaultKeyRefreshInterval) + 1
	if got := p.jwksHits.Load(); got > limit || got < 2 {
		t.Errorf("JWKS fetches = %d over %v for %d tokens, want 2 to %d", got, elapsed.Round(time.Millisecond), sent+3, limit)
	}
	t.Logf("%d JWKS fetches over %v", p.jwksHits.Load(), elapsed.Round(time.Millisecond))
	if limit > 8 {
		t.Errorf("the test ran %v: the bound on fetches (%d) is too loose to mean anything", elapsed, limit)
	}
}

// TestFetchBeforeArrivalNotTrusted: a key-set fetch that began before a
// token arrived may predate its key. The token waits for a fetch that began
// after it, instead of sharing the older one's answer and its key id being
// remembered as unknown.
func TestFetchBeforeArrivalNotTrusted(t *testing.T) {
	p := newProvider(t)
	v, err := New(Config{
		Issuers:            []Issuer{{IssuerURL: p.issuer, Audiences: []string{"mcp-gateway"}}},
		KeyRefreshInterval: 100 * time.Millisecond,
	}, Deps{HTTPClient: p.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), p.sign(t, "rsa-1", p.claims(time.Now(), "mcp-gateway"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	// A random kid starts a fetch that the provider answers with the old
	// set, slowly.
	p.holdJWKS()
	rogue := &signingKey{kid: randomKid(t), alg: jose.ES256, key: newKey(t, jose.ES256)}
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(t.Context(), signWith(t, rogue, p.claims(time.Now(), "mcp-gateway")))
		done <- err
	}()
	p.waitHeld(t)

	// Meanwhile the provider publishes rsa-2 and a token signed by it arrives.
	p.addKey(t, "rsa-2", jose.RS256)
	fresh := make(chan error, 1)
	go func() {
		_, err := v.Verify(t.Context(), p.sign(t, "rsa-2", p.claims(time.Now(), "mcp-gateway")))
		fresh <- err
	}()
	time.Sleep(50 * time.Millisecond) // the rsa-2 token is waiting on the fetch in flight
	p.releaseJWKS()
	if err := <-done; !errors.Is(err, ErrSignature) {
		t.Errorf("Verify(random kid) error = %v, want ErrSignature", err)
	}
	if err := <-fresh; err != nil {
		t.Errorf("Verify(rsa-2) while an older fetch was in flight: error = %v, want it accepted", err)
	}
	if got := p.jwksHits.Load(); got != 3 {
		t.Errorf("JWKS fetches = %d, want 3 (first use, the random kid, rsa-2)", got)
	}
}
