package exchange

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/identity"
)

var start = time.Unix(1_800_000_000, 0)

const (
	clientID = "mcp gateway"    // a space: RFC 6749 2.3.1 encoding matters
	secret   = "s3cr:t/+%é&x=y" // so do these
	server   = "mcp-test/kubernetes-mcp"
)

// service is a real token service on loopback: discovery, JWKS and an
// RFC 8693 token endpoint that checks the client and mints JWTs for the
// requested audience. answer, when set, replaces the honest answer.
type service struct {
	*httptest.Server
	key   *rsa.PrivateKey
	rogue *rsa.PrivateKey // a key not in the JWKS
	clk   *clock

	calls atomic.Int32
	// mu guards answer, forms and life.
	mu     sync.Mutex
	answer http.HandlerFunc
	forms  []url.Values
	life   time.Duration // of minted tokens
}

func newService(t testing.TB, clk *clock) *service {
	t.Helper()
	s := &service{clk: clk, life: 5 * time.Minute}
	s.key, s.rogue = keys()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"issuer": s.URL, "jwks_uri": s.URL + "/jwks", "token_endpoint": s.URL + "/token"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: s.key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", s.token)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *service) setAnswer(h http.HandlerFunc) {
	s.mu.Lock()
	s.answer = h
	s.mu.Unlock()
}

func (s *service) lastForm() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.forms) == 0 {
		return nil
	}
	return s.forms[len(s.forms)-1]
}

// keys are the service's signing key and a key outside its JWKS,
// generated once: RSA key generation is slow on a loaded machine.
var keys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

// token is the token endpoint.
func (s *service) token(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	s.mu.Lock()
	s.forms = append(s.forms, r.PostForm)
	answer := s.answer
	s.mu.Unlock()
	if answer != nil {
		answer(w, r)
		return
	}
	id, sec, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		sec, _ = url.QueryUnescape(sec)
	} else {
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != clientID || sec != secret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != grantType || f.Get("subject_token_type") != TokenTypeAccessToken || f.Get("subject_token") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if f.Get("audience") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_target"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      s.mint(s.key, s.claims(f.Get("audience"))),
		"issued_token_type": TokenTypeAccessToken,
		"token_type":        "Bearer",
		"expires_in":        int(s.life / time.Second),
	})
}

// claims are those of a token minted now for aud.
func (s *service) claims(aud string) map[string]any {
	now := s.clk.Now()
	s.mu.Lock()
	life := s.life
	s.mu.Unlock()
	return map[string]any{
		"iss": s.URL, "sub": "alice-id", "aud": aud, "azp": "mcp-gateway",
		"exp": now.Add(life).Unix(), "iat": now.Unix(), "jti": rand.Text(),
		"preferred_username": "alice",
		"resource_access":    map[string]any{aud: map[string]any{"roles": []string{"pods_list", "pods_get"}}},
	}
}

// mint signs claims with key.
func (s *service) mint(key *rsa.PrivateKey, claims map[string]any) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := sig.Sign(b)
	if err != nil {
		panic(err)
	}
	raw, _ := jws.CompactSerialize()
	return raw
}

// newClient returns a Client of s, validating with a real identity
// Verifier of s's tokens.
func newClient(t testing.TB, s *service, mod func(*Config)) *Client {
	t.Helper()
	v, err := identity.New(identity.Config{
		Issuers: []identity.Issuer{{IssuerURL: s.URL, Audiences: []string{"mcp-gateway"}}},
	}, identity.Deps{HTTPClient: s.Client(), Now: s.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Config{
		TokenURL:         s.URL + "/token",
		ClientID:         clientID,
		ClientSecretFile: file,
	}
	if mod != nil {
		mod(&c)
	}
	x, err := New(c, Deps{HTTPClient: s.Client(), Verifier: v, Now: s.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return x
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
