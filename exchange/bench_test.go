package exchange

import (
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/identity"
)

// BenchmarkExchange is the warm path: the exchanged token comes from the
// cache and is revalidated by a real identity.Verifier (its own cache).
func BenchmarkExchange(b *testing.B) {
	s := newService(b, newClock(start))
	x := newClient(b, s, nil)
	r := request(s)
	if _, err := x.Exchange(b.Context(), r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Exchange(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
	if got := s.calls.Load(); got != 1 {
		b.Fatalf("token endpoint calls = %d, want 1", got)
	}
}

// BenchmarkExchangeMiss is the miss path against the loopback token
// endpoint: a POST, the answer decoded, and the issued token's RS256
// signature checked (both caches off). The service answers a token minted
// once, so its own signing is not measured.
func BenchmarkExchangeMiss(b *testing.B) {
	s := newService(b, newClock(start))
	tok := s.mint(s.key, s.claims(server))
	s.setAnswer(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "issued_token_type": TokenTypeAccessToken, "token_type": "Bearer", "expires_in": 300})
	})
	v, err := identity.New(identity.Config{
		Issuers:   []identity.Issuer{{IssuerURL: s.URL, Audiences: []string{"mcp-gateway"}}},
		CacheSize: -1,
	}, identity.Deps{HTTPClient: s.Client(), Now: s.clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	x := newClient(b, s, func(c *Config) { c.CacheSize = -1 })
	x.profiles[DefaultProfile].verify = v.VerifyAudience
	r := request(s)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Exchange(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCacheMemory fills a cache with 100,000 exchanged tokens the
// size of those the service issues (Keycloak-like claims, RS256) and
// reports the heap they take.
func BenchmarkCacheMemory(b *testing.B) {
	const n = 100_000
	s := newService(b, newClock(start))
	tok := s.mint(s.key, s.claims(server))
	now := s.clk.Now()
	until := now.Add(DefaultExpirySkew * 10)
	var perEntry, total float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := newCache(n)
		for i := range n {
			var seed [8]byte
			binary.BigEndian.PutUint64(seed[:], uint64(i))
			c.Put(sha256.Sum256(seed[:]), pack(strings.Clone(tok)), now, until)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if c.Len() != n {
			b.Fatalf("cache holds %d entries, want %d", c.Len(), n)
		}
		total = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		perEntry = total / n
		runtime.KeepAlive(c)
	}
	b.ReportMetric(perEntry, "bytes/entry")
	b.ReportMetric(total/(1<<20), "MiB/100k")
	b.ReportMetric(float64(len(tok)), "token-bytes")
}
