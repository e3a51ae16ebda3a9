package exchange_test

import (
	"context"
	"errors"
	"log"
	"net/http"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
)

// The gateway verifies the caller's token, then trades it for one minted
// for the server it calls. The verifier also checks every token the
// service issues: its issuer, signature, expiry and audience.
func ExampleClient_Exchange() {
	realm := "https://keycloak.example/realms/mcp"
	v, err := identity.New(identity.Config{
		Issuers: []identity.Issuer{{IssuerURL: realm, Audiences: []string{"mcp-gateway"}}},
	}, identity.Deps{HTTPClient: http.DefaultClient})
	if err != nil {
		log.Fatal(err)
	}
	x, err := exchange.New(exchange.Config{
		TokenURL:        realm + "/protocol/openid-connect/token",
		ClientID:        "mcp-gateway",
		ClientSecretEnv: "MCP_GATEWAY_SECRET",
	}, exchange.Deps{HTTPClient: http.DefaultClient, Verifier: v})
	if err != nil {
		log.Fatal(err)
	}
	upstream := func(ctx context.Context, callerToken string) (string, int) {
		caller, err := v.Verify(ctx, callerToken)
		if err != nil {
			return "", http.StatusUnauthorized
		}
		tok, err := x.Exchange(ctx, exchange.Request{
			SubjectToken:    callerToken,
			SubjectExpiry:   caller.Expiry,
			SubjectAudience: caller.Audience,
			Audience:        "mcp-test/kubernetes-mcp",
		})
		var refused *exchange.RetrieveError
		switch {
		case errors.As(err, &refused):
			return "", http.StatusForbidden // e.g. invalid_target
		case err != nil:
			return "", http.StatusServiceUnavailable
		}
		return "Bearer " + tok.AccessToken, http.StatusOK
	}
	_ = upstream
}
