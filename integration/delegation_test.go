//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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
				waitFor(t, "the API server's audit of the call", 10*time.Second, func() bool {
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
			if diff := cmp.Diff(tc.wantAudit, tc.target.awaitPodLists(t, since)); diff != "" {
				t.Errorf("cluster %s audited pod lists (-want +got):\n%s", tc.target.name, diff)
			}
		})
	}
}

// loginScoped is a password login of user at realm asking for scope.
func (d *trustDomains) loginScoped(t *testing.T, realm, user, scope string) string {
	t.Helper()
	body, err := d.token(t.Context(), d.idp.Realm(realm), url.Values{"grant_type": {"password"}, "client_id": {"mcp-cli"},
		"username": {user}, "password": {user}, "scope": {scope}}, false)
	if err != nil {
		t.Fatalf("login %s at %s with scope %q: %v", user, realm, scope, err)
	}
	return body.AccessToken
}

// jwtShaped matches a compact JWS whose header and payload are JSON objects.
var jwtShaped = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+`)

// TestKuadrantUseCase3 is the delegation issue's use case through front,
// authz, router, kubernetes-mcp-server (passthrough, contexts a and b) and
// the two real API servers: mcp-authz picks the exchange profile from the
// call's context argument, hub (realm A's exchange) for a, spoke (identity
// chaining A→B: token exchange at A for a JWT authorization grant, jwt-bearer
// at B) for b. Each API server is asked what it authenticated (audit log by
// the token's JTI, SelfSubjectReview), and the iss of what cluster b
// authenticated is realm B's. An unmapped context is 403 tool_denied and
// reaches no cluster; bob, mapped at B but without RBAC there, is refused by
// cluster b's RBAC; no caller token and no authorization grant reaches a
// cluster, the MCP server or a log. A call on cluster b needs scope
// cluster-b: without it the answer is a step-up challenge, and the client
// that signs in again with the scope it names succeeds.
func TestKuadrantUseCase3(t *testing.T) {
	d := domains(t)
	k8s := startKubernetesMCPPassthrough(t, d, d.a, d.b)
	rec := startRecordingProxy(t, k8s)
	pa, pb := d.a.realm, d.b.realm
	aMark, bMark := d.a.proxy.mark(), d.b.proxy.mark()
	t.Setenv("SSL_CERT_FILE", d.caFile)
	// The policy reads the caller's roles (identity: realm A's token, the
	// one with the MCP server's roles), the target, and for target b the
	// final token (realm B's, whose roles are B's own).
	a := startAggregate(t, 1, fmt.Sprintf(`identity:
  issuers:
    - issuerURL: %[1]s
      audiences: [mcp-gateway]
  keyRefreshInterval: 500ms
exchange:
  profiles:
    hub:
      caFile: %[5]s
      steps:
        - tokenURL: %[2]s
          clientID: mcp-gateway
          clientSecretFile: %[6]s
      expect:
        issuer: %[1]s
        audience: mcp-test/kubernetes-mcp
    spoke:
      caFile: %[5]s
      steps:
        - tokenURL: %[2]s
          clientID: mcp-gateway
          clientSecretFile: %[6]s
          audience: %[3]s
        - grant: jwt-bearer
          tokenURL: %[4]s
          clientID: mcp-gateway
          clientSecretFile: %[6]s
          audience: kubernetes
      expect:
        issuer: %[3]s
        audience: kubernetes
servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %[7]s/mcp
    targets:
      argument: context
      default: a
      values:
        a: {exchange: hub}
        b: {exchange: spoke}
policies:
  - name: caller-roles
    cel: |
      !has(mcp.tool) || (
        mcp.tool.name in identity.resource_access[mcp.server].roles &&
        (exchange.target != "b" || (exchange.profile == "spoke" && token.iss == %[3]q)))
  - name: cluster-b-needs-scope
    cel: '!has(mcp.tool) || exchange.target != "b" || "cluster-b" in identity.?scope.orValue("").split(" ")'
    stepUpScopes: [cluster-b]
`, pa.Issuer(), pa.TokenURL(), pb.Issuer(), pb.TokenURL(), d.caFile, repoFile("dev/gateway-secret"), rec.url()))

	alice := d.loginScoped(t, realmA, "alice", "openid profile cluster-b")
	bob := d.loginScoped(t, realmA, "bob", "openid profile cluster-b")
	alicePlain := d.login(t, realmA, "alice") // without cluster-b
	callers := []string{alice, bob, alicePlain}

	t.Run("tools/list as alice", func(t *testing.T) {
		cs := connectAs(t, a.front, alice, nil)
		want := prefixed("kube_", []string{"namespaces_list", "pods_list", "resources_list"})
		if diff := cmp.Diff(want, listTools(t, cs)); diff != "" {
			t.Errorf("tools (-want +got):\n%s", diff)
		}
	})

	// sentOnly checks that c was sent, since mark, exactly one token, of
	// c's issuer and audience (never a caller's, never a grant), and
	// returns it.
	sentOnly := func(t *testing.T, c *cluster, mark int) string {
		t.Helper()
		toks := c.proxy.tokensSince(mark)
		if len(toks) != 1 {
			t.Fatalf("cluster %s was sent %d distinct tokens, want 1", c.name, len(toks))
		}
		tok := toks[0]
		if slices.Contains(callers, tok) {
			t.Fatalf("a caller's own token reached cluster %s", c.name)
		}
		claims := jwtPayload(t, tok)
		if claims["iss"] != c.realm.Issuer() || !slices.Equal(audience(claims), []string{c.audience}) {
			t.Errorf("cluster %s was sent iss %v aud %q, want %s %s", c.name, claims["iss"], audience(claims), c.realm.Issuer(), c.audience)
		}
		return tok
	}

	for _, tc := range []struct {
		name     string
		caller   string
		context  any // nil: no context argument
		target   *cluster
		wantUser string // whom target authenticated
		wantCode int    // of the audited pod list
		wantErr  string // a tool error, else pods are listed
	}{
		{name: "alice, context b: realm B's token at cluster b", caller: alice, context: "b", target: d.b,
			wantUser: "domain-b:alice.liddell", wantCode: http.StatusOK},
		{name: "alice, context a: realm A's token at cluster a", caller: alice, context: "a", target: d.a,
			wantUser: "domain-a:alice", wantCode: http.StatusOK},
		{name: "alice, no context: the default, a", caller: alice, target: d.a,
			wantUser: "domain-a:alice", wantCode: http.StatusOK},
		{name: "bob, context b: refused by cluster b's RBAC", caller: bob, context: "b", target: d.b,
			wantUser: "domain-b:bob.builder", wantCode: http.StatusForbidden,
			wantErr: `User "domain-b:bob.builder" cannot list resource "pods"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := d.b
			if tc.target == d.b {
				other = d.a
			}
			since := auditTime()
			mark, otherMark := tc.target.proxy.mark(), other.proxy.mark()
			cs := connectAs(t, a.front, tc.caller, nil)
			args := map[string]any{}
			if tc.context != nil {
				args["context"] = tc.context
			}
			text, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list", Arguments: args})
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("kube_pods_list: %q, %v; want an error containing %q", text, err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("kube_pods_list: %v", err)
			default:
				for _, p := range tc.target.pods {
					if !strings.Contains(text, p) {
						t.Errorf("kube_pods_list does not list %s:\n%s", p, text)
					}
				}
				for _, p := range other.pods {
					if strings.Contains(text, p) {
						t.Errorf("kube_pods_list lists %s of cluster %s:\n%s", p, other.name, text)
					}
				}
			}
			if n := len(other.proxy.since(otherMark)); n != 0 {
				t.Errorf("cluster %s was sent %d requests", other.name, n)
			}
			tok := sentOnly(t, tc.target, mark)
			// What the API server authenticated: the audited pod list names
			// the user and the token by its JTI, the token of that JTI is
			// the realm's, and SelfSubjectReview agrees.
			want := []apiCall{{Verb: "list", Resource: "pods", User: tc.wantUser, Credential: credentialID(t, tok), Code: tc.wantCode}}
			var got []apiCall
			waitFor(t, "the API server's audit of the call", 10*time.Second, func() bool { got = tc.target.podLists(t, since); return len(got) > 0 })
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("cluster %s audited pod lists (-want +got):\n%s", tc.target.name, diff)
			}
			if iss := jwtPayload(t, tok)["iss"]; iss != tc.target.realm.Issuer() {
				t.Errorf("cluster %s authenticated a token of %v, want %s", tc.target.name, iss, tc.target.realm.Issuer())
			}
			if code, user := tc.target.whoami(t, tok); code != http.StatusCreated || user.Username != tc.wantUser {
				t.Errorf("SelfSubjectReview at cluster %s: %d %q, want %s", tc.target.name, code, user.Username, tc.wantUser)
			}
		})
	}

	t.Run("an unmapped context is tool_denied and reaches no cluster", func(t *testing.T) {
		before, am, bm := len(rec.requests()), d.a.proxy.mark(), d.b.proxy.mark()
		for _, args := range []string{`{"context":"c"}`, `{"context":"B"}`, `{"context":""}`, `{"context":["b"]}`} {
			body := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"kube_pods_list","arguments":` + args + `}}`
			resp, got := post(t.Context(), t, a.front, body, map[string]string{"Authorization": "Bearer " + alice})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(got), `"reason":"tool_denied"`) {
				t.Errorf("%s: %d %s, want 403 tool_denied", args, resp.StatusCode, got)
			}
		}
		cs := connectAs(t, a.front, alice, nil)
		if _, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list", Arguments: map[string]any{"context": "c"}}); err == nil {
			t.Error("context c through the go-sdk client succeeded")
		}
		for _, r := range rec.requests()[before:] {
			if strings.HasPrefix(r.method, "tools/call") {
				t.Errorf("a denied call reached the MCP server: %s", r.method)
			}
		}
		if n, m := len(d.a.proxy.since(am)), len(d.b.proxy.since(bm)); n+m != 0 {
			t.Errorf("denied calls sent %d requests to cluster a and %d to cluster b", n, m)
		}
	})

	t.Run("step-up: context b without scope cluster-b, then with it", func(t *testing.T) {
		bm := d.b.proxy.mark()
		body := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{"context":"b"}}}`
		resp, got := post(t.Context(), t, a.front, body, map[string]string{"Authorization": "Bearer " + alicePlain})
		challenge := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(got), `"reason":"insufficient_scope"`) ||
			!strings.HasPrefix(challenge, `Bearer error="insufficient_scope", scope="cluster-b", resource_metadata="`) {
			t.Fatalf("without the scope: %d %q %s, want 403 with an insufficient_scope challenge for cluster-b", resp.StatusCode, challenge, got)
		}
		if n := len(d.b.proxy.since(bm)); n != 0 {
			t.Errorf("the refused call sent %d requests to cluster b", n)
		}
		// The client signs in again asking for what the challenge names,
		// and retries.
		scope := regexp.MustCompile(`scope="([^"]*)"`).FindStringSubmatch(challenge)[1]
		stepped := d.loginScoped(t, realmA, "alice", "openid profile "+scope)
		callers = append(callers, stepped)
		cs := connectAs(t, a.front, stepped, nil)
		text, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list", Arguments: map[string]any{"context": "b"}})
		if err != nil || !strings.Contains(text, d.b.pods[0]) {
			t.Errorf("after step-up: %q, %v; want cluster b's pods", text, err)
		}
		// Context a needs no scope.
		cs = connectAs(t, a.front, alicePlain, nil)
		if _, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list", Arguments: map[string]any{"context": "a"}}); err != nil {
			t.Errorf("context a without the scope: %v", err)
		}
	})

	// Over the whole test: the clusters and the MCP server were sent only
	// tokens of the cluster's realm for its audience (never a caller's,
	// never the JWT authorization grant, whose aud is realm B's issuer), and
	// no mcp-authz process logged a JWT.
	for _, c := range []*cluster{d.a, d.b} {
		mark := aMark
		if c == d.b {
			mark = bMark
		}
		for _, tok := range c.proxy.tokensSince(mark) {
			claims := jwtPayload(t, tok)
			if slices.Contains(callers, tok) || claims["iss"] != c.realm.Issuer() || !slices.Equal(audience(claims), []string{c.audience}) {
				t.Errorf("cluster %s was sent a token of %v for %q", c.name, claims["iss"], audience(claims))
			}
		}
	}
	for _, r := range rec.requests() {
		tok, ok := strings.CutPrefix(r.authorization(), "Bearer ")
		if !ok {
			t.Errorf("the MCP server got %s without a bearer token", r.method)
			continue
		}
		claims := jwtPayload(t, tok)
		hub := claims["iss"] == pa.Issuer() && slices.Equal(audience(claims), []string{audienceA})
		spoke := claims["iss"] == pb.Issuer() && slices.Equal(audience(claims), []string{audienceB})
		if slices.Contains(callers, tok) || (!hub && !spoke) {
			t.Errorf("the MCP server got %s with a token of %v for %q", r.method, claims["iss"], audience(claims))
		}
	}
	for i, p := range append([]*proc{a.edge}, a.routers...) {
		if m := jwtShaped.FindString(p.out.String()); m != "" {
			t.Errorf("mcp-authz process %d logged a JWT", i)
		}
	}
}
