package exchange_test

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/devidp"
	"github.com/mcp-authz/mcp-authz/internal/devidp/devidptest"
)

// TestDevIdP runs identity and exchange against the Keycloak-shaped dev
// provider (zitadel's op underneath): a password login, the caller token
// verified, exchanged for each server, refusals, and key rotation.
func TestDevIdP(t *testing.T) {
	const kube, other = "mcp-test/kubernetes-mcp", "mcp-test/everything"
	p, srv := devidptest.Serve(t, devidp.Config{
		DefaultAudiences: []string{"mcp-gateway"},
		Clients: []devidp.Client{
			{ID: "mcp-gateway", Secret: "gw-secret", TokenExchange: []string{kube}},
			{ID: "mcp-cli", Public: true},
			{ID: kube},
			{ID: other},
		},
		Users: []devidp.User{{Username: "alice", Password: "alice", ClientRoles: map[string][]string{kube: {"pods_list"}, other: {"echo"}}}},
	})

	// The provider reads the wall clock; the verifier's clock runs ahead
	// of it when the test needs the key-refresh interval to have passed.
	var ahead atomic.Int64
	v, err := identity.New(identity.Config{
		Issuers: []identity.Issuer{{IssuerURL: p.Issuer(), Audiences: []string{"mcp-gateway"}}},
	}, identity.Deps{HTTPClient: srv.Client(), Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCP_AUTHZ_TEST_GATEWAY_SECRET", "gw-secret")
	x, err := exchange.New(exchange.Config{TokenURL: p.TokenURL(), ClientID: "mcp-gateway", ClientSecretEnv: "MCP_AUTHZ_TEST_GATEWAY_SECRET"}, exchange.Deps{HTTPClient: srv.Client(), Verifier: v})
	if err != nil {
		t.Fatal(err)
	}

	login := func(t *testing.T) (string, *identity.Identity) {
		t.Helper()
		raw := devidptest.Login(t, srv, p, "alice", "alice")
		id, err := v.Verify(t.Context(), raw)
		if err != nil {
			t.Fatalf("Verify(alice's token): %v", err)
		}
		return raw, id
	}
	exchangeFor := func(t *testing.T, raw string, id *identity.Identity, audience string) (*exchange.Token, error) {
		return x.Exchange(t.Context(), exchange.Request{SubjectToken: raw, SubjectExpiry: id.Expiry, SubjectAudience: id.Audience, Audience: audience})
	}

	raw, caller := login(t)
	tok, err := exchangeFor(t, raw, caller, kube)
	if err != nil {
		t.Fatalf("Exchange(%s): %v", kube, err)
	}
	if !tok.Exchanged || tok.Claims["sub"] != caller.Subject || !slices.Equal(tok.Claims["aud"].([]any), []any{kube}) {
		t.Errorf("exchanged token claims = %v, want sub %q and aud %q", tok.Claims, caller.Subject, kube)
	}
	if _, err := v.VerifyAudience(t.Context(), tok.AccessToken, kube); err != nil {
		t.Errorf("the exchanged token does not verify for %s: %v", kube, err)
	}

	var refused *exchange.RetrieveError
	if _, err := exchangeFor(t, raw, caller, other); !errors.As(err, &refused) || refused.ErrorCode == "" {
		t.Errorf("Exchange(%s), a client the gateway may not exchange to: error = %v, want a RetrieveError with a code", other, err)
	}

	// Keys rotated at the provider: new tokens verify and exchange without
	// a restart.
	if err := p.RotateKeys(); err != nil {
		t.Fatal(err)
	}
	ahead.Store(int64(identity.DefaultKeyRefreshInterval))
	raw2, caller2 := login(t)
	if _, err := exchangeFor(t, raw2, caller2, kube); err != nil {
		t.Errorf("Exchange after key rotation: %v", err)
	}
	if raw2 == raw {
		t.Error("the second login returned the same token")
	}
}
