package devidp

import (
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/jwttest"
)

func TestTrustConfigErrors(t *testing.T) {
	ok := func() Config {
		return Config{BaseURL: "http://127.0.0.1:1",
			Peers:             []Peer{{Alias: "b", Realm: "b"}},
			IdentityProviders: []IdentityProvider{{Alias: "c", Issuer: "https://c.example/realms/c", UserClaim: "preferred_username"}},
			Clients:           []Client{{ID: "gw", Secret: "s", AuthorizationGrants: []string{"b"}, JWTAuthorizationGrant: []string{"c"}, GrantAudiences: []string{"k8s"}}, {ID: "k8s"}},
			Users:             []User{{Username: "u", Password: "p", FederatedIdentities: map[string]string{"c": "u"}}}}
	}
	if _, err := New(ok(), Deps{}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"peer without alias", func(c *Config) { c.Peers[0].Alias = "" }},
		{"peer with issuer and realm", func(c *Config) { c.Peers[0].Issuer = "https://x.example" }},
		{"peer is the realm", func(c *Config) { c.Peers[0].Realm = "mcp" }},
		{"peer issuer not a URL", func(c *Config) { c.Peers[0].Realm, c.Peers[0].Issuer = "", "b" }},
		{"unknown peer", func(c *Config) { c.Clients[0].AuthorizationGrants = []string{"nope"} }},
		{"unknown identity provider", func(c *Config) { c.Clients[0].JWTAuthorizationGrant = []string{"nope"} }},
		{"grant audience not a client", func(c *Config) { c.Clients[0].GrantAudiences = []string{"nope"} }},
		{"bad user claim", func(c *Config) { c.IdentityProviders[0].UserClaim = "name" }},
		{"link to unknown provider", func(c *Config) { c.Users[0].FederatedIdentities = map[string]string{"nope": "u"} }},
		{"two users, one link", func(c *Config) {
			c.Users = append(c.Users, User{Username: "v", Password: "p", FederatedIdentities: map[string]string{"c": "u"}})
		}},
		{"grant lifetime too long", func(c *Config) { c.GrantLifetime = time.Hour }},
		{"public client asks grants", func(c *Config) {
			c.Clients = append(c.Clients, Client{ID: "pub", Public: true, AuthorizationGrants: []string{"b"}})
		}},
		{"jwks and secret", func(c *Config) { c.Clients[0].JWKS = jwttest.NewKey(t).JWKS(t) }},
		{"bad jwks", func(c *Config) { c.Clients = append(c.Clients, Client{ID: "k", JWKS: `{"keys": []}`}) }},
		{"missing caFile", func(c *Config) { c.IdentityProviders[0].CAFile = "/nonexistent" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok()
			tt.mutate(&c)
			if _, err := New(c, Deps{}); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}
