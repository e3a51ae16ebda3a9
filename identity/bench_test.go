package identity

import (
	"testing"
)

// BenchmarkVerify measures a token already verified (warm: a cache hit)
// and one whose signature is checked on every call (cold: cache off, keys
// already fetched).
func BenchmarkVerify(b *testing.B) {
	p := newProvider(b)
	clk := newClock(start)
	for _, kid := range []string{"rsa-1", "ec-1", "ed-1"} {
		raw := p.sign(b, kid, p.claims(clk.Now(), "mcp-gateway"))
		for _, mode := range []struct {
			name string
			size int
		}{{"warm", 0}, {"cold", -1}} {
			b.Run(mode.name+"/"+string(p.key(kid).alg), func(b *testing.B) {
				v := newVerifier(b, p, clk, func(c *Config) { c.CacheSize = mode.size })
				if _, err := v.Verify(b.Context(), raw); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(b.Context(), raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkBearerToken measures taking the token out of the header.
func BenchmarkBearerToken(b *testing.B) {
	p := newProvider(b)
	h := "Bearer " + p.sign(b, "rsa-1", p.claims(start, "mcp-gateway"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BearerToken(h); err != nil {
			b.Fatal(err)
		}
	}
}
