package authz

import (
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// TestAssertionNamesCredential: the assertion names (by hash) the token authz
// set for the server, so that the router forwards that token and never the
// caller's own; without an exchange it names none.
func TestAssertionNamesCredential(t *testing.T) {
	snap, err := registry.NewSnapshot([]registry.Server{{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:1/mcp", Audience: "kubernetes"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Default: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		exchange bool
		wantAuth string // the Authorization authz sets; "" none
	}{
		{name: "exchange on", exchange: true, wantAuth: "Bearer exchanged-for-kubernetes"},
		{name: "exchange off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			deps := Deps{
				Registry: reg,
				Policy:   policy.NewEngine(set),
				Verifier: fixedVerifier{&identity.Identity{Issuer: "https://idp/realms/a", Subject: "alice", Audience: []string{"mcp-gateway"}, Expiry: time.Now().Add(time.Hour)}},
				Signer:   assertion.NewSigner(key),
			}
			if tc.exchange {
				deps.Exchanger = &recordingExchanger{}
			}
			s, err := New(Config{}, deps)
			if err != nil {
				t.Fatal(err)
			}
			body := toolCall("kube_pods_list")
			resp, err := s.Check(t.Context(), checkRequest("POST", body, map[string]string{"authorization": "Bearer caller-token"}))
			if err != nil {
				t.Fatal(err)
			}
			set, _ := okHeaders(t, resp)
			if got := set["authorization"]; got != tc.wantAuth {
				t.Errorf("authorization = %q, want %q", got, tc.wantAuth)
			}
			c, err := assertion.NewVerifier(key).Verify(set[assertion.Header], []byte(body), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if tc.wantAuth != "" {
				want = assertion.CredentialHash(tc.wantAuth)
			}
			if c.Credential != want || c.Server != "mcp-test/kubernetes-mcp" || c.Issuer != "https://idp/realms/a" || c.Subject != "alice" {
				t.Errorf("claims %+v, want credential %q", c, want)
			}
		})
	}
}
