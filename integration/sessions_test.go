//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const sessionInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`

// sessionHeaders initializes a session through the front, with token as the
// bearer unless it is "" (anonymous), and returns the headers of its later
// requests.
func sessionHeaders(t *testing.T, front, token string) map[string]string {
	t.Helper()
	hdr := map[string]string{}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	resp, body := post(t.Context(), t, front, sessionInit, hdr)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d %s", resp.StatusCode, body)
	}
	hdr["Mcp-Session-Id"], hdr["MCP-Protocol-Version"] = sid, "2025-06-18"
	if resp, body := post(t.Context(), t, front, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, hdr); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("initialized: %d %s", resp.StatusCode, body)
	}
	return hdr
}

// openSession initializes a session through the front with token and
// returns its id.
func openSession(t *testing.T, front, token string) string {
	t.Helper()
	return sessionHeaders(t, front, token)["Mcp-Session-Id"]
}

// sessionRequest sends a GET or DELETE of session sid through the front.
func sessionRequest(ctx context.Context, t *testing.T, method, front, token, sid string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, front, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// ended reports when resp's body ends.
func ended(resp *http.Response) <-chan time.Time {
	c := make(chan time.Time, 1)
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		c <- time.Now()
	}()
	return c
}

// TestDeleteEndsSession is issue 8 through front -> authz -> router with
// real processes: DELETE ends the session's open GET stream at once, a
// later POST with that session gets 404, and the upstream sees no
// initialize (the session is not reopened) after the DELETE.
func TestDeleteEndsSession(t *testing.T) {
	p := startIdP(t, "")
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list")
	a := startAggregate(t, 1, identityConfig(p)+kubeServer(kube.url)+routerPolicy)
	token := p.login(t, "alice")
	sid := openSession(t, a.front, token)
	// Upstream sessions, and so their GET streams, open on a session's
	// first use of a server.
	if resp, body := post(t.Context(), t, a.front, toolCall("kube_pods_list"), map[string]string{
		"Authorization": "Bearer " + token, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18",
	}); resp.StatusCode != http.StatusOK {
		t.Fatalf("call: %d %s", resp.StatusCode, body)
	}

	stream := sessionRequest(t.Context(), t, http.MethodGet, a.front, token, sid)
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", stream.StatusCode)
	}
	done := ended(stream)
	waitFor(t, "the router to open an upstream GET stream", 10*time.Second, func() bool { return kube.count(0, http.MethodGet) > 0 })
	mark := len(kube.requests())
	if resp := sessionRequest(t.Context(), t, http.MethodDelete, a.front, token, sid); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Error("the GET stream of the deleted session is still open")
	}
	resp, body := post(t.Context(), t, a.front, toolCall("kube_pods_list"), map[string]string{
		"Authorization": "Bearer " + token, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18",
	})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST after DELETE: %d %s", resp.StatusCode, body)
	}
	if resp := sessionRequest(t.Context(), t, http.MethodGet, a.front, token, sid); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d", resp.StatusCode)
	}
	// What is under test is that nothing happens: the window is longer
	// than the router's pause before it reopens an upstream stream (1s in
	// router/notify.go), so no condition can stand for it.
	time.Sleep(2 * time.Second)
	for _, m := range []string{"initialize", "tools/call"} {
		if n := kube.count(mark, m); n != 0 {
			t.Errorf("the upstream received %d %s after the DELETE", n, m)
		}
	}
	if kube.count(mark, http.MethodDelete) == 0 {
		t.Error("the upstream session was not deleted")
	}
	a.noTokenInLogs(t, token)
}

// TestStreamEndsWithToken: a GET stream opened with a short-lived token ends
// when the token expires (the dev provider issues 4 s tokens here).
func TestStreamEndsWithToken(t *testing.T) {
	p := startIdP(t, "", "--token-lifetime", "4s")
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list")
	a := startAggregate(t, 1, identityConfig(p)+kubeServer(kube.url)+routerPolicy)
	token := p.login(t, "alice")
	exp, ok := jwtPayload(t, token)["exp"].(float64)
	if !ok {
		t.Fatal("token without exp")
	}
	expiry := time.Unix(int64(exp), 0)
	sid := openSession(t, a.front, token)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stream := sessionRequest(ctx, t, http.MethodGet, a.front, token, sid)
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d (the token may have expired already: %v left)", stream.StatusCode, time.Until(expiry))
	}
	select {
	case at := <-ended(stream):
		if d := at.Sub(expiry); d < -time.Second || d > 3*time.Second {
			t.Errorf("the stream ended %v from the token's expiry", d)
		}
	case <-time.After(time.Until(expiry) + 5*time.Second):
		t.Fatal("the stream outlived the token")
	}
	// A new token opens a new stream on the same session.
	fresh := p.login(t, "alice")
	again := sessionRequest(ctx, t, http.MethodGet, a.front, fresh, sid)
	if again.StatusCode != http.StatusOK {
		t.Errorf("GET with a fresh token: %d", again.StatusCode)
	}
	a.noTokenInLogs(t, token)
	if strings.Contains(fmt.Sprint(kube.requests()), token) {
		t.Error("the caller's token reached the upstream")
	}
}

// TestRouterNoTokenPassthrough is issue 1 on the router's side, through
// front -> authz -> router: whatever the router sends an upstream
// (initialize, initialized, lists, calls, the GET stream, DELETE) never
// carries the caller's own token. With exchange on, each carries a token
// exchanged for that server; with identity on and exchange off, none.
func TestRouterNoTokenPassthrough(t *testing.T) {
	p := startIdP(t, "")
	identityOnly := fmt.Sprintf(`identity:
  issuers:
    - issuerURL: %s
      audiences: [mcp-gateway]
`, p.issuer)
	for _, tc := range []struct {
		name, config, policy string
		exchange             bool
	}{
		{name: "exchange on", config: identityConfig(p), policy: routerPolicy, exchange: true},
		{name: "exchange off", config: identityOnly, policy: "defaultPolicy: allow\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list")
			a := startAggregate(t, 1, tc.config+kubeServer(kube.url)+tc.policy)
			token := p.login(t, "alice")
			sub, _ := jwtPayload(t, token)["sub"].(string)
			cs := connectAs(t, a.front, token, nil)
			if got := listTools(t, cs); len(got) == 0 || got[0] != "kube_pods_list" {
				t.Fatalf("tools %q", got)
			}
			if got, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list"}); err != nil || got != "mcp-test/kubernetes-mcp:pods_list" {
				t.Fatalf("call: %q, %v", got, err)
			}
			waitFor(t, "the router to open an upstream GET stream", 10*time.Second, func() bool { return kube.count(0, http.MethodGet) > 0 })
			if err := cs.Close(); err != nil {
				t.Fatal(err)
			}
			seen := kube.requests()
			methods := map[string]bool{}
			for _, r := range seen {
				methods[r.method] = true
				if strings.Contains(r.authorization(), token) {
					t.Errorf("%s carried the caller's own token", r.method)
				}
				if !tc.exchange && r.authorization() != "" {
					t.Errorf("%s carried an Authorization with exchange off", r.method)
				}
			}
			for _, m := range []string{"initialize", "notifications/initialized", "tools/list", "tools/call", http.MethodGet, http.MethodDelete} {
				if !methods[m] {
					t.Errorf("the upstream received no %s: %v", m, methods)
				}
			}
			if tc.exchange {
				checkUpstreamTokens(t, kube.name, seen, map[string]string{sub: token}, sub)
			}
			a.noTokenInLogs(t, token)
		})
	}
}

// TestSessionBoundToIssuer is issue 4 with real processes: two trusted
// issuers (the dev provider run twice, same realm, so alice has the same
// sub in both); alice of the second can neither use, GET nor DELETE the
// session alice of the first opened (404), which keeps working.
func TestSessionBoundToIssuer(t *testing.T) {
	p1, p2 := startIdP(t, ""), startIdP(t, "")
	a := startAggregate(t, 1, fmt.Sprintf(`identity:
  issuers:
    - issuerURL: %s
      audiences: [mcp-gateway]
    - issuerURL: %s
      audiences: [mcp-gateway]
defaultPolicy: allow
`, p1.issuer, p2.issuer)+kubeServer(startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list").url))
	owner, other := p1.login(t, "alice"), p2.login(t, "alice")
	if s1, s2 := jwtPayload(t, owner)["sub"], jwtPayload(t, other)["sub"]; s1 != s2 {
		t.Fatalf("the two providers name alice differently: %v, %v", s1, s2)
	}
	sid := openSession(t, a.front, owner)
	headers := func(token string) map[string]string {
		return map[string]string{"Authorization": "Bearer " + token, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"}
	}
	if resp, body := post(t.Context(), t, a.front, toolCall("kube_pods_list"), headers(other)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST by the other issuer's alice: %d %s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		if resp := sessionRequest(ctx, t, m, a.front, other, sid); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s by the other issuer's alice: %d", m, resp.StatusCode)
		}
	}
	resp, body := post(t.Context(), t, a.front, toolCall("kube_pods_list"), headers(owner))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "mcp-test/kubernetes-mcp:pods_list") {
		t.Errorf("the owner's call: %d %s", resp.StatusCode, body)
	}
}

// TestIDSpellingsThroughStack is issue 6 through front -> authz -> router
// -> a go-sdk server (which re-encodes ids): each call is answered, with
// its id exactly as sent, whatever its spelling.
func TestIDSpellingsThroughStack(t *testing.T) {
	p := startIdP(t, "")
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list")
	a := startAggregate(t, 1, identityConfig(p)+kubeServer(kube.url)+routerPolicy)
	token := p.login(t, "alice")
	sid := openSession(t, a.front, token)
	hdr := map[string]string{"Authorization": "Bearer " + token, "Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"}
	for _, id := range []string{`"\u0061"`, `"a\/b"`, `"<a&b>"`, `"\ud83d\ude00"`, `-0`, `9007199254740991`} {
		t.Run(id, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{}}}`
			resp, out := post(t.Context(), t, a.front, body, hdr)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, out)
			}
			if !strings.Contains(string(out), `"id":`+id+`,"result":`) || !strings.Contains(string(out), "mcp-test/kubernetes-mcp:pods_list") {
				t.Errorf("answer %s, want the result with id %s as sent", out, id)
			}
		})
	}
	// Numbers that are not plain integers (authz refuses them: MCP ids are
	// integers) or that upstreams cannot send back unchanged (the router
	// refuses them) never run the tool.
	mark := len(kube.requests())
	for _, id := range []string{`7.0`, `1.5`, `9007199254740993`} {
		body := `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{}}}`
		if resp, out := post(t.Context(), t, a.front, body, hdr); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("id %s: %d %s", id, resp.StatusCode, out)
		}
	}
	if n := kube.count(mark, "tools/call"); n != 0 {
		t.Errorf("the upstream ran %d calls with refused ids", n)
	}
}
