package devidp

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcp-authz/mcp-authz/internal/jwttest"
)

const (
	exchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessType    = "urn:ietf:params:oauth:token-type:access_token"
	kube          = "mcp-test/kubernetes-mcp"
	everything    = "mcp-test/everything"
)

// devRealm is the shipped dev/realm.yaml.
func devRealm(t testing.TB) (Config, string) {
	t.Helper()
	cfg, err := LoadConfig("../../dev/realm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.TokenLifetime = 300 * time.Second // the file's is long, for the README walk-through
	secret, err := os.ReadFile("../../dev/gateway-secret")
	if err != nil {
		t.Fatal(err)
	}
	return cfg, strings.TrimSpace(string(secret))
}

// start serves a provider on a loopback port until the test ends.
func start(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, ln, err := Listen(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// call posts a form to the token endpoint, with client_secret_basic when id is set.
func call(t testing.TB, p *Provider, form url.Values, id, secret string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("token endpoint answered non-JSON (status %d): %v", resp.StatusCode, err)
	}
	return resp.StatusCode, body
}

func login(t testing.TB, p *Provider, user string) string {
	t.Helper()
	status, body := call(t, p, url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {user}, "password": {user}}, "", "")
	tok, _ := body["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("login %s: status %d, error %v", user, status, body["error"])
	}
	return tok
}

// verify checks raw as a relying party for audience would, and returns its claims.
func verify(t *testing.T, p *Provider, raw, audience string) map[string]any {
	t.Helper()
	rp, err := gooidc.NewProvider(t.Context(), p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := rp.Verifier(&gooidc.Config{ClientID: audience}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if got := tok.Expiry.Sub(tok.IssuedAt).Seconds(); got != 300 {
		t.Errorf("lifetime = %vs, want 300", got)
	}
	return claims
}

func kid(t *testing.T, raw string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryAndJWKS(t *testing.T) {
	cfg, _ := devRealm(t)
	p := start(t, cfg)
	if !strings.HasPrefix(p.Issuer(), "http://127.0.0.1:") || !strings.HasSuffix(p.Issuer(), "/realms/mcp") {
		t.Fatalf("issuer %q", p.Issuer())
	}
	var d struct {
		Issuer        string   `json:"issuer"`
		TokenEndpoint string   `json:"token_endpoint"`
		JWKSURI       string   `json:"jwks_uri"`
		Userinfo      string   `json:"userinfo_endpoint"`
		Grants        []string `json:"grant_types_supported"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
	}
	getJSON(t, p.Issuer()+"/.well-known/openid-configuration", &d)
	want := p.Issuer() + "/protocol/openid-connect/"
	if d.Issuer != p.Issuer() || d.TokenEndpoint != want+"token" || d.JWKSURI != want+"certs" || d.Userinfo != want+"userinfo" {
		t.Errorf("discovery = %+v", d)
	}
	for _, g := range []string{"password", "client_credentials", exchangeGrant} {
		if !slices.Contains(d.Grants, g) {
			t.Errorf("grant_types_supported %v lacks %s", d.Grants, g)
		}
	}
	for _, m := range []string{"client_secret_basic", "client_secret_post"} {
		if !slices.Contains(d.AuthMethods, m) {
			t.Errorf("token_endpoint_auth_methods_supported %v lacks %s", d.AuthMethods, m)
		}
	}
	var jwks struct {
		Keys []struct{ Kid, Alg, Use, Kty string }
	}
	getJSON(t, d.JWKSURI, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Alg != "RS256" || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].Use != "sig" || jwks.Keys[0].Kid == "" {
		t.Errorf("jwks = %+v", jwks)
	}
}

func TestPasswordLogin(t *testing.T) {
	cfg, _ := devRealm(t)
	p := start(t, cfg)
	claims := verify(t, p, login(t, p, "alice"), "mcp-gateway")
	want := map[string]any{
		"iss":                p.Issuer(),
		"sub":                uuidFrom("mcp/user/alice"),
		"aud":                []any{"mcp-gateway", everything, kube, "mcp-test/weather"},
		"azp":                "mcp-cli",
		"typ":                "Bearer",
		"scope":              "openid profile",
		"preferred_username": "alice",
		"name":               "Alice Liddell",
		"given_name":         "Alice",
		"family_name":        "Liddell",
		"groups":             []any{"engineering", "mcp-users"},
		"resource_access": map[string]any{
			kube:               map[string]any{"roles": []any{"pods_list", "namespaces_list", "resources_list"}},
			everything:         map[string]any{"roles": []any{"echo", "get-sum", "prompt:simple-prompt", "resource:demo://resource/static/document/features.md"}},
			"mcp-test/weather": map[string]any{"roles": []any{"get_forecast"}},
		},
	}
	if diff := cmp.Diff(want, jwttest.Pick(claims, "iss", "sub", "aud", "azp", "typ", "scope", "preferred_username", "name", "given_name", "family_name", "groups", "resource_access")); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if jti, _ := claims["jti"].(string); len(jti) != 36 {
		t.Errorf("jti = %q, want a UUID", jti)
	}

	// Explicit subjects, and a user with no roles still names the gateway.
	for user, sub := range map[string]string{"admin": "admin", "me": "me", "bob": uuidFrom("mcp/user/bob")} {
		c := verify(t, p, login(t, p, user), "mcp-gateway")
		if c["sub"] != sub || c["resource_access"] != nil {
			t.Errorf("%s: sub %v resource_access %v", user, c["sub"], c["resource_access"])
		}
	}

	// client_secret_post from a confidential client, and the requested scope.
	_, secret := devRealm(t)
	status, body := call(t, p, url.Values{"grant_type": {"password"}, "client_id": {"mcp-gateway"}, "client_secret": {secret},
		"username": {"mcp"}, "password": {"mcp"}, "scope": {"openid groups"}}, "", "")
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body["error"])
	}
	c := verify(t, p, body["access_token"].(string), kube)
	roles := c["resource_access"].(map[string]any)[kube].(map[string]any)["roles"].([]any)
	if c["azp"] != "mcp-gateway" || c["scope"] != "openid groups" || len(roles) != 22 {
		t.Errorf("azp %v scope %v, %d roles", c["azp"], c["scope"], len(roles))
	}
}

func TestClientCredentials(t *testing.T) {
	cfg, secret := devRealm(t)
	p := start(t, cfg)
	for _, basic := range []bool{true, false} {
		form := url.Values{"grant_type": {"client_credentials"}}
		id := "mcp-gateway"
		if !basic {
			form.Set("client_id", id)
			form.Set("client_secret", secret)
			id = ""
		}
		status, body := call(t, p, form, id, secret)
		if status != http.StatusOK {
			t.Fatalf("basic=%v: status %d: %v", basic, status, body)
		}
		c := verify(t, p, body["access_token"].(string), "mcp-gateway")
		want := map[string]any{"aud": []any{"mcp-gateway"}, "azp": "mcp-gateway", "preferred_username": "service-account-mcp-gateway"}
		if diff := cmp.Diff(want, jwttest.Pick(c, "aud", "azp", "preferred_username", "resource_access")); diff != "" {
			t.Errorf("basic=%v (-want +got):\n%s", basic, diff)
		}
	}
}

func TestTokenExchange(t *testing.T) {
	cfg, secret := devRealm(t)
	p := start(t, cfg)
	subject := login(t, p, "alice")
	sub := verify(t, p, subject, "mcp-gateway")["sub"]
	tests := []struct {
		name, audience, scope, wantScope string
		post                             bool
		wantRoles                        []any
	}{
		{name: "basic", audience: kube, scope: "openid profile groups", wantScope: "openid profile groups", wantRoles: []any{"pods_list", "namespaces_list", "resources_list"}},
		{name: "post, scope of the subject", audience: everything, post: true, wantScope: "openid profile", wantRoles: []any{"echo", "get-sum", "prompt:simple-prompt", "resource:demo://resource/static/document/features.md"}},
		{name: "target without roles", audience: "default/mcp-tool", wantScope: "openid profile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {exchangeGrant}, "subject_token": {subject}, "subject_token_type": {accessType}, "audience": {tt.audience}}
			if tt.scope != "" {
				form.Set("scope", tt.scope)
			}
			id := "mcp-gateway"
			if tt.post {
				form.Set("client_id", id)
				form.Set("client_secret", secret)
				id = ""
			}
			status, body := call(t, p, form, id, secret)
			if status != http.StatusOK || body["issued_token_type"] != accessType || body["token_type"] != "Bearer" {
				t.Fatalf("status %d, body %v", status, jwttest.Pick(body, "error", "error_description", "issued_token_type", "token_type"))
			}
			c := verify(t, p, body["access_token"].(string), tt.audience)
			want := map[string]any{
				"aud": []any{tt.audience}, "azp": "mcp-gateway", "sub": sub, "scope": tt.wantScope,
				"preferred_username": "alice", "groups": []any{"engineering", "mcp-users"},
			}
			if tt.wantRoles != nil {
				want["resource_access"] = map[string]any{tt.audience: map[string]any{"roles": tt.wantRoles}}
			}
			if diff := cmp.Diff(want, jwttest.Pick(c, "aud", "azp", "sub", "scope", "preferred_username", "groups", "resource_access")); diff != "" {
				t.Errorf("exchanged claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	cfg, secret := devRealm(t)
	cfg.Clients = append(cfg.Clients, Client{ID: "other-gateway", Secret: "other", TokenExchange: []string{everything}}, Client{ID: "no-exchange", Secret: "x"})
	cfg.DefaultAudiences = append(cfg.DefaultAudiences, "no-exchange")
	p := start(t, cfg)
	alice := login(t, p, "alice")
	now := time.Now().Unix()
	claims := map[string]any{"iss": p.Issuer(), "sub": uuidFrom("mcp/user/alice"), "aud": []string{"mcp-gateway"}, "iat": now - 400, "exp": now - 100, "scope": "openid"}
	expired := sign(t, p, claims)
	claims["exp"] = now + 300
	unsigned := strings.Join(strings.Split(sign(t, p, claims), ".")[:2], ".") + "."
	unsigned = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + unsigned[strings.Index(unsigned, "."):]
	other := start(t, cfg) // same realm, other keys
	foreign := login(t, other, "alice")
	exchange := func(subject, audience string) url.Values {
		return url.Values{"grant_type": {exchangeGrant}, "subject_token": {subject}, "subject_token_type": {accessType}, "audience": {audience}}
	}
	_, exchanged := call(t, p, exchange(alice, kube), "mcp-gateway", secret)
	// Control: the crafted claims exchange fine while unexpired and signed.
	if status, body := call(t, p, exchange(sign(t, p, claims), kube), "mcp-gateway", secret); status != http.StatusOK {
		t.Fatalf("control exchange: %d %v", status, body["error_description"])
	}
	with := func(v url.Values, k, val string) url.Values { v.Set(k, val); return v }

	tests := []struct {
		name       string
		form       url.Values
		id, secret string
		wantStatus int
		wantError  string
	}{
		{"requester not in subject aud", exchange(alice, everything), "other-gateway", "other", 400, "access_denied"},
		{"exchanged token as subject", exchange(exchanged["access_token"].(string), everything), "mcp-gateway", secret, 400, "access_denied"},
		{"target not allowed", exchange(alice, "mcp-cli"), "mcp-gateway", secret, 400, "invalid_target"},
		{"target unknown", exchange(alice, "nope/nope"), "mcp-gateway", secret, 400, "invalid_target"},
		{"no audience", with(exchange(alice, ""), "audience", ""), "mcp-gateway", secret, 400, "invalid_request"},
		{"bad secret", exchange(alice, kube), "mcp-gateway", "wrong", 401, "invalid_client"},
		{"no secret", exchange(alice, kube), "mcp-gateway", "", 401, "invalid_client"},
		{"unknown client", exchange(alice, kube), "nobody", "x", 401, "invalid_client"},
		{"public client", with(exchange(alice, kube), "client_id", "mcp-cli"), "", "", 400, "unauthorized_client"},
		{"bearer-only client", exchange(alice, kube), kube, "x", 400, "unauthorized_client"},
		{"unsupported subject token type", with(exchange(alice, kube), "subject_token_type", "urn:ietf:params:oauth:token-type:saml2"), "mcp-gateway", secret, 400, "invalid_request"},
		{"id_token subject type", with(exchange(alice, kube), "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), "mcp-gateway", secret, 400, "invalid_request"},
		{"refresh token requested", with(exchange(alice, kube), "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), "mcp-gateway", secret, 400, "invalid_request"},
		{"exchange not enabled", exchange(alice, kube), "no-exchange", "x", 400, "unauthorized_client"},
		{"expired subject token", exchange(expired, kube), "mcp-gateway", secret, 400, "invalid_request"},
		{"alg none subject token", exchange(unsigned, kube), "mcp-gateway", secret, 400, "invalid_request"},
		{"garbage subject token", exchange("not.a.jwt", kube), "mcp-gateway", secret, 400, "invalid_request"},
		{"subject signed by another provider", exchange(foreign, kube), "mcp-gateway", secret, 400, "invalid_request"},
		{"bad password", url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {"alice"}, "password": {"bob"}}, "", "", 401, "invalid_grant"},
		{"unknown user", url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {"eve"}, "password": {"eve"}}, "", "", 401, "invalid_grant"},
		{"service account login", url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {"service-account-mcp-gateway"}, "password": {""}}, "", "", 401, "invalid_grant"},
		{"password, bad client secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"alice"}}, "mcp-gateway", "wrong", 401, "invalid_client"},
		{"client_credentials, public client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"mcp-cli"}}, "", "", 400, "unauthorized_client"},
		{"grant not allowed", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {"http://127.0.0.1/"}}, "mcp-gateway", secret, 400, "unauthorized_client"},
		{"unknown grant", url.Values{"grant_type": {"urn:example:nope"}}, "mcp-gateway", secret, 400, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, p, tt.form, tt.id, tt.secret)
			if status != tt.wantStatus || body["error"] != tt.wantError || body["access_token"] != nil {
				t.Errorf("status %d, body %v; want %d %s", status, body, tt.wantStatus, tt.wantError)
			}
			if d, _ := body["error_description"].(string); strings.Contains(d, alice) {
				t.Error("error_description echoes the subject token")
			}
		})
	}
}

// sign makes a JWT with the provider's current key, for claims it would never issue.
func sign(t *testing.T, p *Provider, claims map[string]any) string {
	t.Helper()
	key, err := p.store.SigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := op.SignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestRotateKeys(t *testing.T) {
	cfg, _ := devRealm(t)
	p := start(t, cfg)
	old := login(t, p, "alice")
	resp, err := http.Post(strings.Replace(p.Issuer(), "/realms/", "/admin/realms/", 1)+"/rotate-keys", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rotated struct{ Kid string }
	err = json.NewDecoder(resp.Body).Decode(&rotated)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("rotate: %s, %v", resp.Status, err)
	}
	fresh := login(t, p, "alice")
	if kid(t, fresh) != rotated.Kid || kid(t, fresh) == kid(t, old) {
		t.Errorf("kid old %s, new %s, rotated to %s", kid(t, old), kid(t, fresh), rotated.Kid)
	}
	verify(t, p, old, "mcp-gateway")
	verify(t, p, fresh, "mcp-gateway")

	// The JWKS keeps at most three keys; the oldest drops out.
	for range 3 {
		if err := p.RotateKeys(); err != nil {
			t.Fatal(err)
		}
	}
	var jwks struct{ Keys []struct{ Kid string } }
	getJSON(t, p.Issuer()+"/protocol/openid-connect/certs", &jwks)
	if len(jwks.Keys) != maxKeys || slices.ContainsFunc(jwks.Keys, func(k struct{ Kid string }) bool { return k.Kid == kid(t, old) }) {
		t.Errorf("jwks after 4 rotations: %+v", jwks.Keys)
	}

	// Only loopback callers may rotate.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/admin/realms/mcp/rotate-keys", nil)
	req.RemoteAddr = "192.0.2.7:4711"
	p.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("remote rotate: %d, want 403", rec.Code)
	}
}

// TestConcurrentRotation logs in while keys rotate: every token verifies.
func TestConcurrentRotation(t *testing.T) {
	cfg, _ := devRealm(t)
	p := start(t, cfg)
	tokens := make([]string, 16)
	var wg sync.WaitGroup
	for i := range tokens {
		wg.Go(func() {
			resp, err := http.PostForm(p.TokenURL(), url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {"bob"}, "password": {"bob"}})
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var body struct {
				AccessToken string `json:"access_token"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			tokens[i] = body.AccessToken
		})
	}
	wg.Go(func() { _ = p.RotateKeys() })
	wg.Wait()
	for i, tok := range tokens {
		if tok == "" {
			t.Fatalf("login %d failed", i)
		}
		verify(t, p, tok, "mcp-gateway")
	}
}

func TestConfigErrors(t *testing.T) {
	ok := func() Config {
		return Config{BaseURL: "http://127.0.0.1:1", Clients: []Client{{ID: "gw", Secret: "s", TokenExchange: []string{"srv"}}, {ID: "srv"}, {ID: "cli", Public: true}},
			Users: []User{{Username: "u", Password: "p", ClientRoles: map[string][]string{"srv": {"r"}}}}}
	}
	if _, err := New(ok(), Deps{}); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no base URL", func(c *Config) { c.BaseURL = "" }},
		{"base URL with path", func(c *Config) { c.BaseURL = "http://127.0.0.1:1/x" }},
		{"bad realm", func(c *Config) { c.Realm = "a/b" }},
		{"negative lifetime", func(c *Config) { c.TokenLifetime = -1 }},
		{"duplicate client", func(c *Config) { c.Clients = append(c.Clients, Client{ID: "srv"}) }},
		{"unknown exchange target", func(c *Config) { c.Clients[0].TokenExchange = []string{"nope"} }},
		{"public client exchanging", func(c *Config) { c.Clients[2].TokenExchange = []string{"srv"} }},
		{"public client with secret", func(c *Config) { c.Clients[2].Secret = "s" }},
		{"missing secret file", func(c *Config) { c.Clients[0].Secret, c.Clients[0].SecretFile = "", "/nonexistent" }},
		{"roles of unknown client", func(c *Config) { c.Users[0].ClientRoles["nope"] = []string{"r"} }},
		{"user without password", func(c *Config) { c.Users[0].Password = "" }},
		{"duplicate sub", func(c *Config) {
			c.Users = append(c.Users, User{Username: "v", Password: "p", Subject: uuidFrom("mcp/user/u")})
		}},
		{"unknown default audience", func(c *Config) { c.DefaultAudiences = []string{"nope"} }},
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

func TestLoadConfigUnknownKey(t *testing.T) {
	path := t.TempDir() + "/realm.yaml"
	if err := os.WriteFile(path, []byte("realm: mcp\nclients:\n  - clientId: a\n    secrt: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil {
		t.Error("LoadConfig accepted an unknown key")
	}
}

func TestUserinfo(t *testing.T) {
	cfg, _ := devRealm(t)
	p := start(t, cfg)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, p.Issuer()+"/protocol/openid-connect/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+login(t, p, "alice"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var info map[string]any
	if err := json.Unmarshal(b, &info); err != nil || info["preferred_username"] != "alice" {
		t.Errorf("userinfo %s: %s", resp.Status, b)
	}
}

func TestTokenEndpointFormOnly(t *testing.T) {
	cfg, _ := devRealm(t)
	p := start(t, cfg)
	query := "?grant_type=password&client_id=mcp-cli&username=alice&password=alice"
	tests := []struct {
		name, method string
		want         int
	}{
		{"GET with query", http.MethodGet, http.StatusMethodNotAllowed},
		{"POST with query", http.MethodPost, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, p.TokenURL()+query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want || strings.Contains(string(b), "access_token") {
				t.Errorf("%s: %s", resp.Status, b)
			}
		})
	}
}

// BenchmarkTokenExchange measures one exchange over loopback HTTP (what the
// gateway pays on an exchange cache miss against this provider).
func BenchmarkTokenExchange(b *testing.B) {
	cfg, secret := devRealm(b)
	p := start(b, cfg)
	form := url.Values{"grant_type": {exchangeGrant}, "subject_token": {login(b, p, "alice")}, "subject_token_type": {accessType}, "audience": {kube}}
	b.ReportAllocs()
	for b.Loop() {
		if status, body := call(b, p, form, "mcp-gateway", secret); status != http.StatusOK {
			b.Fatalf("status %d: %v", status, body["error"])
		}
	}
}

func BenchmarkPasswordLogin(b *testing.B) {
	cfg, _ := devRealm(b)
	p := start(b, cfg)
	b.ReportAllocs()
	for b.Loop() {
		login(b, p, "alice")
	}
}
