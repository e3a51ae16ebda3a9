package identity_test

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/mcp-authz/mcp-authz/identity"
)

// A Verifier of tokens issued by a Keycloak realm to the gateway. Nothing
// is fetched until the first token arrives.
func ExampleVerifier_Verify() {
	v, err := identity.New(identity.Config{
		Issuers: []identity.Issuer{{
			IssuerURL: "https://keycloak.example/realms/mcp",
			Audiences: []string{"mcp-gateway"},
		}},
	}, identity.Deps{HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		log.Fatal(err)
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		raw, err := identity.BearerToken(r.Header.Get("Authorization"))
		if err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		id, err := v.Verify(r.Context(), raw)
		switch {
		case errors.Is(err, identity.ErrUnavailable):
			http.Error(w, "identity provider unavailable", http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		default:
			fmt.Fprintf(w, "hello %s\n", id.Claims["preferred_username"])
		}
	}
	_ = handler
}

func ExampleBearerToken() {
	for _, h := range []string{"Bearer eyJhbGciOi.eyJzdWIi.c2ln", "Bearer a.b.c,Bearer d.e.f", ""} {
		_, err := identity.BearerToken(h)
		fmt.Println(err)
	}
	// Output:
	// <nil>
	// identity: malformed token: more than one credential
	// identity: missing bearer token
}
