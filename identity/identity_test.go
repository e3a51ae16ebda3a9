package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

var start = time.Unix(1_800_000_000, 0)

// newVerifier returns a Verifier of tokens from p for audience
// "mcp-gateway", on the clock clk.
func newVerifier(t testing.TB, p *provider, clk *clock, mod func(*Config)) *Verifier {
	t.Helper()
	c := Config{
		Issuers: []Issuer{{IssuerURL: p.issuer, Audiences: []string{"mcp-gateway"}}},
	}
	if mod != nil {
		mod(&c)
	}
	v, err := New(c, Deps{HTTPClient: p.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hs256WithPublicKey is the algorithm-confusion attack: an HS256 token
// whose HMAC secret is the provider's public RSA key, as PEM.
func hs256WithPublicKey(t *testing.T, p *provider, claims map[string]any) string {
	der, err := x509.MarshalPKIXPublicKey(p.key("rsa-1").key.Public())
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	unsignedPart := unsigned(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims, nil)
	unsignedPart = strings.TrimSuffix(unsignedPart, ".")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(unsignedPart))
	return unsignedPart + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerify(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	now := clk.Now()
	with := func(mod func(map[string]any)) map[string]any {
		c := p.claims(now, "mcp-gateway")
		mod(c)
		return c
	}
	stranger := &signingKey{kid: "rsa-1", alg: jose.RS256, key: newKey(t, jose.RS256)}

	tests := []struct {
		name  string
		token string
		want  error // nil: accepted
	}{
		{"rs256", p.sign(t, "rsa-1", p.claims(now, "mcp-gateway")), nil},
		{"es256", p.sign(t, "ec-1", p.claims(now, "mcp-gateway")), nil},
		{"eddsa", p.sign(t, "ed-1", p.claims(now, "mcp-gateway")), nil},
		{"one of several audiences", p.sign(t, "rsa-1", p.claims(now, "other", "mcp-gateway")), nil},
		{"aud as a string", p.sign(t, "rsa-1", with(func(c map[string]any) { c["aud"] = "mcp-gateway" })), nil},
		{"expired within leeway", p.sign(t, "rsa-1", with(func(c map[string]any) { c["exp"] = now.Add(-20 * time.Second).Unix() })), nil},
		{"nbf within leeway", p.sign(t, "rsa-1", with(func(c map[string]any) { c["nbf"] = now.Add(20 * time.Second).Unix() })), nil},
		{"alg none", unsigned(t, map[string]any{"alg": "none", "typ": "JWT"}, p.claims(now, "mcp-gateway"), nil), ErrAlgorithm},
		{"hs256 signed with the public key", hs256WithPublicKey(t, p, p.claims(now, "mcp-gateway")), ErrAlgorithm},
		{"unknown kid", signWith(t, &signingKey{kid: "nope", alg: jose.RS256, key: stranger.key}, p.claims(now, "mcp-gateway")), ErrSignature},
		{"known kid, other key", signWith(t, stranger, p.claims(now, "mcp-gateway")), ErrSignature},
		{"expired", p.sign(t, "rsa-1", with(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() })), ErrExpired},
		{"nbf in the future", p.sign(t, "rsa-1", with(func(c map[string]any) { c["nbf"] = now.Add(time.Minute).Unix() })), ErrNotYetValid},
		{"no exp", p.sign(t, "rsa-1", with(func(c map[string]any) { delete(c, "exp") })), ErrMalformed},
		{"nbf not a number", p.sign(t, "rsa-1", with(func(c map[string]any) { c["nbf"] = "soon" })), ErrMalformed},
		{"wrong iss", p.sign(t, "rsa-1", with(func(c map[string]any) { c["iss"] = "https://evil.example" })), ErrIssuer},
		{"no iss", p.sign(t, "rsa-1", with(func(c map[string]any) { delete(c, "iss") })), ErrIssuer},
		{"wrong aud", p.sign(t, "rsa-1", p.claims(now, "other")), ErrAudience},
		{"no aud", p.sign(t, "rsa-1", with(func(c map[string]any) { delete(c, "aud") })), ErrAudience},
		{"garbage base64", "e30.%%%garbage%%%.c2ln", ErrMalformed},
		{"garbage json", "bm90IGpzb24.bm90IGpzb24.c2ln", ErrMalformed},
		{"two parts", "e30.e30", ErrMalformed},
		{"four parts", "e30.e30.e30.e30", ErrMalformed},
		{"over 16 KiB", p.sign(t, "rsa-1", with(func(c map[string]any) { c["pad"] = strings.Repeat("x", MaxTokenBytes) })), ErrMalformed},
		{"empty", "", ErrMissing},
		{"tampered payload", tamper(t, p.sign(t, "rsa-1", p.claims(now, "mcp-gateway")), with(func(c map[string]any) { c["sub"] = "root" })), ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(t.Context(), tt.token)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify() error = %v, want %v", err, tt.want)
			}
			if err != nil {
				if tt.token != "" && strings.Contains(err.Error(), tt.token) {
					t.Errorf("error %q contains the token", err)
				}
				if id != nil {
					t.Errorf("Verify() returned an identity with error %v", err)
				}
				return
			}
			if id.Subject != "alice-id" || id.Issuer != p.issuer || id.Claims["preferred_username"] != "alice" {
				t.Errorf("Verify() = %+v", id)
			}
		})
	}
}

// tamper replaces the payload of a signed token.
func tamper(t *testing.T, token string, claims map[string]any) string {
	parts := strings.Split(token, ".")
	forged := strings.Split(unsigned(t, map[string]any{}, claims, nil), ".")
	return parts[0] + "." + forged[1] + "." + parts[2]
}

func TestVerifyIdentity(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	raw := p.sign(t, "rsa-1", p.claims(clk.Now(), "mcp-gateway"))
	id, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	want := &Identity{
		Subject:  "alice-id",
		Issuer:   p.issuer,
		Audience: []string{"mcp-gateway"},
		Expiry:   clk.Now().Add(time.Hour),
		Claims: map[string]any{
			"iss": p.issuer, "sub": "alice-id", "aud": []any{"mcp-gateway"},
			"exp": float64(clk.Now().Add(time.Hour).Unix()), "iat": float64(clk.Now().Unix()),
			"preferred_username": "alice",
			"resource_access":    map[string]any{"mcp-gateway": map[string]any{"roles": []any{"pods_list"}}},
		},
	}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("Verify() mismatch (-want +got):\n%s", diff)
	}
}

func TestVerifyAudience(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	now := clk.Now()
	tests := []struct {
		name     string
		aud      []string
		audience string
		want     error
	}{
		{"exactly the audience", []string{"mcp-test/kubernetes-mcp"}, "mcp-test/kubernetes-mcp", nil},
		{"not configured for Verify yet accepted here", []string{"server-b"}, "server-b", nil},
		{"another audience", []string{"server-b"}, "mcp-test/kubernetes-mcp", ErrAudience},
		{"audience among others", []string{"mcp-test/kubernetes-mcp", "server-b"}, "mcp-test/kubernetes-mcp", ErrAudience},
		{"no audience requested", []string{"server-b"}, "", ErrAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := p.sign(t, "rsa-1", p.claims(now, tt.aud...))
			_, err := v.VerifyAudience(t.Context(), raw, tt.audience)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("VerifyAudience() error = %v, want %v", err, tt.want)
			}
		})
	}
	// A token cached by VerifyAudience is still checked against the
	// configured audiences by Verify.
	raw := p.sign(t, "rsa-1", p.claims(now, "server-b"))
	if _, err := v.VerifyAudience(t.Context(), raw, "server-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), raw); !errors.Is(err, ErrAudience) {
		t.Errorf("Verify() of a cached server-b token: error = %v, want ErrAudience", err)
	}
}

func TestUnknownKidRefreshesOnce(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	now := clk.Now()
	if _, err := v.Verify(t.Context(), p.sign(t, "rsa-1", p.claims(now, "mcp-gateway"))); err != nil {
		t.Fatal(err)
	}
	if got := p.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetches after the first token = %d, want 1", got)
	}
	rogue := &signingKey{kid: "rogue", alg: jose.RS256, key: newKey(t, jose.RS256)}
	clk.Advance(DefaultKeyRefreshInterval)
	for i := range 20 {
		c := p.claims(now, "mcp-gateway")
		c["n"] = i
		if _, err := v.Verify(t.Context(), signWith(t, rogue, c)); !errors.Is(err, ErrSignature) {
			t.Fatalf("Verify(unknown kid) error = %v, want ErrSignature", err)
		}
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetches after 20 unknown kids = %d, want 2 (one refresh)", got)
	}
	// Past the refresh interval the kid that fetch did not find is still
	// refused without another one (it was updated: the kid is remembered as
	// unknown for unknownKeyTTL, so replaying it costs nothing)...
	clk.Advance(DefaultKeyRefreshInterval)
	if _, err := v.Verify(t.Context(), signWith(t, rogue, p.claims(now, "mcp-gateway"))); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify(unknown kid) error = %v, want ErrSignature", err)
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetches for a kid known to be unknown = %d, want 2", got)
	}
	// ...and looked for again once that has passed.
	clk.Advance(unknownKeyTTL)
	if _, err := v.Verify(t.Context(), signWith(t, rogue, p.claims(now, "mcp-gateway"))); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify(unknown kid) error = %v, want ErrSignature", err)
	}
	if got := p.jwksHits.Load(); got != 3 {
		t.Errorf("JWKS fetches once unknownKeyTTL passed = %d, want 3", got)
	}
}

func TestKeyRotation(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	if _, err := v.Verify(t.Context(), p.sign(t, "rsa-1", p.claims(clk.Now(), "mcp-gateway"))); err != nil {
		t.Fatal(err)
	}
	// The provider rotates: a new key signs, the old one is withdrawn.
	clk.Advance(time.Minute)
	p.addKey(t, "rsa-2", jose.RS256)
	p.removeKey("rsa-1")
	if _, err := v.Verify(t.Context(), p.sign(t, "rsa-2", p.claims(clk.Now(), "mcp-gateway"))); err != nil {
		t.Fatalf("Verify(new kid) error = %v", err)
	}
	if got := p.jwksHits.Load(); got != 2 {
		t.Errorf("JWKS fetches = %d, want 2", got)
	}
}

func TestKeyMaxAge(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	sign := func(n int) string {
		c := p.claims(clk.Now(), "mcp-gateway")
		c["n"] = n
		return p.sign(t, "ec-1", c)
	}
	if _, err := v.Verify(t.Context(), sign(1)); err != nil {
		t.Fatal(err)
	}
	withdrawn := p.key("ec-1")
	p.removeKey("ec-1")
	// Younger than KeyMaxAge, the key set is trusted as it is.
	clk.Advance(DefaultKeyMaxAge - time.Second)
	if _, err := v.Verify(t.Context(), signWith(t, withdrawn, p.claims(clk.Now(), "mcp-gateway"))); err != nil {
		t.Fatal(err)
	}
	if got := p.jwksHits.Load(); got != 1 {
		t.Fatalf("JWKS fetches before KeyMaxAge = %d, want 1", got)
	}
	// Older, a verification starts a fetch in the background...
	clk.Advance(time.Second)
	if _, err := v.Verify(t.Context(), signWith(t, withdrawn, p.claims(clk.Now(), "mcp-gateway"))); err != nil {
		t.Fatalf("Verify() while the key set is refreshed: %v", err)
	}
	waitKeyFetch(t, v, p, 2)
	// ...after which the withdrawn key is no longer trusted.
	if _, err := v.Verify(t.Context(), signWith(t, withdrawn, p.claims(clk.Now(), "mcp-gateway"))); !errors.Is(err, ErrSignature) {
		t.Errorf("Verify() with a withdrawn key: error = %v, want ErrSignature", err)
	}
}

// waitKeyFetch waits for the background fetch of p's key set, if one runs,
// then checks the count of JWKS fetches.
func waitKeyFetch(t *testing.T, v *Verifier, p *provider, want int32) {
	t.Helper()
	ks := v.issuers[p.issuer].keys
	ks.gate.mu.Lock()
	f := ks.gate.cur
	ks.gate.mu.Unlock()
	if f != nil {
		<-f.done
	}
	if got := p.jwksHits.Load(); got != want {
		t.Fatalf("JWKS fetches past KeyMaxAge = %d, want %d", got, want)
	}
}

func TestProviderDownAtStart(t *testing.T) {
	p := newProvider(t)
	p.down.Store(true)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil) // must not fail: no network at construction
	raw := p.sign(t, "rsa-1", p.claims(clk.Now(), "mcp-gateway"))
	for range 3 {
		if _, err := v.Verify(t.Context(), raw); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Verify() with the provider down: error = %v, want ErrUnavailable", err)
		}
	}
	if got := p.discoveryHits.Load(); got != 0 { // the handler counts only when up
		t.Errorf("discovery hits while down = %d", got)
	}
	p.down.Store(false)
	clk.Advance(retryAfterFailure)
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("Verify() once the provider is back: %v", err)
	}
	if d, j := p.discoveryHits.Load(), p.jwksHits.Load(); d != 1 || j != 1 {
		t.Errorf("discovery, JWKS hits = %d, %d; want 1, 1", d, j)
	}
}

func TestKeySetDownAfterDiscovery(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, func(c *Config) { c.Issuers[0].JWKSURL = p.URL + "/jwks" })
	p.down.Store(true)
	raw := p.sign(t, "rsa-1", p.claims(clk.Now(), "mcp-gateway"))
	if _, err := v.Verify(t.Context(), raw); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify() with the JWKS down: error = %v, want ErrUnavailable", err)
	}
	p.down.Store(false)
	clk.Advance(retryAfterFailure)
	if _, err := v.Verify(t.Context(), raw); err != nil {
		t.Fatalf("Verify() once the JWKS is back: %v", err)
	}
	if got := p.discoveryHits.Load(); got != 0 {
		t.Errorf("discovery hits with an explicit jwksURL = %d, want 0", got)
	}
}

// TestProviderDownUnknownKid: with the key set unreachable, a token signed by
// a key not in the cache is unavailable (503), not invalid (401), both on the
// fetch that fails and while the next fetch waits.
func TestProviderDownUnknownKid(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	now := clk.Now()
	if _, err := v.Verify(t.Context(), p.sign(t, "rsa-1", p.claims(now, "mcp-gateway"))); err != nil {
		t.Fatal(err)
	}
	p.down.Store(true)
	clk.Advance(DefaultKeyRefreshInterval)
	rogue := &signingKey{kid: "new", alg: jose.RS256, key: newKey(t, jose.RS256)}
	for i := range 3 {
		c := p.claims(now, "mcp-gateway")
		c["n"] = i
		if _, err := v.Verify(t.Context(), signWith(t, rogue, c)); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Verify(unknown kid) #%d with the provider down: error = %v, want ErrUnavailable", i, err)
		}
	}
}

func TestUnreachableProvider(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	raw := p.sign(t, "rsa-1", p.claims(clk.Now(), "mcp-gateway"))
	p.Close()
	if _, err := v.Verify(t.Context(), raw); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify() with the provider gone: error = %v, want ErrUnavailable", err)
	}
}

func TestCache(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	c := p.claims(clk.Now(), "mcp-gateway")
	c["exp"] = clk.Now().Add(time.Minute).Unix()
	raw := p.sign(t, "rsa-1", c)
	first, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	// The provider's keys vanish: a cache hit needs none.
	p.removeKey("rsa-1")
	clk.Advance(DefaultKeyRefreshInterval)
	second, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("the second Verify of one token did not come from the cache")
	}
	// Past exp + leeway, the cached token is refused.
	clk.Advance(time.Minute + DefaultLeeway)
	if _, err := v.Verify(t.Context(), raw); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify() of an expired cached token: error = %v, want ErrExpired", err)
	}
	// It is refused as expired from the cache, with no signature check:
	// so even once a key-set refresh past KeyMaxAge forgot its key. The
	// refresh is started by a token for another audience, refused and so
	// not put in the cache (a put would drop the expired entry).
	clk.Advance(DefaultKeyMaxAge)
	if _, err := v.Verify(t.Context(), p.sign(t, "ec-1", p.claims(clk.Now(), "elsewhere"))); !errors.Is(err, ErrAudience) {
		t.Fatalf("Verify() for another audience: error = %v, want ErrAudience", err)
	}
	waitKeyFetch(t, v, p, 2)
	if _, err := v.Verify(t.Context(), raw); !errors.Is(err, ErrExpired) {
		t.Errorf("Verify() of an expired cached token whose key is gone: error = %v, want ErrExpired", err)
	}
}

func TestCacheBounded(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, func(c *Config) { c.CacheSize = 3 })
	raws := make([]string, 10)
	ids := make([]*Identity, 10)
	for i := range raws {
		c := p.claims(clk.Now(), "mcp-gateway")
		c["exp"] = clk.Now().Add(time.Duration(i+1) * time.Minute).Unix()
		raws[i] = p.sign(t, "ed-1", c)
		id, err := v.Verify(t.Context(), raws[i])
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	if n := v.cache.Len(); n != 3 {
		t.Fatalf("cache holds %d entries, want 3", n)
	}
	// The three latest-expiring tokens are kept: verified again, they
	// give back the Identity first returned. The others are verified anew
	// (and, expiring sooner than all cached, not kept).
	for i := len(raws) - 1; i >= 0; i-- {
		id, err := v.Verify(t.Context(), raws[i])
		if err != nil {
			t.Fatal(err)
		}
		if cached, want := id == ids[i], i >= 7; cached != want {
			t.Errorf("token expiring in %d min: from the cache %v, want %v", i+1, cached, want)
		}
	}
}

func TestConcurrentVerify(t *testing.T) {
	p := newProvider(t)
	clk := newClock(start)
	v := newVerifier(t, p, clk, nil)
	raw := p.sign(t, "ec-1", p.claims(clk.Now(), "mcp-gateway"))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), raw); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d, j := p.discoveryHits.Load(), p.jwksHits.Load(); d != 1 || j != 1 {
		t.Errorf("discovery, JWKS hits = %d, %d; want 1, 1", d, j)
	}
}

func TestMultipleIssuers(t *testing.T) {
	a, b := newProvider(t), newProvider(t, "b")
	clk := newClock(start)
	v, err := New(Config{
		Issuers: []Issuer{
			{IssuerURL: a.issuer, Audiences: []string{"aud-a"}},
			{IssuerURL: b.issuer, Audiences: []string{"aud-b"}, Algorithms: []string{"ES256"}},
		},
	}, Deps{HTTPClient: http.DefaultClient, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	// b signing with a's key id and a claim of a's issuer: a's keys do
	// not verify it.
	forged := b.sign(t, "rsa-1", a.claims(now, "aud-a"))
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"issuer a", a.sign(t, "rsa-1", a.claims(now, "aud-a")), nil},
		{"issuer b", b.sign(t, "ec-1", b.claims(now, "aud-b")), nil},
		{"issuer a, audience of b", a.sign(t, "rsa-1", a.claims(now, "aud-b")), ErrAudience},
		{"issuer b, algorithm not configured for b", b.sign(t, "rsa-1", b.claims(now, "aud-b")), ErrAlgorithm},
		{"signed by b, claiming a", forged, ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(t.Context(), tt.token)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify() error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	ok := Issuer{IssuerURL: "https://idp.example/realms/mcp", Audiences: []string{"mcp-gateway"}}
	tests := []struct {
		name    string
		issuers []Issuer
	}{
		{"no issuers", nil},
		{"relative issuer", []Issuer{{IssuerURL: "/realms/mcp", Audiences: []string{"a"}}}},
		{"no audiences", []Issuer{{IssuerURL: ok.IssuerURL}}},
		{"empty audience", []Issuer{{IssuerURL: ok.IssuerURL, Audiences: []string{""}}}},
		{"none", []Issuer{{IssuerURL: ok.IssuerURL, Audiences: ok.Audiences, Algorithms: []string{"none"}}}},
		{"hmac", []Issuer{{IssuerURL: ok.IssuerURL, Audiences: ok.Audiences, Algorithms: []string{"HS256"}}}},
		{"bad jwksURL", []Issuer{{IssuerURL: ok.IssuerURL, Audiences: ok.Audiences, JWKSURL: "file:///etc/keys"}}},
		{"duplicate issuer", []Issuer{ok, ok}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(Config{Issuers: tt.issuers}, Deps{}); err == nil {
				t.Error("New() accepted the config")
			}
		})
	}
	if _, err := New(Config{Issuers: []Issuer{ok}}, Deps{}); err != nil {
		t.Errorf("New() of a valid config: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	long := strings.Repeat("a", MaxTokenBytes+1)
	tests := []struct {
		name   string
		header string
		want   string
		err    error
	}{
		{"bearer", "Bearer abc.def.ghi", "abc.def.ghi", nil},
		{"scheme case-insensitive", "bEaReR abc.def.ghi", "abc.def.ghi", nil},
		{"token68 padding", "Bearer abc/+~-_.x==", "abc/+~-_.x==", nil},
		{"largest", "Bearer " + long[1:], long[1:], nil},
		{"empty", "", "", ErrMissing},
		{"basic", "Basic YWxpY2U6c2VjcmV0", "", ErrMissing},
		{"scheme only", "Bearer", "", ErrMalformed},
		{"empty token", "Bearer ", "", ErrMalformed},
		{"two headers joined", "Bearer abc.def.ghi,Bearer jkl.mno.pqr", "", ErrMalformed},
		{"two headers joined with a space", "Bearer abc.def.ghi, Bearer jkl.mno.pqr", "", ErrMalformed},
		{"bearer and basic joined", "Basic YWxp, Bearer abc.def.ghi", "", ErrMalformed},
		{"over 16 KiB", "Bearer " + long, "", ErrMalformed},
		{"two spaces", "Bearer  abc", "", ErrMalformed},
		{"trailing space", "Bearer abc ", "", ErrMalformed},
		{"tab", "Bearer\tabc", "", ErrMissing},
		{"padding inside", "Bearer ab=c", "", ErrMalformed},
		{"quote", `Bearer "abc"`, "", ErrMalformed},
		{"only padding", "Bearer ==", "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BearerToken(tt.header)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("BearerToken() error = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("BearerToken() = %q, want %q", got, tt.want)
			}
			if err != nil && len(tt.header) > 8 && strings.Contains(err.Error(), tt.header[7:]) {
				t.Errorf("error %q contains the token", err)
			}
		})
	}
}
