package exchange_test

import (
	"testing"

	"github.com/mcp-authz/mcp-authz/exchange"
)

// benchChain measures Exchange of profile against the dev provider on
// loopback over HTTPS. Warm: served from the cache and revalidated by the
// profile's own verifier. Cold: the cache off, every call makes every step
// (a fresh grant each time: B refuses a grant used twice) and validates
// the final token's signature once per new token.
func benchChain(b *testing.B, profile string, cold bool) {
	c := newChain(b, nil)
	x := c.newClient(b, map[string]exchange.Profile{"hub": c.hub(), "spoke": c.spoke()}, func(cfg *exchange.Config) {
		if cold {
			cfg.CacheSize = -1
		}
	})
	raw, id := c.login(b, "alice")
	r := exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, Audience: kubeServer, Profile: profile, Target: "b"}
	if _, err := x.Exchange(b.Context(), r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.Exchange(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChainOneStepWarm(b *testing.B) { benchChain(b, "hub", false) }
func BenchmarkChainOneStepCold(b *testing.B) { benchChain(b, "hub", true) }
func BenchmarkChainTwoStepWarm(b *testing.B) { benchChain(b, "spoke", false) }
func BenchmarkChainTwoStepCold(b *testing.B) { benchChain(b, "spoke", true) }
