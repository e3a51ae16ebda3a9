package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// provider is a real OIDC provider on loopback: discovery, a JWKS and
// signing keys of each algorithm family. Tests mint tokens with sign.
type provider struct {
	*httptest.Server
	issuer string

	discoveryHits atomic.Int32
	jwksHits      atomic.Int32
	down          atomic.Bool // answer 503 to everything
	hold          atomic.Pointer[jwksHold]
	held          *jwksHold // the last hold, for waitHeld and releaseJWKS

	// mu guards keys.
	mu   sync.Mutex
	keys map[string]*signingKey // by kid, published in the JWKS
}

type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

// newProvider starts a provider. Providers with the same label (none by
// default) share their initial keys, generated once per test binary.
func newProvider(t testing.TB, label ...string) *provider {
	t.Helper()
	return startProvider(t, false, label...)
}

// newTLSProvider starts a provider serving HTTPS with a certificate of
// httptest's own CA, which no client trusts unless told to.
func newTLSProvider(t testing.TB) *provider {
	t.Helper()
	return startProvider(t, true)
}

func startProvider(t testing.TB, useTLS bool, label ...string) *provider {
	t.Helper()
	p := &provider{keys: map[string]*signingKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		p.discoveryHits.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                p.issuer,
			"jwks_uri":                              p.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		set := p.jwks()
		if h := p.hold.Swap(nil); h != nil {
			close(h.arrived)
			<-h.release
		}
		writeJSON(w, set)
	})
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	if useTLS {
		p.StartTLS()
	} else {
		p.Start()
	}
	t.Cleanup(p.Close)
	p.issuer = p.URL
	l := strings.Join(label, "")
	for _, k := range []*signingKey{{kid: "rsa-1", alg: jose.RS256}, {kid: "ec-1", alg: jose.ES256}, {kid: "ed-1", alg: jose.EdDSA}} {
		k.key = sharedKey(t, l+"/"+k.kid, k.alg)
		p.keys[k.kid] = k
	}
	return p
}

var sharedKeys sync.Map // label -> crypto.Signer

// sharedKey returns the key of label, generated on first use: RSA key
// generation is slow on a loaded machine.
func sharedKey(t testing.TB, label string, alg jose.SignatureAlgorithm) crypto.Signer {
	if k, ok := sharedKeys.Load(label); ok {
		return k.(crypto.Signer)
	}
	k, _ := sharedKeys.LoadOrStore(label, newKey(t, alg))
	return k.(crypto.Signer)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// newKey makes a private key for alg.
func newKey(t testing.TB, alg jose.SignatureAlgorithm) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case jose.RS256, jose.PS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *provider) addKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) {
	t.Helper()
	k := &signingKey{kid: kid, alg: alg, key: newKey(t, alg)}
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
}

// jwksHold holds the answer of the next JWKS request, as read when it
// arrived, until released.
type jwksHold struct{ arrived, release chan struct{} }

// holdJWKS makes the next JWKS request take the key set as it is when the
// request arrives and answer it only on releaseJWKS.
func (p *provider) holdJWKS() {
	p.hold.Store(&jwksHold{arrived: make(chan struct{}), release: make(chan struct{})})
	p.held = p.hold.Load()
}

// waitHeld waits until the held JWKS request has arrived.
func (p *provider) waitHeld(t testing.TB) {
	t.Helper()
	select {
	case <-p.held.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no JWKS request arrived")
	}
}

func (p *provider) releaseJWKS() { close(p.held.release) }

func (p *provider) removeKey(kid string) {
	p.mu.Lock()
	delete(p.keys, kid)
	p.mu.Unlock()
}

func (p *provider) key(kid string) *signingKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[kid]
}

func (p *provider) jwks() jose.JSONWebKeySet {
	p.mu.Lock()
	defer p.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range p.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	return set
}

// claims are a token's claims for issuer p, audience aud, valid from now
// for an hour.
func (p *provider) claims(now time.Time, aud ...string) map[string]any {
	return map[string]any{
		"iss":                p.issuer,
		"sub":                "alice-id",
		"aud":                aud,
		"exp":                now.Add(time.Hour).Unix(),
		"iat":                now.Unix(),
		"preferred_username": "alice",
		"resource_access":    map[string]any{"mcp-gateway": map[string]any{"roles": []string{"pods_list"}}},
	}
}

// sign signs claims with the key kid.
func (p *provider) sign(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	k := p.key(kid)
	if k == nil {
		t.Fatalf("no key %q", kid)
	}
	return signWith(t, k, claims)
}

func signWith(t testing.TB, k *signingKey, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsigned builds a compact JWS from a header, claims and signature by
// hand, for algorithms no honest signer uses.
func unsigned(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// clock is a settable clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
