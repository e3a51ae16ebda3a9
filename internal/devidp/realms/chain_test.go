package realms

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/mcp-authz/mcp-authz/internal/devidp"
	"github.com/mcp-authz/mcp-authz/internal/jwttest"
)

const (
	jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	exchangeGrant  = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessType     = "urn:ietf:params:oauth:token-type:access_token"
)

// gatewaySecret is the shipped dev/gateway-secret.
func gatewaySecret(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../dev/gateway-secret")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// newID is a random identifier (a kid, a jti).
func newID() string { return rand.Text() }

// chainRealms are dev/realm-a.yaml and dev/realm-b.yaml with short tokens,
// and the gateway secret.
func chainRealms(t *testing.T) (a, b devidp.Config, secret string) {
	t.Helper()
	var err error
	if a, err = devidp.LoadConfig("../../../dev/realm-a.yaml"); err != nil {
		t.Fatal(err)
	}
	if b, err = devidp.LoadConfig("../../../dev/realm-b.yaml"); err != nil {
		t.Fatal(err)
	}
	a.TokenLifetime, b.TokenLifetime = 5*time.Minute, 5*time.Minute
	secret = gatewaySecret(t)
	return a, b, secret
}

// startServer serves cfg on a loopback port until the test ends.
func startServer(t *testing.T, cfg Config, addr string) *Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s, err := New(cfg, addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return s
}

// caClient trusts only the server's CA.
func caClient(t *testing.T, s *Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CAPEM holds no certificate")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// post sends a token request; id/secret go in the basic header when id is set.
func post(t *testing.T, c *http.Client, tokenURL string, form url.Values, id, secret string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("non-JSON answer (status %d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

func grantRequest(subject, tokenType, audience string) url.Values {
	return url.Values{"grant_type": {exchangeGrant}, "subject_token": {subject}, "subject_token_type": {accessType},
		"requested_token_type": {tokenType}, "audience": {audience}}
}

// TestIdentityChaining is the good path over HTTPS with the test CA: alice
// logs in at domain A, the gateway exchanges her token for a JWT
// authorization grant for domain B (jwt and ID-JAG), presents it at B
// (client_secret_basic, client_secret_post, private_key_jwt) and gets B's
// token for the Kubernetes API server with alice's B-side identity and
// roles, verified with go-oidc against B's JWKS.
func TestIdentityChaining(t *testing.T) {
	a, b, secret := chainRealms(t)
	agent := jwttest.NewKey(t)
	b.Clients = append(b.Clients, devidp.Client{ID: "kube-agent", JWKS: agent.JWKS(t), JWTAuthorizationGrant: []string{"domain-a"}, GrantAudiences: []string{"kubernetes"}})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	s := startServer(t, Config{Realms: []devidp.Config{a, b}, TLS: &TLSConfig{CAFile: caFile}}, "")
	pa, pb := s.Realm("domain-a"), s.Realm("domain-b")
	if !strings.HasPrefix(pa.Issuer(), "https://127.0.0.1:") || pb.Issuer() != s.BaseURL()+"/realms/domain-b" {
		t.Fatalf("issuers %s, %s", pa.Issuer(), pb.Issuer())
	}
	if file, err := os.ReadFile(caFile); err != nil || string(file) != string(s.CAPEM()) {
		t.Fatalf("CA file: %v", err)
	}
	hc := caClient(t, s)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, hc)

	// alice logs in at A with the public client.
	login := oauth2.Config{ClientID: "mcp-cli", Endpoint: oauth2.Endpoint{TokenURL: pa.TokenURL(), AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := login.PasswordCredentialsToken(ctx, "alice", "alice")
	if err != nil {
		t.Fatal(err)
	}
	aliceAtA := jwttest.Claims(t, tok.AccessToken)["sub"]

	rp, err := gooidc.NewProvider(gooidc.ClientContext(t.Context(), hc), pb.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	kube := rp.Verifier(&gooidc.Config{ClientID: "kubernetes"})

	tests := []struct {
		name, tokenType, wantTyp string
		present                  func(grant string) (int, map[string]any)
	}{
		{"jwt grant, client_secret_basic", devidp.TokenTypeJWT, "JWT", func(g string) (int, map[string]any) {
			return post(t, hc, pb.TokenURL(), url.Values{"grant_type": {jwtBearerGrant}, "assertion": {g}}, "mcp-gateway", secret)
		}},
		{"ID-JAG, client_secret_post, audience named", devidp.TokenTypeIDJAG, "oauth-id-jag+jwt", func(g string) (int, map[string]any) {
			return post(t, hc, pb.TokenURL(), url.Values{"grant_type": {jwtBearerGrant}, "assertion": {g}, "audience": {"kubernetes"},
				"client_id": {"mcp-gateway"}, "client_secret": {secret}}, "", "")
		}},
		{"jwt grant, private_key_jwt", devidp.TokenTypeJWT, "JWT", func(g string) (int, map[string]any) {
			return post(t, hc, pb.TokenURL(), url.Values{"grant_type": {jwtBearerGrant}, "assertion": {g},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {agent.ClientAssertion(t, "kube-agent", pb.TokenURL())}}, "", "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, hc, pa.TokenURL(), grantRequest(tok.AccessToken, tt.tokenType, pb.Issuer()), "mcp-gateway", secret)
			grant, _ := body["access_token"].(string)
			if status != http.StatusOK || grant == "" || body["issued_token_type"] != tt.tokenType || body["token_type"] != "N_A" {
				t.Fatalf("grant at A: %d %v", status, jwttest.Pick(body, "error", "error_description", "issued_token_type", "token_type"))
			}
			if exp, _ := body["expires_in"].(float64); exp <= 0 || exp > 60 {
				t.Errorf("grant expires_in %v, want (0, 60]", body["expires_in"])
			}
			if h := jwttest.Header(t, grant); h["typ"] != tt.wantTyp || h["alg"] != "RS256" {
				t.Errorf("grant header %v", h)
			}
			g := jwttest.Claims(t, grant)
			want := map[string]any{"iss": pa.Issuer(), "sub": aliceAtA, "aud": []any{pb.Issuer()}, "client_id": "mcp-gateway", "preferred_username": "alice"}
			if diff := cmp.Diff(want, jwttest.Pick(g, "iss", "sub", "aud", "client_id", "preferred_username")); diff != "" {
				t.Errorf("grant claims (-want +got):\n%s", diff)
			}

			status, body = tt.present(grant)
			access, _ := body["access_token"].(string)
			if status != http.StatusOK || access == "" || body["token_type"] != "Bearer" {
				t.Fatalf("jwt-bearer at B: %d %v", status, jwttest.Pick(body, "error", "error_description"))
			}
			idt, err := kube.Verify(t.Context(), access)
			if err != nil {
				t.Fatalf("B's token does not verify against B's JWKS: %v", err)
			}
			var c map[string]any
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			want = map[string]any{
				"iss": pb.Issuer(), "sub": uuidFrom("domain-b/user/alice.liddell"), "aud": []any{"kubernetes"},
				"preferred_username": "alice.liddell", "groups": []any{"cluster-b-viewers"},
				"resource_access": map[string]any{"kubernetes": map[string]any{"roles": []any{"view"}}},
			}
			if diff := cmp.Diff(want, jwttest.Pick(c, "iss", "sub", "aud", "preferred_username", "groups", "resource_access")); diff != "" {
				t.Errorf("B's token (-want +got):\n%s", diff)
			}
			if got := idt.Expiry.Sub(idt.IssuedAt); got != 5*time.Minute {
				t.Errorf("B's token lifetime %v, want B's 5m", got)
			}

			// The same grant again: refused.
			if status, body := tt.present(grant); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
				t.Errorf("replayed grant: %d %v", status, body)
			}
		})
	}
}

// TestJWTBearerRefusals presents bad grants at domain B: each is refused
// with an RFC 6749 error, and none yields a token.
func TestJWTBearerRefusals(t *testing.T) {
	a, b, secret := chainRealms(t)
	b.Clients = append(b.Clients, devidp.Client{ID: "no-grants", Secret: "x"}, devidp.Client{ID: "other-idp", Secret: "y", JWTAuthorizationGrant: []string{"domain-c"}})
	b.IdentityProviders = append(b.IdentityProviders, devidp.IdentityProvider{Alias: "domain-c", Issuer: "https://c.example/realms/c"})
	keys := filepath.Join(t.TempDir(), "keys.json")
	s := startServer(t, Config{Realms: []devidp.Config{a, b}, TLS: &TLSConfig{}, KeysFile: keys}, "")
	pa, pb := s.Realm("domain-a"), s.Realm("domain-b")
	hc := caClient(t, s)
	// A's signing key, read from the key file: assertions A signs itself.
	jwks, err := (&keyFile{path: keys}).LoadKeys("domain-a")
	if err != nil || len(jwks) == 0 {
		t.Fatalf("domain-a keys: %v %v", jwks, err)
	}
	keyA := jwttest.Key{Private: jwks[len(jwks)-1].Key.(*rsa.PrivateKey), KID: jwks[len(jwks)-1].KeyID}
	aliceAtA := uuidFrom("domain-a/user/alice")
	now := time.Now().Unix()
	claims := func(mut func(map[string]any)) map[string]any {
		c := map[string]any{"iss": pa.Issuer(), "sub": aliceAtA, "aud": pb.Issuer(), "iat": now, "exp": now + 60,
			"jti": newID(), "preferred_username": "alice", "client_id": "mcp-gateway"}
		if mut != nil {
			mut(c)
		}
		return c
	}
	signA := func(c map[string]any, typ string) string {
		return keyA.Sign(t, c, typ)
	}
	stranger := jwttest.NewKey(t)
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		strings.Split(signA(claims(nil), "JWT"), ".")[1] + "."
	replayed := signA(claims(nil), "JWT")
	present := func(assertion string) url.Values {
		return url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}
	}
	if status, body := post(t, hc, pb.TokenURL(), present(replayed), "mcp-gateway", secret); status != http.StatusOK {
		t.Fatalf("control: a good grant is refused: %d %v", status, body)
	}
	with := func(v url.Values, k, val string) url.Values { v.Set(k, val); return v }
	add := func(v url.Values, k, val string) url.Values { v.Add(k, val); return v }

	tests := []struct {
		name       string
		form       url.Values
		id, secret string
		wantStatus int
		wantError  string
	}{
		{"control: token endpoint as aud", present(signA(claims(func(c map[string]any) { c["aud"] = pb.TokenURL() }), "JWT")), "mcp-gateway", secret, 200, ""},
		{"replayed (same jti)", present(replayed), "mcp-gateway", secret, 400, "invalid_grant"},
		{"untrusted issuer", present(stranger.Sign(t, claims(func(c map[string]any) { c["iss"] = "https://evil.example/realms/x" }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"A's issuer, another key", present(stranger.Sign(t, claims(nil), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"alg none", present(unsigned), "mcp-gateway", secret, 400, "invalid_grant"},
		{"expired", present(signA(claims(func(c map[string]any) { c["iat"], c["exp"] = now-120, now-60 }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"without exp", present(signA(claims(func(c map[string]any) { delete(c, "exp") }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"exp beyond the max lifetime", present(signA(claims(func(c map[string]any) { c["exp"] = now + 3600 }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"not yet valid", present(signA(claims(func(c map[string]any) { c["nbf"] = now + 30 }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"issued in the future", present(signA(claims(func(c map[string]any) { c["iat"] = now + 30 }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"for another audience", present(signA(claims(func(c map[string]any) { c["aud"] = "https://c.example/realms/c" }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"for A itself", present(signA(claims(func(c map[string]any) { c["aud"] = pa.Issuer() }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"without jti", present(signA(claims(func(c map[string]any) { delete(c, "jti") }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"without sub", present(signA(claims(func(c map[string]any) { delete(c, "sub") }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"wrong typ (an RFC 9068 access token)", present(signA(claims(nil), "at+jwt")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"no typ", present(stranger.Sign(t, claims(nil), "")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"unknown user mapping (unlinked user)", present(signA(claims(func(c map[string]any) { c["preferred_username"] = "bob" }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"unknown user mapping (no such user)", present(signA(claims(func(c map[string]any) { c["preferred_username"] = "carol" }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"unknown user mapping (claim missing)", present(signA(claims(func(c map[string]any) { delete(c, "preferred_username") }), "JWT")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"ID-JAG for another client", present(signA(claims(func(c map[string]any) { c["client_id"] = "someone-else" }), "oauth-id-jag+jwt")), "mcp-gateway", secret, 400, "invalid_grant"},
		{"garbage assertion", present("not.a.jwt"), "mcp-gateway", secret, 400, "invalid_grant"},
		{"no assertion", url.Values{"grant_type": {jwtBearerGrant}}, "mcp-gateway", secret, 400, "invalid_request"},
		{"two assertions", add(present(signA(claims(nil), "JWT")), "assertion", "x"), "mcp-gateway", secret, 400, "invalid_request"},
		{"audience not allowed", with(present(signA(claims(nil), "JWT")), "audience", "mcp-gateway"), "mcp-gateway", secret, 400, "invalid_target"},
		{"client without jwt-bearer", present(signA(claims(nil), "JWT")), "no-grants", "x", 400, "unauthorized_client"},
		{"client not allowed for this identity provider", present(signA(claims(nil), "JWT")), "other-idp", "y", 400, "unauthorized_client"},
		{"bearer-only client", present(signA(claims(nil), "JWT")), "kubernetes", "", 400, "unauthorized_client"},
		{"bad client secret", present(signA(claims(nil), "JWT")), "mcp-gateway", "wrong", 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, hc, pb.TokenURL(), tt.form, tt.id, tt.secret)
			if tt.wantError == "" {
				if status != http.StatusOK || body["access_token"] == nil {
					t.Errorf("status %d, body %v; want a token", status, body)
				}
				return
			}
			if status != tt.wantStatus || body["error"] != tt.wantError || body["access_token"] != nil {
				t.Errorf("status %d, body %v; want %d %s", status, body, tt.wantStatus, tt.wantError)
			}
			if d, _ := body["error_description"].(string); strings.Contains(d, tt.form.Get("assertion")) && tt.form.Get("assertion") != "" {
				t.Error("error_description echoes the assertion")
			}
		})
	}
}

// TestAuthorizationGrantRefusals asks domain A for grants it must not give.
func TestAuthorizationGrantRefusals(t *testing.T) {
	a, b, secret := chainRealms(t)
	a.Peers = append(a.Peers, devidp.Peer{Alias: "domain-c", Issuer: "https://c.example/realms/c"})
	a.Clients = append(a.Clients,
		devidp.Client{ID: "c-gateway", Secret: "c", AuthorizationGrants: []string{"domain-c"}},
		devidp.Client{ID: "no-grants", Secret: "n", TokenExchange: []string{"mcp-test/kubernetes-mcp"}})
	a.DefaultAudiences = append(a.DefaultAudiences, "no-grants")
	s := startServer(t, Config{Realms: []devidp.Config{a, b}}, "")
	pa, pb := s.Realm("domain-a"), s.Realm("domain-b")
	hc := s.Client()
	status, body := post(t, hc, pa.TokenURL(), url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {"alice"}, "password": {"alice"}}, "", "")
	alice, _ := body["access_token"].(string)
	if status != http.StatusOK {
		t.Fatalf("login: %d %v", status, body)
	}
	status, body = post(t, hc, pb.TokenURL(), url.Values{"grant_type": {"password"}, "client_id": {"mcp-gateway"}, "username": {"bob"}, "password": {"bob"}}, "mcp-gateway", secret)
	atB, _ := body["access_token"].(string)
	if status != http.StatusOK {
		t.Fatalf("login at B: %d %v", status, body)
	}
	with := func(v url.Values, k, val string) url.Values { v.Set(k, val); return v }
	without := func(v url.Values, k string) url.Values { v.Del(k); return v }

	tests := []struct {
		name       string
		form       url.Values
		id, secret string
		wantStatus int
		wantError  string
	}{
		{"control: resource names the peer", without(with(grantRequest(alice, devidp.TokenTypeJWT, ""), "resource", pb.Issuer()), "audience"), "mcp-gateway", secret, 200, ""},
		{"client not allowed for that peer", grantRequest(alice, devidp.TokenTypeJWT, pb.Issuer()), "c-gateway", "c", 400, "invalid_target"},
		{"client not allowed any grant", grantRequest(alice, devidp.TokenTypeIDJAG, pb.Issuer()), "no-grants", "n", 400, "unauthorized_client"},
		{"public client", with(grantRequest(alice, devidp.TokenTypeJWT, pb.Issuer()), "client_id", "mcp-cli"), "", "", 400, "unauthorized_client"},
		{"unknown peer", grantRequest(alice, devidp.TokenTypeJWT, "https://evil.example/realms/x"), "mcp-gateway", secret, 400, "invalid_target"},
		{"a client as audience", grantRequest(alice, devidp.TokenTypeJWT, "mcp-test/kubernetes-mcp"), "mcp-gateway", secret, 400, "invalid_target"},
		{"two targets", with(grantRequest(alice, devidp.TokenTypeJWT, pb.Issuer()), "resource", pb.Issuer()), "mcp-gateway", secret, 400, "invalid_target"},
		{"no target", without(grantRequest(alice, devidp.TokenTypeJWT, ""), "audience"), "mcp-gateway", secret, 400, "invalid_target"},
		{"requester not in the subject's aud", grantRequest(alice, devidp.TokenTypeJWT, "https://c.example/realms/c"), "c-gateway", "c", 400, "access_denied"},
		{"subject token of another issuer", grantRequest(atB, devidp.TokenTypeJWT, pb.Issuer()), "mcp-gateway", secret, 400, "invalid_request"},
		{"id_token subject type", with(grantRequest(alice, devidp.TokenTypeJWT, pb.Issuer()), "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), "mcp-gateway", secret, 400, "invalid_request"},
		{"actor token", with(grantRequest(alice, devidp.TokenTypeJWT, pb.Issuer()), "actor_token", alice), "mcp-gateway", secret, 400, "invalid_request"},
		{"garbage subject", grantRequest("not.a.jwt", devidp.TokenTypeJWT, pb.Issuer()), "mcp-gateway", secret, 400, "invalid_request"},
		{"bad secret", grantRequest(alice, devidp.TokenTypeJWT, pb.Issuer()), "mcp-gateway", "wrong", 401, "invalid_client"},
		{"access token for the peer (not a grant)", grantRequest(alice, accessType, pb.Issuer()), "mcp-gateway", secret, 400, "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, hc, pa.TokenURL(), tt.form, tt.id, tt.secret)
			if tt.wantError == "" {
				if status != http.StatusOK || body["access_token"] == nil {
					t.Errorf("status %d, body %v; want a grant", status, body)
				}
				return
			}
			if status != tt.wantStatus || body["error"] != tt.wantError || body["access_token"] != nil {
				t.Errorf("status %d, body %v; want %d %s", status, body, tt.wantStatus, tt.wantError)
			}
		})
	}

	// A grant is no subject token: its aud is the peer, not the requester.
	_, body = post(t, hc, pa.TokenURL(), grantRequest(alice, devidp.TokenTypeJWT, pb.Issuer()), "mcp-gateway", secret)
	grant, _ := body["access_token"].(string)
	if status, body := post(t, hc, pa.TokenURL(), grantRequest(grant, devidp.TokenTypeJWT, pb.Issuer()), "mcp-gateway", secret); status == http.StatusOK {
		t.Errorf("a grant exchanged for another grant: %v", body)
	}
	// A grant never outlives the token it came from.
	if exp, sub := jwttest.Claims(t, grant)["exp"].(float64), jwttest.Claims(t, alice)["exp"].(float64); exp > sub {
		t.Errorf("grant exp %v after the subject's %v", exp, sub)
	}
}

// TestServerTLS checks the HTTPS server: only a client trusting its CA
// reaches it, and discovery names https endpoints.
func TestServerTLS(t *testing.T) {
	a, b, _ := chainRealms(t)
	s := startServer(t, Config{Realms: []devidp.Config{a, b}, TLS: &TLSConfig{}}, "")
	resp, err := caClient(t, s).Get(s.Realm("domain-b").Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Issuer string   `json:"issuer"`
		JWKS   string   `json:"jwks_uri"`
		Grants []string `json:"grant_types_supported"`
		Auth   []string `json:"token_endpoint_auth_methods_supported"`
	}
	err = json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if err != nil || !strings.HasPrefix(d.JWKS, "https://127.0.0.1:") || d.Issuer != s.Realm("domain-b").Issuer() {
		t.Errorf("discovery %+v, %v", d, err)
	}
	for _, want := range []string{jwtBearerGrant, exchangeGrant} {
		if !strings.Contains(strings.Join(d.Grants, " "), want) {
			t.Errorf("grant_types_supported %v lacks %s", d.Grants, want)
		}
	}
	if !strings.Contains(strings.Join(d.Auth, " "), "private_key_jwt") {
		t.Errorf("token_endpoint_auth_methods_supported %v lacks private_key_jwt", d.Auth)
	}
	_, err = http.Get(s.Realm("domain-a").Issuer() + "/.well-known/openid-configuration")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client without the CA: %v, want an unknown authority error", err)
	}
}

// TestKeysFile keeps the signing keys across a restart: a token issued
// before verifies after, and a rotation survives too.
func TestKeysFile(t *testing.T) {
	cfg, err := devidp.LoadConfig("../../../dev/realm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys.json")
	ctx, cancel := context.WithCancel(t.Context())
	s1, err := New(Config{Realms: []devidp.Config{cfg}, KeysFile: keys}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s1.Start(ctx) }()
	addr := strings.TrimPrefix(s1.BaseURL(), "http://")
	old := login(t, s1.Realm("mcp"), "alice")
	if err := s1.Realm("mcp").RotateKeys(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(keys)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file: %v, mode %v", err, fi.Mode())
	}

	s2 := startServer(t, Config{Realms: []devidp.Config{cfg}, KeysFile: keys}, addr)
	p := s2.Realm("mcp")
	rp, err := gooidc.NewProvider(t.Context(), p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Verifier(&gooidc.Config{ClientID: "mcp-gateway"}).Verify(t.Context(), old); err != nil {
		t.Fatalf("a token from before the restart: %v", err)
	}
	var jwks struct{ Keys []struct{ Kid string } }
	resp, err := http.Get(p.Issuer() + "/protocol/openid-connect/certs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 2 || jwks.Keys[1].Kid != kid(t, old) {
		t.Errorf("jwks after restart: %+v, want the rotated key and %s", jwks.Keys, kid(t, old))
	}
	if kid(t, login(t, p, "alice")) != jwks.Keys[0].Kid {
		t.Error("after the restart, tokens are not signed by the newest key")
	}

	// A corrupt file stops the start; nothing is overwritten.
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"mcp": {"keys": [{"kty": "oct", "k": "AAAA", "kid": "x"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Realms: []devidp.Config{cfg}, KeysFile: bad}, "127.0.0.1:0"); err == nil {
		t.Error("New accepted a key file without RSA private keys")
	}
}

// login is a password login of user (password = user name) at p.
func login(t *testing.T, p *devidp.Provider, user string) string {
	t.Helper()
	status, body := post(t, http.DefaultClient, p.TokenURL(), url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {user}, "password": {user}}, "", "")
	tok, _ := body["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("login %s: status %d, error %v", user, status, body["error"])
	}
	return tok
}

// kid is a JWT's key id.
func kid(t *testing.T, raw string) string {
	t.Helper()
	k, _ := jwttest.Header(t, raw)["kid"].(string)
	return k
}

// uuidFrom is the sub devidp derives from a realm and a name (a UUID of
// version 8 from SHA-256), computed here on its own as the oracle.
func uuidFrom(name string) string {
	sum := sha256.Sum256([]byte(name))
	b := [16]byte(sum[:16])
	b[6] = b[6]&0x0f | 8<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
