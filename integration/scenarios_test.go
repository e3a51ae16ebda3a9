//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// recordingProxy forwards to an MCP server (the request path is kept) and records the JSON-RPC method,
// tool name and Authorization header of every request on the way.
type recordingProxy struct {
	url  string
	mu   sync.Mutex
	seen []seenRequest
}

func startRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	to, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	to.Path = ""
	rp := &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(to) },
		FlushInterval: -1,
	}
	r := &recordingProxy{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + lis.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		var m struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		_ = json.Unmarshal(body, &m)
		method := m.Method
		if method == "" {
			method = req.Method
		}
		if m.Params.Name != "" {
			method += " " + m.Params.Name
		}
		r.mu.Lock()
		r.seen = append(r.seen, seenRequest{method: method, authorization: req.Header.Get("Authorization")})
		r.mu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		rp.ServeHTTP(w, req)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *recordingProxy) requests() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// kubeAPI stands where the Kubernetes API server stands: it records the
// Authorization header of every request and answers 401, as an API server
// does to a token it does not accept.
type kubeAPI struct {
	url  string
	mu   sync.Mutex
	auth []string
}

func startKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	k := &kubeAPI{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.auth = append(k.auth, r.Header.Get("Authorization"))
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
	}))
	t.Cleanup(srv.Close)
	k.url = srv.URL
	return k
}

func (k *kubeAPI) authorizations() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.auth)
}

// startKubernetesMCP runs the real kubernetes-mcp-server (npm) on a
// kubeconfig naming api as the cluster, without credentials: the server
// passes the bearer token of each call on to the API, as in the guide's use
// case 2. The test skips without it.
func startKubernetesMCP(t *testing.T, api *kubeAPI) string {
	t.Helper()
	k := os.Getenv("MCP_AUTHZ_K8S_MCP")
	if k == "" {
		t.Skip("MCP_AUTHZ_K8S_MCP is not set (make e2e sets it to the npm kubernetes-mcp-server)")
	}
	kubeconfig := writeFile(t, t.TempDir(), "kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: {server: %q, insecure-skip-tls-verify: true}
users:
  - name: nobody
    user: {}
contexts:
  - name: e2e
    context: {cluster: e2e, user: nobody}
current-context: e2e
`, api.url))
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	start(t, addr, nil, k, "--kubeconfig", kubeconfig, "--port", port, "--bind-address", "127.0.0.1")
	return "http://" + addr + "/mcp"
}

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
// guide (OIDC and token exchange) with the real kubernetes-mcp-server
// registered as mcp-test/kubernetes-mcp with prefix kube_ and the shipped
// keycloak-roles policy (the guide's AuthPolicy): user mcp sees exactly the
// tools of the roles it holds, its calls reach the server (and, passed on
// by it, the Kubernetes API) with a token exchanged for
// mcp-test/kubernetes-mcp, and a tool without a role is 403.
func TestKuadrantUseCase2(t *testing.T) {
	api := startKubeAPI(t)
	k8s := startKubernetesMCP(t, api)
	rec := startRecordingProxy(t, k8s)
	p := startIdP(t, "")
	a := startAggregate(t, 1, identityConfig(p)+fmt.Sprintf(`servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s/mcp
policies:
  - name: keycloak-roles
    file: %s
`, rec.url, repoFile("examples/policies/keycloak-roles/keycloak-roles.cel")))

	// The server itself lists tools nobody here holds a role for.
	direct := connectAs(t, k8s, "unused", nil)
	all := listTools(t, direct)
	for _, tool := range []string{"projects_list", "resources_scale"} {
		if !slices.Contains(all, tool) {
			t.Fatalf("kubernetes-mcp-server does not list %s: %q", tool, all)
		}
	}

	mcpToken := p.login(t, "mcp")
	mcpSub, _ := jwtPayload(t, mcpToken)["sub"].(string)
	aliceToken := p.login(t, "alice")
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

	mcpSession := connectAs(t, a.front, mcpToken, nil)
	t.Run("a call reaches the server with an exchanged token", func(t *testing.T) {
		// The server passes the token it receives on to the Kubernetes API,
		// which refuses it here: the answer is the server's tool error.
		ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
		defer cancel()
		res, err := mcpSession.CallTool(ctx, &mcp.CallToolParams{Name: "kube_namespaces_list", Arguments: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if text, _ := json.Marshal(res.Content); !res.IsError || !strings.Contains(string(text), "failed to list namespaces") {
			t.Errorf("namespaces_list answered %s (isError %v)", text, res.IsError)
		}
		var calls int
		for _, r := range rec.requests() {
			if r.method != "tools/call namespaces_list" {
				continue
			}
			calls++
			tok, ok := strings.CutPrefix(r.authorization, "Bearer ")
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
		if calls != 1 {
			t.Errorf("the server received %d calls of namespaces_list, want 1", calls)
		}
		// What reached the Kubernetes API is the exchanged token.
		var passed bool
		for _, auth := range api.authorizations() {
			if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
				if tok == mcpToken {
					t.Error("mcp's own token reached the Kubernetes API")
				}
				passed = passed || slices.Equal(audience(jwtPayload(t, tok)), []string{"mcp-test/kubernetes-mcp"})
			}
		}
		if !passed {
			t.Error("the Kubernetes API never received the exchanged token")
		}
	})

	t.Run("a tool without the role is 403", func(t *testing.T) {
		before := len(rec.requests())
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
			if strings.HasPrefix(r.method, "tools/call") {
				t.Errorf("a denied call reached the server: %s", r.method)
			}
		}
	})
	a.noTokenInLogs(t, mcpToken)
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
