package authz

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/devidp"
	"github.com/mcp-authz/mcp-authz/internal/devidp/realms"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// domains are realm A and realm B of dev/realm-a.yaml and dev/realm-b.yaml,
// each served over HTTPS by a dev provider of its own (so that B can be
// stopped alone), and the CA file trusting both.
type domains struct {
	a, b   *realms.Server
	stopB  func()
	caFile string
}

// freeAddr reserves a loopback address: B's issuer must be known before A
// (its peer) is built, and A's before B (its identity provider).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func serve(t *testing.T, s *realms.Server) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	var once bool
	stop := func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devidp: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func newDomains(t *testing.T) *domains {
	t.Helper()
	a, err := devidp.LoadConfig("../dev/realm-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := devidp.LoadConfig("../dev/realm-b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a.TokenLifetime, b.TokenLifetime = 5*time.Minute, 5*time.Minute
	addrA, addrB := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	a.Peers = []devidp.Peer{{Alias: "domain-b", Issuer: "https://" + addrB + "/realms/domain-b"}}
	caA := filepath.Join(dir, "ca-a.pem")
	d := &domains{caFile: filepath.Join(dir, "ca.pem")}
	if d.a, err = realms.New(realms.Config{Realms: []devidp.Config{a}, TLS: &realms.TLSConfig{CAFile: caA}}, addrA); err != nil {
		t.Fatal(err)
	}
	serve(t, d.a)
	b.IdentityProviders[0].Realm, b.IdentityProviders[0].Issuer, b.IdentityProviders[0].CAFile = "", "https://"+addrA+"/realms/domain-a", caA
	if d.b, err = realms.New(realms.Config{Realms: []devidp.Config{b}, TLS: &realms.TLSConfig{}}, addrB); err != nil {
		t.Fatal(err)
	}
	d.stopB = serve(t, d.b)
	if err := os.WriteFile(d.caFile, append(d.a.CAPEM(), d.b.CAPEM()...), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// login is user's token of realm A.
func (d *domains) login(t *testing.T, user string) string {
	t.Helper()
	resp, err := d.a.Client().PostForm(d.a.Realm("domain-a").TokenURL(), url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"}, "username": {user}, "password": {user}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("login %s: status %d, %v", user, resp.StatusCode, err)
	}
	return tok.AccessToken
}

// TestDelegation is the decision of use case 3 with real realms over
// HTTPS: one server multiplexing clusters by its context argument, context
// a exchanged at realm A, context b chained A→B; what a caller could try
// against it is denied.
func TestDelegation(t *testing.T) {
	d := newDomains(t)
	pa, pb := d.a.Realm("domain-a"), d.b.Realm("domain-b")
	const kube = "mcp-test/kubernetes-mcp"
	caller, err := identity.New(identity.Config{
		Issuers: []identity.Issuer{{IssuerURL: pa.Issuer(), Audiences: []string{"mcp-gateway"}}},
	}, identity.Deps{HTTPClient: d.a.Client()})
	if err != nil {
		t.Fatal(err)
	}
	x, err := exchange.New(exchange.Config{Profiles: map[string]exchange.Profile{
		"hub": {
			CAFile: d.caFile,
			Steps:  []exchange.Step{{TokenURL: pa.TokenURL(), ClientID: "mcp-gateway", ClientSecretFile: "../dev/gateway-secret", Audience: kube}},
			Expect: &exchange.Expect{Issuer: pa.Issuer(), Audience: kube},
		},
		"spoke": {
			CAFile: d.caFile,
			Steps: []exchange.Step{
				{TokenURL: pa.TokenURL(), ClientID: "mcp-gateway", ClientSecretFile: "../dev/gateway-secret", Audience: pb.Issuer()},
				{Grant: exchange.GrantJWTBearer, TokenURL: pb.TokenURL(), ClientID: "mcp-gateway", ClientSecretFile: "../dev/gateway-secret", Audience: "kubernetes"},
			},
			Expect: &exchange.Expect{Issuer: pb.Issuer(), Audience: "kubernetes"},
		},
	}}, exchange.Deps{Verifier: caller})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := registry.NewSnapshot([]registry.Server{{
		Name: kube, Prefix: "kube_", URL: "http://127.0.0.1:1/mcp",
		Targets: &registry.Targets{Argument: "context", Default: "a", Values: map[string]registry.Target{"a": {Exchange: "hub"}, "b": {Exchange: "spoke"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	// The policy reads the exchange and the final token's claims: context
	// b needs B's token, whose roles are B's.
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{Name: "targets", CEL: `!has(mcp.tool) ||
		(exchange.target == "a" && exchange.profile == "hub" && token.iss.endsWith("/realms/domain-a")) ||
		(exchange.target == "b" && exchange.profile == "spoke" && exchange.steps.size() == 2 && exchange.steps[1].grant == "jwt-bearer" &&
		 "view" in token.resource_access["kubernetes"].roles)`}}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err := New(Config{}, Deps{Registry: reg, Verifier: caller, Exchanger: x, Policy: policy.NewEngine(set), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	alice := d.login(t, "alice")
	call := func(args string) string {
		return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"kube_pods_list","arguments":` + args + `}}`
	}
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	tests := []struct {
		name    string
		body    string
		headers map[string]string
		status  int // 0: allowed
		reason  string
		iss     string // of the token sent upstream
	}{
		{"context a: realm A's exchange", call(`{"context":"a"}`), nil, 0, "", pa.Issuer()},
		{"context b: chain A to B", call(`{"context":"b","namespace":"default"}`), nil, 0, "", pb.Issuer()},
		{"no context: the default, a", call(`{}`), nil, 0, "", pa.Issuer()},
		{"argument key folded", call(`{"Context":"b"}`), nil, 0, "", pb.Issuer()},
		{"header agrees", call(`{"context":"b"}`), map[string]string{"mcp-param-context": "b"}, 0, "", pb.Issuer()},
		{"header agrees in base64", call(`{"context":"b"}`), map[string]string{"mcp-param-context": b64("b")}, 0, "", pb.Issuer()},
		{"unmapped value", call(`{"context":"c"}`), nil, http.StatusForbidden, ReasonToolDenied, ""},
		{"value of another case", call(`{"context":"B"}`), nil, http.StatusForbidden, ReasonToolDenied, ""},
		{"not a string", call(`{"context":["b"]}`), nil, http.StatusForbidden, ReasonToolDenied, ""},
		{"header disagrees", call(`{"context":"a"}`), map[string]string{"mcp-param-context": "b"}, http.StatusBadRequest, ReasonHeaderMismatch, ""},
		{"header without the argument", call(`{}`), map[string]string{"mcp-param-context": "a"}, http.StatusBadRequest, ReasonHeaderMismatch, ""},
		{"unknown tool (the same denial as unmapped)", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"nope_x","arguments":{}}}`, nil, http.StatusForbidden, ReasonToolDenied, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"authorization": "Bearer " + alice}
			for k, v := range tt.headers {
				h[k] = v
			}
			resp := s.Decide(t.Context(), checkRequest("POST", tt.body, h))
			if tt.status == 0 {
				set, _ := okHeaders(t, resp)
				raw := strings.TrimPrefix(set["authorization"], "Bearer ")
				if raw == alice || raw == set["authorization"] {
					t.Fatal("the caller's token, or no bearer token, goes upstream")
				}
				p := strings.Split(raw, ".")
				b, _ := base64.RawURLEncoding.DecodeString(p[1])
				var c map[string]any
				_ = json.Unmarshal(b, &c)
				if c["iss"] != tt.iss {
					t.Errorf("upstream token iss %v, want %s", c["iss"], tt.iss)
				}
				return
			}
			status, body, _ := denial(t, resp)
			if status != tt.status || body.Error.Data.Reason != tt.reason {
				t.Errorf("denial %d %s, want %d %s", status, body.Error.Data.Reason, tt.status, tt.reason)
			}
		})
	}

	t.Run("a domain-B token sent by a client", func(t *testing.T) {
		resp := s.Decide(t.Context(), checkRequest("POST", call(`{"context":"b"}`), map[string]string{"authorization": "Bearer " + alice}))
		set, _ := okHeaders(t, resp)
		resp = s.Decide(t.Context(), checkRequest("POST", call(`{"context":"b"}`), map[string]string{"authorization": set["authorization"]}))
		if status, body, h := denial(t, resp); status != http.StatusUnauthorized || body.Error.Data.Reason != ReasonIssuerUnknown || !strings.Contains(h.Get("www-authenticate"), "resource_metadata=") {
			t.Errorf("denial %d %s %q, want 401 issuer_unknown with a challenge", status, body.Error.Data.Reason, h.Get("www-authenticate"))
		}
	})

	t.Run("the log names profile, target and steps, never a token", func(t *testing.T) {
		for _, want := range []string{`"profile":"spoke"`, `"target":"b"`, `"step2":"jwt-bearer ` + pb.TokenURL() + `"`} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the decision log lacks %s", want)
			}
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			for _, p := range strings.Split(line, `"`) {
				if strings.Count(p, ".") == 2 && len(p) > 100 {
					t.Fatalf("the decision log holds a JWT: %s", line)
				}
			}
		}
	})

	t.Run("lists are filtered with the default target's exchange", func(t *testing.T) {
		// The policy reads exchange.target and exchange.profile: a list
		// sees them as a call naming no context does (target a, hub).
		vis, err := s.Visible(t.Context(), "Bearer "+alice, []policy.Target{{Server: kube, Tool: "pods_list"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(vis) != 1 || !vis[0] {
			t.Errorf("Visible = %v, want [true]", vis)
		}
	})

	t.Run("realm B stopped", func(t *testing.T) {
		d.stopB()
		bob := d.login(t, "alice") // a new caller token: nothing cached
		logs.Reset()
		resp := s.Decide(t.Context(), checkRequest("POST", call(`{"context":"b"}`), map[string]string{"authorization": "Bearer " + bob}))
		if status, body, _ := denial(t, resp); status != http.StatusServiceUnavailable || body.Error.Data.Reason != ReasonIdPUnavailable {
			t.Errorf("denial %d %s, want 503 idp_unavailable", status, body.Error.Data.Reason)
		}
		if !strings.Contains(logs.String(), "step 2: jwt-bearer at "+pb.TokenURL()) {
			t.Errorf("the log does not name the failing step: %s", logs.String())
		}
		// No fallback to another profile: context a still works, b does not.
		resp = s.Decide(t.Context(), checkRequest("POST", call(`{"context":"a"}`), map[string]string{"authorization": "Bearer " + bob}))
		okHeaders(t, resp)
	})
}

// TestStepUp: a policy's insufficient_scope denial is a 403 whose
// challenge asks for the scopes (never offline_access); the 401 challenge
// names the configured scopes.
func TestStepUp(t *testing.T) {
	s := newTestServer(t, Config{ResourceMetadataURL: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", Scopes: []string{"openid", "mcp:tools"}},
		policy.Policy{Name: "write", CEL: `mcp.tool.name != "pods_delete"`, StepUpScopes: []string{"pods:write"}},
		policy.Policy{Name: "rego", Rego: "package mcp.authz\ndefault allow := true\nallow := {\"allow\": false, \"scopes\": [\"pods:exec\", \"offline_access\"]} if input.mcp.tool.name == \"pods_exec\"\n"},
	)
	tests := []struct {
		name      string
		body      string
		challenge string
	}{
		{"stepUpScopes", toolCall("kube_pods_delete"), `Bearer error="insufficient_scope", scope="pods:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		{"rego scopes, offline_access dropped", toolCall("kube_pods_exec"), `Bearer error="insufficient_scope", scope="pods:exec", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := s.Decide(t.Context(), checkRequest("POST", tt.body, nil))
			status, body, h := denial(t, resp)
			if status != http.StatusForbidden || body.Error.Data.Reason != "insufficient_scope" || h.Get("www-authenticate") != tt.challenge {
				t.Errorf("denial %d %s %q, want 403 insufficient_scope %q", status, body.Error.Data.Reason, h.Get("www-authenticate"), tt.challenge)
			}
		})
	}
	t.Run("401 names the configured scopes", func(t *testing.T) {
		s := newTestServer(t, Config{Scopes: []string{"openid", "mcp:tools"}})
		s.verify = fixedVerifier{}
		resp := s.Decide(t.Context(), checkRequest("POST", toolCall("kube_pods_list"), nil))
		status, _, h := denial(t, resp)
		if want := `Bearer resource_metadata="http://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="openid mcp:tools"`; status != http.StatusUnauthorized || h.Get("www-authenticate") != want {
			t.Errorf("denial %d %q, want 401 %q", status, h.Get("www-authenticate"), want)
		}
	})
	for _, bad := range []string{"offline_access", "a b", `a"b`} {
		if err := (Config{Scopes: []string{bad}}).Validate(); err == nil {
			t.Errorf("Validate(scopes: [%q]) = nil", bad)
		}
	}
}
