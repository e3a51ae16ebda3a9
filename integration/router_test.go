//go:build integration

package integration

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// aggregate is the whole stack: one edge process (front + authz) in front of
// router-only processes behind a balancer. authz signs its assertions with
// an Ed25519 key from a file; the routers hold only the public key and share
// the session key file.
type aggregate struct {
	edge    *proc
	routers []*proc
	lb      *balancer
	front   string // the MCP endpoint clients use
}

// startAggregate runs the stack with n routers; shared is the YAML the edge
// and the routers have in common (identity, exchange, servers, policies).
func startAggregate(t *testing.T, n int, shared string) *aggregate {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	privFile := writeFile(t, dir, "assertion.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})))
	pubFile := writeFile(t, dir, "assertion.pub.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})))
	sessionKey := make([]byte, 32)
	if _, err := rand.Read(sessionKey); err != nil {
		t.Fatal(err)
	}
	sessionFile := writeFile(t, dir, "session.key", base64.StdEncoding.EncodeToString(sessionKey))

	a := &aggregate{}
	var addrs []string
	for i := range n {
		addr := freePort(t)
		cfg := writeFile(t, dir, fmt.Sprintf("router-%d.yaml", i), fmt.Sprintf(`router:
  listen: %s
  assertionKeyFile: %s
  sessionKeyFiles: [%s]
log:
  level: debug
%s`, addr, pubFile, sessionFile, shared))
		a.routers = append(a.routers, start(t, addr, nil, filepath.Join(bin, "mcp-authz"), "serve", "--config", cfg))
		addrs = append(addrs, addr)
	}
	a.lb = startBalancer(t, addrs...)
	front, authzAddr := freePort(t), freePort(t)
	cfg := writeFile(t, dir, "edge.yaml", fmt.Sprintf(`authz:
  listen: %s
  assertionKeyFile: %s
gateway:
  listen: %s
  upstream: http://%s
  authz: %s
log:
  level: debug
%s`, authzAddr, privFile, front, a.lb.addr, authzAddr, shared))
	a.edge = start(t, front, nil, filepath.Join(bin, "mcp-authz"), "serve", "--config", cfg)
	waitPort(t, authzAddr, a.edge)
	a.front = "http://" + front + "/mcp"
	return a
}

// noTokenInLogs fails the test if a process wrote the token.
func (a *aggregate) noTokenInLogs(t *testing.T, token string) {
	t.Helper()
	for i, p := range append([]*proc{a.edge}, a.routers...) {
		if strings.Contains(p.out.String(), token) {
			t.Errorf("process %d logged a token", i)
		}
	}
}

// jwtPayload decodes the claims of a JWT without verifying it (the test
// reads what an upstream received).
func jwtPayload(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return claims
}

// audience is a JWT aud claim as a list (a string or an array).
func audience(claims map[string]any) []string {
	switch a := claims["aud"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, v := range a {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// checkUpstreamTokens checks that every request a server received carried
// a token for that server (aud is exactly its name) on behalf of one of the
// callers (sub to the caller's own token), never a caller's own token, and
// that it received at least one tools/call on behalf of caller.
func checkUpstreamTokens(t *testing.T, server string, seen []request, callers map[string]string, caller string) {
	t.Helper()
	calls := 0
	for _, r := range seen {
		tok, ok := strings.CutPrefix(r.authorization(), "Bearer ")
		if !ok {
			t.Errorf("%s %s: Authorization is not a bearer token", server, r.method)
			continue
		}
		claims := jwtPayload(t, tok)
		sub, _ := claims["sub"].(string)
		own, known := callers[sub]
		switch {
		case !known:
			t.Errorf("%s %s: sub = %q, not one of the callers", server, r.method, sub)
		case tok == own:
			t.Errorf("%s %s: the caller's own token reached the server", server, r.method)
		}
		if aud := audience(claims); !slices.Equal(aud, []string{server}) {
			t.Errorf("%s %s: aud = %q, want [%q]", server, r.method, aud, server)
		}
		if r.method == "tools/call" && sub == caller {
			calls++
		}
	}
	if calls == 0 {
		t.Errorf("%s received no tools/call on behalf of %s", server, caller)
	}
}

// routerPolicy grants tools by the roles of the exchanged token, and to the
// group engineering server-everything's streaming tool.
const routerPolicy = `policies:
  - name: tool-roles
    cel: >-
      mcp.tool.name in token.resource_access[mcp.server].roles ||
      "engineering" in jwt.groups &&
        mcp.server == "mcp-test/everything" && mcp.tool.name == "trigger-long-running-operation"
`

// TestRouterThreeServers is issue 5's walk: through front -> authz ->
// router (two router processes behind a balancer), a go-sdk client as alice
// sees the tools of two go-sdk servers and server-everything, prefixed and
// filtered to her roles, and calls one on each, the streaming one with
// progress; each go-sdk server got a token exchanged for it; both routers
// served the one session and refuse requests that skipped authz; killing
// server-everything leaves the others listed and callable.
func TestRouterThreeServers(t *testing.T) {
	evURL, ev := startEverything(t)
	p := startIdP(t, "")
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list", "namespaces_list", "resources_list", "pods_delete")
	weather := startGoServer(t, "mcp-test/weather", "get_forecast", "get_alerts")
	a := startAggregate(t, 2, identityConfig(p)+fmt.Sprintf(`servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s
  - name: mcp-test/weather
    prefix: weather_
    url: %s
  - name: mcp-test/everything
    prefix: ev_
    url: %s
`, kube.url, weather.url, evURL)+routerPolicy)

	aliceToken := p.login(t, "alice")
	aliceSub, _ := jwtPayload(t, aliceToken)["sub"].(string)
	var mu sync.Mutex
	var progress []float64
	alice := connectAs(t, a.front, aliceToken, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, r.Params.Progress)
		},
	})

	want := []string{
		"ev_echo", "ev_get-sum", "ev_trigger-long-running-operation",
		"kube_namespaces_list", "kube_pods_list", "kube_resources_list",
		"weather_get_forecast",
	}
	if diff := cmp.Diff(want, listTools(t, alice)); diff != "" {
		t.Errorf("alice's tools (-want +got):\n%s", diff)
	}
	// bob has no role anywhere and is not in engineering: he sees nothing.
	bobToken := p.login(t, "bob")
	bobSub, _ := jwtPayload(t, bobToken)["sub"].(string)
	bob := connectAs(t, a.front, bobToken, nil)
	if got := listTools(t, bob); len(got) != 0 {
		t.Errorf("bob's tools = %q, want none", got)
	}

	for _, tc := range []struct {
		name string
		tool string
		args map[string]any
		want string
	}{
		{name: "go-sdk server one", tool: "kube_pods_list", want: "mcp-test/kubernetes-mcp:pods_list"},
		{name: "go-sdk server two", tool: "weather_get_forecast", want: "mcp-test/weather:get_forecast"},
		{name: "server-everything", tool: "ev_echo", args: map[string]any{"message": "hi"}, want: "Echo: hi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := callTool(t, alice, &mcp.CallToolParams{Name: tc.tool, Arguments: tc.args})
			if err != nil {
				t.Fatalf("%s: %v", tc.tool, err)
			}
			if got != tc.want {
				t.Errorf("%s = %q, want %q", tc.tool, got, tc.want)
			}
		})
	}

	t.Run("streaming tool of server-everything", func(t *testing.T) {
		params := &mcp.CallToolParams{Name: "ev_trigger-long-running-operation", Arguments: map[string]any{"duration": 1.5, "steps": 3}}
		params.SetProgressToken("e2e-progress")
		got, err := callTool(t, alice, params)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "Long running operation completed") {
			t.Errorf("result %q", got)
		}
		// Notification handlers run asynchronously: wait up to 2s for the
		// three; the comparison below says what came.
		var seen []float64
		until(time.Now().Add(2*time.Second), func() bool {
			mu.Lock()
			seen = slices.Clone(progress)
			mu.Unlock()
			return len(seen) >= 3
		})
		if diff := cmp.Diff([]float64{1, 2, 3}, seen); diff != "" {
			t.Errorf("progress notifications (-want +got):\n%s", diff)
		}
	})

	t.Run("a tool alice has no role for", func(t *testing.T) {
		for _, tool := range []string{"kube_pods_delete", "weather_get_alerts", "ev_get-env"} {
			if _, err := callTool(t, alice, &mcp.CallToolParams{Name: tool}); err == nil {
				t.Errorf("%s succeeded", tool)
			}
		}
	})

	t.Run("each go-sdk server got a token exchanged for it", func(t *testing.T) {
		callers := map[string]string{aliceSub: aliceToken, bobSub: bobToken}
		checkUpstreamTokens(t, kube.name, kube.requests(), callers, aliceSub)
		checkUpstreamTokens(t, weather.name, weather.requests(), callers, aliceSub)
	})

	t.Run("both routers served the session", func(t *testing.T) {
		// A few more calls so that each replica has had several turns.
		for range 4 {
			if _, err := callTool(t, alice, &mcp.CallToolParams{Name: "kube_namespaces_list"}); err != nil {
				t.Fatal(err)
			}
		}
		if got := a.lb.servedBy(alice.ID()); len(got) != 2 {
			t.Errorf("alice's session was served by %q, want both routers", got)
		}
	})

	t.Run("a router refuses what did not pass authz", func(t *testing.T) {
		before := len(kube.requests())
		for _, be := range a.lb.backends {
			resp, body := post(t.Context(), t, "http://"+be+"/mcp", toolCall("kube_pods_list"), map[string]string{
				"Authorization":  "Bearer " + aliceToken,
				"Mcp-Session-Id": alice.ID(),
			})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("router %s without an assertion: %d %s", be, resp.StatusCode, body)
			}
		}
		if len(kube.requests()) != before {
			t.Error("a request that skipped authz reached the upstream")
		}
	})

	t.Run("an upstream killed", func(t *testing.T) {
		ev.stop()
		got := listTools(t, alice)
		for _, tool := range []string{"kube_namespaces_list", "kube_pods_list", "kube_resources_list", "weather_get_forecast"} {
			if !slices.Contains(got, tool) {
				t.Errorf("%s not listed after server-everything died: %q", tool, got)
			}
		}
		for tool, want := range map[string]string{
			"kube_resources_list":  "mcp-test/kubernetes-mcp:resources_list",
			"weather_get_forecast": "mcp-test/weather:get_forecast",
		} {
			if got, err := callTool(t, alice, &mcp.CallToolParams{Name: tool}); err != nil || got != want {
				t.Errorf("%s after server-everything died: %q, %v", tool, got, err)
			}
		}
		if _, err := callTool(t, alice, &mcp.CallToolParams{Name: "ev_echo", Arguments: map[string]any{"message": "hi"}}); err == nil {
			t.Error("ev_echo succeeded with server-everything dead")
		}
		// A new session still opens and sees the live servers.
		again := connectAs(t, a.front, aliceToken, nil)
		got = listTools(t, again)
		for _, tool := range []string{"kube_pods_list", "weather_get_forecast"} {
			if !slices.Contains(got, tool) {
				t.Errorf("new session: %s not listed: %q", tool, got)
			}
		}
		if got, err := callTool(t, again, &mcp.CallToolParams{Name: "kube_pods_list"}); err != nil || got != "mcp-test/kubernetes-mcp:pods_list" {
			t.Errorf("new session: kube_pods_list: %q, %v", got, err)
		}
	})

	a.noTokenInLogs(t, aliceToken)
	a.noTokenInLogs(t, bobToken)
}

// TestInspectorToolsList is the smoke test with the MCP inspector CLI:
// tools/list through the front with a bearer header shows alice's tools.
func TestInspectorToolsList(t *testing.T) {
	inspector := os.Getenv("MCP_AUTHZ_INSPECTOR")
	if inspector == "" {
		t.Skip("MCP_AUTHZ_INSPECTOR is not set (make e2e sets it to the inspector CLI installed with Node 22)")
	}
	p := startIdP(t, "")
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list", "namespaces_list", "resources_list", "pods_delete")
	a := startAggregate(t, 1, identityConfig(p)+kubeServer(kube.url)+routerPolicy)
	token := p.login(t, "alice")

	stdout := runInspector(t, inspector, a.front, "--method", "tools/list", "--header", "Authorization: Bearer "+token)
	var out struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("inspector output: %v\n%s", err, stdout)
	}
	var got []string
	for _, tool := range out.Tools {
		got = append(got, tool.Name)
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"kube_namespaces_list", "kube_pods_list", "kube_resources_list"}, got); diff != "" {
		t.Errorf("inspector tools/list (-want +got):\n%s", diff)
	}
	a.noTokenInLogs(t, token)
}
