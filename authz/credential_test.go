package authz

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
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
			resp := s.Decide(t.Context(), checkRequest("POST", body, map[string]string{"authorization": "Bearer caller-token"}))
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

// TestRegistrationCredential: a registration's credentialRef is the server's
// upstream Authorization, sent whole as a static profile's is, by Decide
// (calls, attached routes, GET) and by UpstreamAuthorization (the router's
// own calls), with identity and exchange on or off; the caller's token and
// an exchange never replace it; policies see exchange.profile
// "credentialRef"; the log never holds it.
func TestRegistrationCredential(t *testing.T) {
	const secret = "APIKEY s3cret-value"
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "mcp-test/weather", Prefix: "weather_", URL: "http://127.0.0.1:1/mcp", Hostname: "weather.example.com",
			Credential: registry.NewCredential("Secret mcp-test/weather-key key token", secret)},
		{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:1/mcp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{Name: "p", CEL: `mcp.server != "mcp-test/weather" || exchange.profile == "credentialRef"`}}})
	if err != nil {
		t.Fatal(err)
	}
	alice := fixedVerifier{&identity.Identity{Issuer: "https://idp/realms/a", Subject: "alice", Audience: []string{"mcp-gateway"}, Expiry: time.Now().Add(time.Hour)}}
	for _, tc := range []struct {
		name      string
		identity  bool
		exchange  bool
		otherAuth string // the Authorization set for kube_ (no credential)
	}{
		{name: "identity and exchange on", identity: true, exchange: true, otherAuth: "Bearer exchanged-for-mcp-test/kubernetes-mcp"},
		{name: "identity on, exchange off", identity: true},
		{name: "anonymous callers", otherAuth: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			x := &recordingExchanger{}
			deps := Deps{Registry: reg, Policy: policy.NewEngine(set), Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			if tc.identity {
				deps.Verifier = alice
			}
			if tc.exchange {
				deps.Exchanger = x
			}
			s, err := New(Config{}, deps)
			if err != nil {
				t.Fatal(err)
			}
			caller := map[string]string{"authorization": "Bearer caller-token"}
			for _, r := range []struct {
				name, method, body, host string
				want                     string
			}{
				{"call", "POST", toolCall("weather_now"), "", secret},
				{"attached route", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, "weather.example.com", secret},
				{"attached GET", "GET", "", "weather.example.com", secret},
				{"another server", "POST", toolCall("kube_pods_list"), "", tc.otherAuth},
			} {
				req := checkRequest(r.method, r.body, caller)
				if r.host != "" {
					req.Host = r.host
				}
				resp := s.Decide(t.Context(), req)
				got, _ := okHeaders(t, resp)
				if got["authorization"] != r.want {
					t.Errorf("%s: authorization = %q, want %q", r.name, got["authorization"], r.want)
				}
			}
			up, err := s.UpstreamAuthorization(t.Context(), "Bearer caller-token", "mcp-test/weather")
			if err != nil || up != secret {
				t.Errorf("UpstreamAuthorization = %q, %v; want the credential", up, err)
			}
			vis, err := s.Visible(t.Context(), "Bearer caller-token", []policy.Target{{Server: "mcp-test/weather", Tool: "now"}})
			if err != nil || len(vis) != 1 || !vis[0] {
				t.Errorf("Visible = %v, %v; want [true] (the policy reads exchange.profile)", vis, err)
			}
			for _, r := range x.got {
				if r.Audience == "mcp-test/weather" {
					t.Errorf("the caller's token was exchanged for the credential's server: %+v", r)
				}
			}
			if strings.Contains(logs.String(), "s3cret") {
				t.Errorf("the decision log holds the credential: %s", logs.String())
			}
		})
	}

	t.Run("a caller token that does not verify gets no credential", func(t *testing.T) {
		s, err := New(Config{}, Deps{Registry: reg, Policy: policy.NewEngine(set), Verifier: rejectingVerifier{}})
		if err != nil {
			t.Fatal(err)
		}
		if up, err := s.UpstreamAuthorization(t.Context(), "Bearer forged", "mcp-test/weather"); err == nil || up != "" {
			t.Errorf("UpstreamAuthorization = %q, %v; want an error", up, err)
		}
		resp := s.Decide(t.Context(), checkRequest("POST", toolCall("weather_now"), map[string]string{"authorization": "Bearer forged"}))
		if status, _, _ := denial(t, resp); status != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", status)
		}
	})
}

// rejectingVerifier refuses every token.
type rejectingVerifier struct{}

func (rejectingVerifier) Verify(context.Context, string) (*identity.Identity, error) {
	return nil, identity.ErrSignature
}
