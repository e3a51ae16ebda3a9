package envoy

import (
	"net/http"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/internal/authztest"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/devidp"
	"github.com/mcp-authz/mcp-authz/internal/devidp/devidptest"
	"github.com/mcp-authz/mcp-authz/policy"
)

// BenchmarkCheckIdentity is BenchmarkCheck with the token path on and warm:
// alice's JWT from the Keycloak-shaped dev provider (in-process, loopback
// HTTP) verified by a real identity.Verifier from its key and token caches,
// the exchange for the server's audience answered from the exchange cache
// (the exchanged token revalidated from the verifier's cache), and the
// Keycloak tool-roles CEL policy over the exchanged token's claims.
func BenchmarkCheckIdentity(b *testing.B) {
	const kube = "mcp-test/kubernetes-mcp"
	p, idp := devidptest.Serve(b, devidp.Config{
		DefaultAudiences: []string{"mcp-gateway"},
		Clients: []devidp.Client{
			{ID: "mcp-gateway", Secret: "gw-secret", TokenExchange: []string{kube}},
			{ID: "mcp-cli", Public: true},
			{ID: kube},
		},
		Users: []devidp.User{{Username: "alice", Password: "alice", ClientRoles: map[string][]string{kube: {"pods_list"}}}},
	})

	v, err := identity.New(identity.Config{
		Issuers: []identity.Issuer{{IssuerURL: p.Issuer(), Audiences: []string{"mcp-gateway"}}},
	}, identity.Deps{HTTPClient: idp.Client()})
	if err != nil {
		b.Fatal(err)
	}
	b.Setenv("MCP_AUTHZ_BENCH_GATEWAY_SECRET", "gw-secret")
	var calls countingTransport
	calls.base = idp.Client().Transport
	x, err := exchange.New(exchange.Config{TokenURL: p.TokenURL(), ClientID: "mcp-gateway", ClientSecretEnv: "MCP_AUTHZ_BENCH_GATEWAY_SECRET"}, exchange.Deps{HTTPClient: &http.Client{Transport: &calls}, Verifier: v})
	if err != nil {
		b.Fatal(err)
	}
	s := newServer(b, authz.Config{}, authz.Deps{
		Policy: authztest.Engine(b, policy.Policy{
			Name: "tool-roles", Servers: []string{"*"}, CEL: `mcp.tool.name in token.resource_access[mcp.server].roles`,
		}),
		Verifier: v, Exchanger: x,
	})

	req := checkRequest("POST", body1KiB, map[string]string{"authorization": "Bearer " + devidptest.Login(b, idp, p, "alice", "alice")})
	if _, err := s.Check(b.Context(), req); err != nil { // warms both caches
		b.Fatal(err)
	}
	benchCheck(b, s, req)
	if n := calls.n; n != 1 {
		b.Fatalf("token endpoint calls = %d, want 1 (the cache is not warm)", n)
	}
}

// countingTransport counts the requests it carries. The benchmark's loop
// runs on one goroutine, so a plain counter does.
type countingTransport struct {
	base http.RoundTripper
	n    int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n++
	return c.base.RoundTrip(r)
}
