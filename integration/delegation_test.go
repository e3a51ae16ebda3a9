//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// startKubernetesMCPPassthrough runs the npm kubernetes-mcp-server on a
// kubeconfig of the given clusters (one context each, named after the
// cluster, the first current; no credentials) with a config file setting
// cluster_auth_mode = "passthrough": each call's bearer token goes to the
// cluster its context argument names. It returns the MCP endpoint; the test
// skips without MCP_AUTHZ_K8S_MCP.
func startKubernetesMCPPassthrough(t *testing.T, d *trustDomains, clusters ...*cluster) string {
	t.Helper()
	k := os.Getenv("MCP_AUTHZ_K8S_MCP")
	if k == "" {
		t.Skip("MCP_AUTHZ_K8S_MCP is not set (make e2e sets it to the npm kubernetes-mcp-server)")
	}
	dir := t.TempDir()
	kubeconfig, err := d.kubeconfig(dir, clusters...)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "config.toml", fmt.Sprintf(`# kubernetes-mcp-server 0.0.67: forward the caller's token, never use kubeconfig credentials.
cluster_auth_mode = "passthrough"
cluster_provider_strategy = "kubeconfig"
kubeconfig = %q
`, kubeconfig))
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	start(t, addr, nil, k, "--config", cfg, "--port", port, "--bind-address", "127.0.0.1")
	return "http://" + addr + "/mcp"
}

// TestTwoClusters proves the delegation issue's environment without
// mcp-authz: two kube-apiservers, each trusting one realm of the dev
// provider, and kubernetes-mcp-server with a context per cluster in
// passthrough mode. alice's token of domain A (exchanged for the audience
// cluster a accepts) lists cluster a's pods with context a; her token of
// domain B, obtained by identity chaining (token exchange at A for a JWT
// authorization grant, jwt-bearer at B), lists cluster b's pods with
// context b; a domain-A token at cluster b is refused by its API server;
// bob, authenticated but without RBAC, is refused by RBAC. Each API server
// is asked whom it authenticated (SelfSubjectReview, audit log), not only
// what was sent.
func TestTwoClusters(t *testing.T) {
	d := domains(t)
	endpoint := startKubernetesMCPPassthrough(t, d, d.a, d.b)

	aliceAtA := d.login(t, realmA, "alice")
	aliceForA := d.exchange(t, d.a.realm, aliceAtA, audienceA)
	grant, aliceForB := d.chain(t, aliceAtA, audienceB)
	bobForA := d.exchange(t, d.a.realm, d.login(t, realmA, "bob"), audienceA)

	t.Run("each API server authenticates its own realm only", func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			cluster    *cluster
			token      string
			wantCode   int
			wantUser   string
			wantGroups []string
		}{
			{name: "alice's A token at a", cluster: d.a, token: aliceForA, wantCode: 201, wantUser: "domain-a:alice",
				wantGroups: []string{"domain-a:engineering", "domain-a:mcp-users", "system:authenticated"}},
			{name: "alice's chained B token at b", cluster: d.b, token: aliceForB, wantCode: 201, wantUser: "domain-b:alice.liddell",
				wantGroups: []string{"domain-b:cluster-b-viewers", "system:authenticated"}},
			{name: "bob's A token at a", cluster: d.a, token: bobForA, wantCode: 201, wantUser: "domain-a:bob",
				wantGroups: []string{"domain-a:mcp-users", "system:authenticated"}},
			{name: "alice's A token at b", cluster: d.b, token: aliceForA, wantCode: 401},
			{name: "alice's B token at a", cluster: d.a, token: aliceForB, wantCode: 401},
			{name: "alice's JWT authorization grant (issuer A, aud B's issuer) at a", cluster: d.a, token: grant, wantCode: 401},
			// alice's own login token names mcp-test/kubernetes-mcp in its
			// aud too (Keycloak's audience resolve: the clients she holds
			// roles in), so cluster a accepts it: only the gateway keeps it
			// away (TestKuadrantUseCase2 checks the API server never sees it).
			{name: "alice's login token at a", cluster: d.a, token: aliceAtA, wantCode: 201, wantUser: "domain-a:alice",
				wantGroups: []string{"domain-a:engineering", "domain-a:mcp-users", "system:authenticated"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, user := tc.cluster.whoami(t, tc.token)
				if code != tc.wantCode || user.Username != tc.wantUser {
					t.Fatalf("SelfSubjectReview: %d %q, want %d %q", code, user.Username, tc.wantCode, tc.wantUser)
				}
				groups := slices.Sorted(slices.Values(user.Groups))
				if diff := cmp.Diff(tc.wantGroups, groups); tc.wantCode == 201 && diff != "" {
					t.Errorf("groups (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("tools take a context argument", func(t *testing.T) {
		cs := connectAs(t, endpoint, aliceForA, nil)
		ctx := t.Context()
		var found bool
		for tool, err := range cs.Tools(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			if tool.Name != "pods_list" {
				continue
			}
			found = true
			schema, _ := json.Marshal(tool.InputSchema)
			if !strings.Contains(string(schema), `"context"`) {
				t.Errorf("pods_list has no context argument: %s", schema)
			}
		}
		if !found {
			t.Fatal("kubernetes-mcp-server does not list pods_list")
		}
	})

	for _, tc := range []struct {
		name    string
		token   string
		context string
		target  *cluster
		// wantPods are listed (and the other cluster's are not); with none,
		// the call is a tool error containing wantErr.
		wantPods []string
		wantErr  string
		// wantAudit is the audited pod lists at target; with none, every
		// request target received was refused at authentication.
		wantAudit []apiCall
	}{
		{name: "alice with her A token lists cluster a", token: aliceForA, context: "a", target: d.a,
			wantPods: d.a.pods, wantAudit: []apiCall{{Verb: "list", Resource: "pods", User: "domain-a:alice", Credential: credentialID(t, aliceForA), Code: 200}}},
		{name: "alice with her chained B token lists cluster b", token: aliceForB, context: "b", target: d.b,
			wantPods: d.b.pods, wantAudit: []apiCall{{Verb: "list", Resource: "pods", User: "domain-b:alice.liddell", Credential: credentialID(t, aliceForB), Code: 200}}},
		{name: "alice's A token at cluster b is refused by its API server", token: aliceForA, context: "b", target: d.b,
			wantErr: "the server has asked for the client to provide credentials"},
		{name: "bob is refused by RBAC", token: bobForA, context: "a", target: d.a,
			wantErr: `User "domain-a:bob" cannot list resource "pods"`, wantAudit: []apiCall{{Verb: "list", Resource: "pods", User: "domain-a:bob", Credential: credentialID(t, bobForA), Code: 403}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := d.b
			if tc.target == d.b {
				other = d.a
			}
			cs := connectAs(t, endpoint, tc.token, nil)
			since := auditTime()
			mark, otherMark := tc.target.proxy.mark(), other.proxy.mark()
			text, err := callTool(t, cs, &mcp.CallToolParams{Name: "pods_list", Arguments: map[string]any{"context": tc.context}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("pods_list: %v", err)
				}
				for _, p := range tc.wantPods {
					if !strings.Contains(text, p) {
						t.Errorf("pods_list does not list %s:\n%s", p, text)
					}
				}
				for _, p := range other.pods {
					if strings.Contains(text, p) {
						t.Errorf("pods_list with context %s lists %s of the other cluster:\n%s", tc.context, p, text)
					}
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("pods_list: %q, %v; want an error containing %q", text, err, tc.wantErr)
			}
			// The caller's token, and only it, went to the cluster the
			// context names; nothing went to the other.
			if got := tc.target.proxy.tokensSince(mark); !slices.Equal(got, []string{tc.token}) {
				t.Errorf("cluster %s was sent %d distinct tokens, want only the caller's", tc.target.name, len(got))
			}
			if got := other.proxy.since(otherMark); len(got) != 0 {
				t.Errorf("cluster %s was sent %d requests for context %s", other.name, len(got), tc.context)
			}
			if tc.wantAudit == nil {
				var got []apiCall
				eventually(t, func() bool {
					got = tc.target.requests(t, since)
					return len(got) > 0
				})
				for _, c := range got {
					if c.User != "" || c.Code != http.StatusUnauthorized {
						t.Errorf("cluster %s audited %+v, want only refusals at authentication", tc.target.name, c)
					}
				}
				return
			}
			var got []apiCall
			eventually(t, func() bool {
				got = tc.target.podLists(t, since)
				return len(got) > 0
			})
			if diff := cmp.Diff(tc.wantAudit, got); diff != "" {
				t.Errorf("cluster %s audited pod lists (-want +got):\n%s", tc.target.name, diff)
			}
		})
	}
}
