//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// startRouteStack runs mcp-authz serve (front + authz) in front of one MCP
// server, the front configured as Envoy is on a server's own HTTPRoute with
// a Kuadrant-style AuthPolicy: the context extension mcp-server names the
// server.
func startRouteStack(t *testing.T, upstream, server, extra string) *stack {
	t.Helper()
	return startGateway(t, upstream, fmt.Sprintf("  contextExtensions: {mcp-server: %s}\n", server), extra)
}

// routeWalk is one MCP session's worth of requests on a server's route.
var routeWalk = []struct {
	name, method, body string
}{
	{"initialize", http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"perroute","version":"1"}}}`},
	{"notifications/initialized", http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
	{"tools/list", http.MethodPost, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`},
	{"ping", http.MethodPost, `{"jsonrpc":"2.0","id":3,"method":"ping"}`},
	{"tools/call", http.MethodPost, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"pods_list","arguments":{}}}`},
	{"GET", http.MethodGet, ""},
	{"DELETE", http.MethodDelete, ""},
}

// sendWalk sends routeWalk as the bearer of token (none if empty) and
// requires each request to pass.
func sendWalk(t *testing.T, url, token string) {
	t.Helper()
	for _, r := range routeWalk {
		req, err := http.NewRequestWithContext(t.Context(), r.method, url, strings.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", "s-1")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 (the upstream's)", r.name, resp.StatusCode)
		}
	}
}

// TestPerRouteTokens: authz attached to one server's route (front with
// contextExtensions mcp-server) sends that server, on every request of a
// session (initialize, notifications, lists, ping, calls, GET, DELETE), a
// token exchanged for it: aud the server, sub alice's, signed by the
// provider; never alice's own token. Without exchange, no Authorization at
// all. A route naming an unregistered server passes nothing.
func TestPerRouteTokens(t *testing.T) {
	const kube = "mcp-test/kubernetes-mcp"
	p := startIdP(t, "")
	alice := p.login(t, "alice")
	ctx := oidc.ClientContext(t.Context(), http.DefaultClient)
	prov, err := oidc.NewProvider(ctx, p.issuer)
	if err != nil {
		t.Fatal(err)
	}
	aliceTok, err := prov.Verifier(&oidc.Config{ClientID: "mcp-gateway"}).Verify(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	identityOnly := fmt.Sprintf(`identity:
  issuers:
    - issuerURL: %s
      audiences: [mcp-gateway]
`, p.issuer)

	t.Run("exchange on", func(t *testing.T) {
		up := startRecorder(t)
		s := startRouteStack(t, up.url(), kube, identityConfig(p)+kubeServer(up.url())+`policies:
  - name: tool-roles
    cel: 'mcp.tool.name in token.resource_access[mcp.server].roles'
`)
		sendWalk(t, s.url(), alice)
		got := up.requests()
		if len(got) != len(routeWalk) {
			t.Fatalf("the upstream received %d requests, want %d", len(got), len(routeWalk))
		}
		verifier := prov.Verifier(&oidc.Config{ClientID: kube})
		for i, r := range got {
			name := routeWalk[i].name
			if r.body != routeWalk[i].body {
				t.Errorf("%s: the upstream received body %q, want %q", name, r.body, routeWalk[i].body)
			}
			auth := r.header.Values("Authorization")
			if len(auth) != 1 {
				t.Errorf("%s: the upstream received Authorization %d times, want once", name, len(auth))
				continue
			}
			if strings.Contains(auth[0], alice) {
				t.Errorf("%s: alice's own token reached the upstream", name)
				continue
			}
			raw, ok := strings.CutPrefix(auth[0], "Bearer ")
			if !ok {
				t.Errorf("%s: upstream Authorization is not a bearer token", name)
				continue
			}
			tok, err := verifier.Verify(ctx, raw)
			if err != nil {
				t.Errorf("%s: the upstream's token does not verify against the provider's keys for aud %s: %v", name, kube, err)
				continue
			}
			if !slices.Equal(tok.Audience, []string{kube}) || tok.Subject != aliceTok.Subject {
				t.Errorf("%s: upstream token aud %v sub %q, want aud [%s] sub %q (alice)", name, tok.Audience, tok.Subject, kube, aliceTok.Subject)
			}
		}
	})

	t.Run("exchange off", func(t *testing.T) {
		up := startRecorder(t)
		s := startRouteStack(t, up.url(), kube, identityOnly+kubeServer(up.url())+"defaultPolicy: allow\n")
		sendWalk(t, s.url(), alice)
		got := up.requests()
		if len(got) != len(routeWalk) {
			t.Fatalf("the upstream received %d requests, want %d", len(got), len(routeWalk))
		}
		for i, r := range got {
			if v := r.header.Values("Authorization"); len(v) != 0 {
				t.Errorf("%s: the upstream received Authorization %d times (alice's own: %v), want none", routeWalk[i].name, len(v), strings.Contains(strings.Join(v, ""), alice))
			}
		}
	})

	t.Run("route names an unregistered server", func(t *testing.T) {
		up := startRecorder(t)
		s := startRouteStack(t, up.url(), "mcp-test/gone", identityConfig(p)+kubeServer(up.url())+"defaultPolicy: allow\n")
		for _, r := range routeWalk {
			req, err := http.NewRequestWithContext(t.Context(), r.method, s.url(), strings.NewReader(r.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+alice)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: status %d, want 403", r.name, resp.StatusCode)
			}
		}
		if n := len(up.requests()); n != 0 {
			t.Errorf("the upstream received %d requests, want none", n)
		}
	})
}
