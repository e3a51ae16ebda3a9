//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpUserTools are the tools of kubernetes-mcp-server 0.0.67 (default
// toolsets core and config) for which user mcp of dev/realm.yaml holds a
// role. The server also lists projects_list and resources_scale, for which
// mcp holds none.
var mcpUserTools = []string{
	"configuration_view", "events_list", "namespaces_list",
	"nodes_log", "nodes_stats_summary", "nodes_top",
	"pods_delete", "pods_exec", "pods_get", "pods_list", "pods_list_in_namespace", "pods_log", "pods_run", "pods_top",
	"resources_create_or_update", "resources_delete", "resources_get", "resources_list",
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	slices.Sort(out)
	return out
}

// TestKuadrantUseCase2 is use case 2 of Kuadrant's Kubernetes MCP server
// guide (OIDC and token exchange) end to end with a real API server: the
// real kubernetes-mcp-server, in passthrough mode on cluster a of the two
// trust domains, is registered as mcp-test/kubernetes-mcp with prefix kube_
// and the shipped keycloak-roles policy (the guide's AuthPolicy); realm
// domain-a of the dev provider (HTTPS, test CA) is the one realm. User mcp
// sees exactly the tools of the roles it holds and a tool without a role is
// 403; calls reach the server, and through it cluster a's API server, with
// the token mcp-authz exchanged for mcp-test/kubernetes-mcp (the audience
// cluster a accepts): the API server authenticates alice from it and lists
// team-a's pods for her, refuses mcp and bob by RBAC, and never receives a
// caller's own token (which it would accept: its aud names the server too).
func TestKuadrantUseCase2(t *testing.T) {
	d := domains(t)
	k8s := startKubernetesMCPPassthrough(t, d, d.a)
	rec := startRecordingProxy(t, k8s)
	api := d.a.proxy
	apiMark := api.mark()
	// mcp-authz reaches the provider over HTTPS: its processes trust the
	// test CA through SSL_CERT_FILE (identity.issuers[].caFile and exchange.caFile
	// are the settings; TestIssuerCAFile and TestChain hold them).
	t.Setenv("SSL_CERT_FILE", d.caFile)
	a := startAggregate(t, 1, d.identityConfig(d.a.realm)+fmt.Sprintf(`servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s/mcp
policies:
  - name: keycloak-roles
    file: %s
`, rec.url(), repoFile("examples/policies/keycloak-roles/keycloak-roles.cel")))

	// The server itself lists tools nobody here holds a role for.
	direct := connectAs(t, k8s, "unused", nil)
	all := listTools(t, direct)
	for _, tool := range []string{"projects_list", "resources_scale"} {
		if !slices.Contains(all, tool) {
			t.Fatalf("kubernetes-mcp-server does not list %s: %q", tool, all)
		}
	}

	mcpToken := d.login(t, realmA, "mcp")
	mcpSub, _ := jwtPayload(t, mcpToken)["sub"].(string)
	aliceToken := d.login(t, realmA, "alice")
	aliceSub, _ := jwtPayload(t, aliceToken)["sub"].(string)
	bobToken := d.login(t, realmA, "bob")
	callers := []string{mcpToken, aliceToken, bobToken}
	for _, tc := range []struct {
		user  string
		token string
		want  []string
	}{
		{user: "mcp", token: mcpToken, want: prefixed("kube_", mcpUserTools)},
		{user: "alice", token: aliceToken, want: prefixed("kube_", []string{"namespaces_list", "pods_list", "resources_list"})},
	} {
		t.Run("tools/list as "+tc.user, func(t *testing.T) {
			cs := connectAs(t, a.front, tc.token, nil)
			if diff := cmp.Diff(tc.want, listTools(t, cs)); diff != "" {
				t.Errorf("tools (-want +got):\n%s", diff)
			}
		})
	}

	// exchangedOnly checks that cluster a was sent, since mark, exactly one
	// token: one mcp-authz exchanged for the server on behalf of sub (never
	// a caller's own), and returns it.
	exchangedOnly := func(t *testing.T, mark int, sub string) string {
		t.Helper()
		toks := api.tokensSince(mark)
		if len(toks) != 1 {
			t.Fatalf("the API server was sent %d distinct tokens, want 1", len(toks))
		}
		tok := toks[0]
		if slices.Contains(callers, tok) {
			t.Fatal("a caller's own token reached the API server")
		}
		claims := jwtPayload(t, tok)
		if aud := audience(claims); !slices.Equal(aud, []string{"mcp-test/kubernetes-mcp"}) {
			t.Errorf("the API server was sent a token with aud %q, want mcp-test/kubernetes-mcp", aud)
		}
		if claims["sub"] != sub || claims["azp"] != "mcp-gateway" {
			t.Errorf("the API server was sent sub %v, azp %v; want %s and the gateway client", claims["sub"], claims["azp"], sub)
		}
		return tok
	}

	mcpSession := connectAs(t, a.front, mcpToken, nil)
	t.Run("a call reaches the server with an exchanged token", func(t *testing.T) {
		// The server passes the token it receives on to the API server,
		// which authenticates mcp from it and refuses by RBAC: the answer
		// is the server's tool error.
		mark, since := api.mark(), auditTime()
		ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
		defer cancel()
		res, err := mcpSession.CallTool(ctx, &mcp.CallToolParams{Name: "kube_namespaces_list", Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if text, _ := json.Marshal(res.Content); !res.IsError || !strings.Contains(string(text), "failed to list namespaces") ||
			!strings.Contains(string(text), `User \"domain-a:mcp\" cannot list resource \"namespaces\"`) {
			t.Errorf("namespaces_list answered %s (isError %v)", text, res.IsError)
		}
		calls := rec.calls("namespaces_list")
		for _, r := range calls {
			tok, ok := strings.CutPrefix(r.authorization(), "Bearer ")
			if !ok || tok == mcpToken {
				t.Fatal("the server did not receive an exchanged bearer token")
			}
			claims := jwtPayload(t, tok)
			if aud := audience(claims); !slices.Equal(aud, []string{"mcp-test/kubernetes-mcp"}) {
				t.Errorf("aud = %q, want mcp-test/kubernetes-mcp", aud)
			}
			if claims["sub"] != mcpSub || claims["azp"] != "mcp-gateway" {
				t.Errorf("sub = %v, azp = %v; want mcp's sub and the gateway client", claims["sub"], claims["azp"])
			}
			roles, _ := json.Marshal(claims["resource_access"])
			if !strings.Contains(string(roles), `"namespaces_list"`) {
				t.Errorf("the exchanged token carries no namespaces_list role: %s", roles)
			}
		}
		if len(calls) != 1 {
			t.Errorf("the server received %d calls of namespaces_list, want 1", len(calls))
		}
		// What reached the Kubernetes API is the exchanged token, and the
		// API server authenticated mcp from it.
		tok := exchangedOnly(t, mark, mcpSub)
		if code, user := d.a.whoami(t, tok); code != http.StatusCreated || user.Username != "domain-a:mcp" {
			t.Errorf("SelfSubjectReview of the token the API server was sent: %d %q, want domain-a:mcp", code, user.Username)
		}
		want := apiCall{Verb: "list", Resource: "namespaces", User: "domain-a:mcp", Credential: credentialID(t, tok), Code: http.StatusForbidden}
		waitFor(t, "the API server's audit of the namespace list", 10*time.Second, func() bool { return slices.Contains(d.a.requests(t, since), want) })
	})

	t.Run("alice lists cluster a's pods", func(t *testing.T) {
		mark, since := api.mark(), auditTime()
		cs := connectAs(t, a.front, aliceToken, nil)
		text, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list"})
		if err != nil {
			t.Fatalf("kube_pods_list: %v", err)
		}
		for _, p := range d.a.pods {
			if !strings.Contains(text, p) {
				t.Errorf("kube_pods_list does not list %s:\n%s", p, text)
			}
		}
		tok := exchangedOnly(t, mark, aliceSub)
		code, user := d.a.whoami(t, tok)
		if code != http.StatusCreated || user.Username != "domain-a:alice" || !slices.Contains(user.Groups, "domain-a:engineering") {
			t.Errorf("SelfSubjectReview of the token the API server was sent: %d %+v, want domain-a:alice in domain-a:engineering", code, user)
		}
		want := []apiCall{{Verb: "list", Resource: "pods", User: "domain-a:alice", Credential: credentialID(t, tok), Code: http.StatusOK}}
		if diff := cmp.Diff(want, d.a.awaitPodLists(t, since)); diff != "" {
			t.Errorf("audited pod lists (-want +got):\n%s", diff)
		}
	})

	t.Run("bob is refused by the API server, never with his own token", func(t *testing.T) {
		// bob holds the pods_list role (the policy allows) but no RBAC.
		mark, since := api.mark(), auditTime()
		cs := connectAs(t, a.front, bobToken, nil)
		bobSub, _ := jwtPayload(t, bobToken)["sub"].(string)
		if _, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list"}); err == nil ||
			!strings.Contains(err.Error(), `User "domain-a:bob" cannot list resource "pods"`) {
			t.Errorf("bob's kube_pods_list: %v, want the API server's refusal", err)
		}
		tok := exchangedOnly(t, mark, bobSub)
		want := []apiCall{{Verb: "list", Resource: "pods", User: "domain-a:bob", Credential: credentialID(t, tok), Code: http.StatusForbidden}}
		if diff := cmp.Diff(want, d.a.awaitPodLists(t, since)); diff != "" {
			t.Errorf("audited pod lists (-want +got):\n%s", diff)
		}
	})

	t.Run("a tool without the role is 403", func(t *testing.T) {
		before, mark := len(rec.requests()), api.mark()
		for _, tool := range []string{"kube_projects_list", "kube_resources_scale"} {
			resp, body := post(t.Context(), t, a.front, toolCall(tool), map[string]string{"Authorization": "Bearer " + mcpToken})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "tool_denied") {
				t.Errorf("%s: %d %s", tool, resp.StatusCode, body)
			}
			if _, err := callTool(t, mcpSession, &mcp.CallToolParams{Name: tool}); err == nil {
				t.Errorf("%s through the go-sdk client succeeded", tool)
			}
		}
		for _, r := range rec.requests()[before:] {
			if r.method == "tools/call" {
				t.Errorf("a denied call reached the server: %s %s", r.method, r.tool)
			}
		}
		if n := len(api.since(mark)); n != 0 {
			t.Errorf("denied calls sent %d requests to the API server", n)
		}
	})

	// Over the whole test, the API server was sent no caller's token and no
	// token for the gateway: only tokens exchanged for the server.
	for _, tok := range api.tokensSince(apiMark) {
		if slices.Contains(callers, tok) || slices.Contains(audience(jwtPayload(t, tok)), "mcp-gateway") {
			t.Errorf("the API server was sent a token for the gateway (aud %q)", audience(jwtPayload(t, tok)))
		}
	}
	for _, tok := range append(callers, api.tokensSince(apiMark)...) {
		a.noTokenInLogs(t, tok)
	}
}

// TestGatewayPolicyExamples runs agentgateway's rules and kgateway's
// MCPAuthPolicy example (examples/policies), each twin, as policies of one
// stack with the test users admin, alice and me: agentgateway's for a
// GitHub-like server default/github, kgateway's for default/mcp-tool. The
// callers' identity decides (no exchange: the realm has no default/github
// client).
func TestGatewayPolicyExamples(t *testing.T) {
	p := startIdP(t, "")
	github := startGoServer(t, "default/github", "get_me", "delete_repository", "create_repository")
	tool := startGoServer(t, "default/mcp-tool", "convert_to_markdown", "fetch")
	tokens := map[string]string{}
	for _, u := range []string{"admin", "alice", "me"} {
		tokens[u] = p.login(t, u)
	}
	for _, twin := range []string{"cel", "rego"} {
		t.Run(twin, func(t *testing.T) {
			a := startAggregate(t, 1, fmt.Sprintf(`identity:
  issuers:
    - issuerURL: %s
      audiences: [mcp-gateway]
servers:
  - name: default/github
    prefix: gh_
    url: %s
  - name: default/mcp-tool
    prefix: tool_
    url: %s
policies:
  - name: agentgateway
    servers: [default/github]
    file: %s
  - name: kgateway
    servers: [default/mcp-tool]
    file: %s
`, p.issuer, github.url, tool.url,
				repoFile("examples/policies/agentgateway/agentgateway."+twin),
				repoFile("examples/policies/kgateway/kgateway."+twin)))

			for _, tc := range []struct {
				user    string
				visible []string
			}{
				{user: "admin", visible: []string{"gh_delete_repository", "gh_get_me"}},
				{user: "alice", visible: []string{"gh_get_me"}},
				{user: "me", visible: []string{"gh_get_me", "tool_convert_to_markdown"}},
			} {
				t.Run(tc.user, func(t *testing.T) {
					cs := connectAs(t, a.front, tokens[tc.user], nil)
					if diff := cmp.Diff(tc.visible, listTools(t, cs)); diff != "" {
						t.Errorf("tools (-want +got):\n%s", diff)
					}
					// Every tool of both servers: the visible ones are
					// callable and answer from their server, the others
					// are 403 at the front.
					for _, name := range []string{"gh_get_me", "gh_delete_repository", "gh_create_repository", "tool_convert_to_markdown", "tool_fetch"} {
						if slices.Contains(tc.visible, name) {
							server, unprefixed, _ := strings.Cut(name, "_")
							want := map[string]string{"gh": github.name, "tool": tool.name}[server] + ":" + unprefixed
							if got, err := callTool(t, cs, &mcp.CallToolParams{Name: name}); err != nil || got != want {
								t.Errorf("%s: %q, %v; want %q", name, got, err, want)
							}
							continue
						}
						resp, body := post(t.Context(), t, a.front, toolCall(name), map[string]string{"Authorization": "Bearer " + tokens[tc.user]})
						if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "tool_denied") {
							t.Errorf("%s: %d %s, want 403 tool_denied", name, resp.StatusCode, body)
						}
					}
				})
			}
		})
	}
}
