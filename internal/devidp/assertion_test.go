package devidp

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/jwttest"
)

// TestPrivateKeyJWT authenticates a client with an RFC 7523 client
// assertion, and refuses bad ones with 401 invalid_client.
func TestPrivateKeyJWT(t *testing.T) {
	cfg, _ := devRealm(t)
	good, wrong := jwttest.NewKey(t), jwttest.NewKey(t)
	cfg.Clients = append(cfg.Clients, Client{ID: "agent", JWKS: good.JWKS(t)})
	p := start(t, cfg)
	now := time.Now().Unix()
	assertion := func(mut func(map[string]any)) string {
		c := map[string]any{"iss": "agent", "sub": "agent", "aud": p.TokenURL(), "iat": now, "exp": now + 60, "jti": newUUID()}
		if mut != nil {
			mut(c)
		}
		return good.Sign(t, c, "")
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	with := func(v url.Values, k, val string) url.Values { v.Set(k, val); return v }
	used := assertion(nil)
	if status, body := call(t, p, form(used), "", ""); status != http.StatusOK {
		t.Fatalf("control: %d %v", status, body)
	}
	tests := []struct {
		name       string
		form       url.Values
		id, secret string
		want       int
	}{
		{"control: issuer as aud, client_id named", with(form(assertion(func(c map[string]any) { c["aud"] = p.Issuer() })), "client_id", "agent"), "", "", 200},
		{"control: password grant", with(with(with(form(assertion(nil)), "grant_type", "password"), "username", "alice"), "password", "alice"), "", "", 200},
		{"wrong key", form(wrong.Sign(t, map[string]any{"iss": "agent", "sub": "agent", "aud": p.TokenURL(), "exp": now + 60, "jti": newUUID()}, "")), "", "", 401},
		{"replayed", form(used), "", "", 401},
		{"expired", form(assertion(func(c map[string]any) { c["exp"] = now - 1 })), "", "", 401},
		{"long-lived", form(assertion(func(c map[string]any) { c["exp"] = now + 3600 })), "", "", 401},
		{"another audience", form(assertion(func(c map[string]any) { c["aud"] = "https://elsewhere.example/token" })), "", "", 401},
		{"iss is not sub", form(assertion(func(c map[string]any) { c["sub"] = "mcp-gateway" })), "", "", 401},
		{"without jti", form(assertion(func(c map[string]any) { delete(c, "jti") })), "", "", 401},
		{"client_id mismatch", with(form(assertion(nil)), "client_id", "mcp-gateway"), "", "", 401},
		{"assertion for a secret client", form(assertion(func(c map[string]any) { c["iss"], c["sub"] = "mcp-gateway", "mcp-gateway" })), "", "", 401},
		{"wrong assertion type", with(form(assertion(nil)), "client_assertion_type", "urn:example"), "", "", 400},
		{"secret for a key client", url.Values{"grant_type": {"client_credentials"}}, "agent", "", 401},
		{"assertion and secret", form(assertion(nil)), "agent", "x", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, p, tt.form, tt.id, tt.secret)
			if status != tt.want {
				t.Errorf("status %d, body %v; want %d", status, body, tt.want)
			}
			if tt.want == 401 && (body["error"] != "invalid_client" || body["access_token"] != nil) {
				t.Errorf("body %v; want invalid_client", body)
			}
		})
	}
}
