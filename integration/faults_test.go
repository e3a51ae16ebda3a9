//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Each TestFault* test breaks one thing under a running stack and checks
// three things: nothing is allowed that should not be, no process panics,
// and the stack recovers. The recovery time, from the end of the fault to
// the first good answer, is logged as "recovery <fault>: <duration>" for
// docs/benchmarks.md; it is measured, never asserted.

// faultDeadline bounds every wait for a recovery.
const faultDeadline = 30 * time.Second

// recovery polls ok until it holds, logs the time since the fault ended and
// returns it; the test fails if ok does not hold within faultDeadline.
func recovery(t *testing.T, fault string, ended time.Time, ok func() bool) time.Duration {
	t.Helper()
	if !until(ended.Add(faultDeadline), ok) {
		t.Fatalf("%s: no good answer within %v of the fault's end", fault, faultDeadline)
	}
	d := time.Since(ended)
	t.Logf("recovery %s: %v", fault, d.Round(time.Millisecond))
	return d
}

// forgedToken is a well-formed RS256 JWT naming the provider as issuer and
// the gateway as audience, signed with a key the provider never had.
func forgedToken(t *testing.T, issuer string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{
		"iss": issuer, "aud": "mcp-gateway", "sub": "mallory", "azp": "mcp-cli",
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(),
	})
	signing := enc([]byte(`{"alg":"RS256","kid":"forged","typ":"JWT"}`)) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc(sig)
}

// TestFaultIdentityProviderRestart kills the provider (SIGKILL) and starts
// it again on the same port, with new signing keys as a real restart of
// the dev provider has: while it is down a caller whose exchange is cached
// keeps working, a new caller gets 503 and a token the provider never
// signed is never OK; after the restart a new caller works again.
func TestFaultIdentityProviderRestart(t *testing.T) {
	p := startIdP(t, "")
	up := startRecorder(t)
	s := startStack(t, up.url(), identityConfig(p)+kubeServer(up.url())+`policies:
  - name: tool-roles
    cel: 'mcp.tool.name in token.resource_access[mcp.server].roles'
`)
	procs := map[string]*proc{"mcp-authz": s.proc, "devidp": p.proc}

	alice := p.login(t, "alice")
	mcpUser := p.login(t, "mcp") // logged in, never called before the fault
	forged := forgedToken(t, p.issuer)
	own := []string{alice, mcpUser, forged}
	oks := 0
	call := func(token string) (int, string) {
		code, body := tryPost(t.Context(), s.url(), toolCall("kube_pods_list"), map[string]string{"Authorization": "Bearer " + token})
		if code == http.StatusOK {
			oks++
		}
		return code, body
	}
	if code, body := call(alice); code != http.StatusOK {
		t.Fatalf("alice before the fault: %d %s", code, body)
	}
	if code, body := call(forged); code != http.StatusUnauthorized {
		t.Errorf("forged token before the fault: %d %s, want 401", code, body)
	}

	p.proc.kill()
	forgedDown := map[int]int{}
	for i := range 3 {
		if code, body := call(alice); code != http.StatusOK {
			t.Errorf("provider down, alice (cached exchange) call %d: %d %s", i, code, body)
		}
		if code, body := call(mcpUser); code != http.StatusServiceUnavailable {
			t.Errorf("provider down, new caller call %d: %d %s, want 503", i, code, body)
		}
		code, body := call(forged)
		if code == http.StatusOK || code == 0 {
			t.Errorf("provider down, forged token call %d: %d %s", i, code, body)
		}
		forgedDown[code]++
	}
	// Past keyRefreshInterval an unknown key makes authz fetch the key set,
	// which fails; the next one comes within retryAfterFailure of it. The
	// pause is the behaviour under test (authz's own pace between key-set
	// fetches, 500ms in identityConfig), not a wait for a condition.
	time.Sleep(600 * time.Millisecond)
	for i := range 2 {
		code, body := call(forged)
		if code == http.StatusOK || code == 0 {
			t.Errorf("provider down, forged token after the refresh interval, call %d: %d %s", i, code, body)
		}
		forgedDown[code]++
	}
	t.Logf("provider down, a token signed by an unknown key, answers by status: %v", forgedDown)

	// The same port, new keys: a caller who logs in now is new to authz
	// (unknown key id) and to the exchange cache.
	p2 := startIdP(t, p.addr)
	procs["devidp restarted"] = p2.proc
	restarted := time.Now()
	var fresh string
	answers := map[int]int{}
	recovery(t, "identity-provider-restart", restarted, func() bool {
		if fresh == "" {
			fresh = p2.login(t, "mcp")
			own = append(own, fresh)
		}
		code, _ := call(fresh)
		answers[code]++
		return code == http.StatusOK
	})
	t.Logf("a new caller's answers until the first OK, by status: %v", answers)
	if code, body := call(alice); code != http.StatusOK {
		t.Errorf("alice after the restart: %d %s", code, body)
	}
	// mcp's first token is signed by a key the restarted provider no
	// longer has: it cannot be exchanged there.
	if code, body := call(mcpUser); code == http.StatusOK || code == 0 {
		t.Errorf("a token of the old provider, never exchanged, after the restart: %d %s", code, body)
	} else {
		t.Logf("a token of the old provider, never exchanged, after the restart: %d %s", code, body)
	}
	if code, body := call(forged); code != http.StatusUnauthorized {
		t.Errorf("forged token after the restart: %d %s, want 401", code, body)
	}

	// Exactly the allowed calls reached the upstream, each with an
	// exchanged token, never a caller's own.
	got := up.requests()
	if len(got) != oks {
		t.Errorf("the upstream received %d requests for %d allowed calls", len(got), oks)
	}
	for _, r := range got {
		tok, ok := strings.CutPrefix(r.header.Get("Authorization"), "Bearer ")
		if !ok || slices.Contains(own, tok) {
			t.Error("a request reached the upstream without an exchanged token")
			continue
		}
		if aud := audience(jwtPayload(t, tok)); !slices.Equal(aud, []string{"mcp-test/kubernetes-mcp"}) {
			t.Errorf("upstream token aud = %q", aud)
		}
	}
	checkNoPanic(t, procs)
}

// faultPolicy allows every tool but one named forbidden.
const faultPolicy = `policies:
  - name: all-but-forbidden
    cel: 'mcp.tool.name != "forbidden"'
`

// TestFaultUpstreamKilledMidStream drops an upstream while it streams
// progress for a call: the call ends with an error, the session survives
// and keeps reaching the other server, and once the upstream is back on
// the same address the same session calls it again.
func TestFaultUpstreamKilledMidStream(t *testing.T) {
	addr := freePort(t)
	st := startStreamServer(t, addr)
	weather := startGoServer(t, "mcp-test/weather", "get_forecast")
	a := startAggregate(t, 1, fmt.Sprintf(`servers:
  - name: mcp-test/stream
    prefix: st_
    url: http://%s/mcp
  - name: mcp-test/weather
    prefix: weather_
    url: %s
`, addr, weather.url)+faultPolicy)
	procs := map[string]*proc{"edge": a.edge, "router": a.routers[0]}

	progress := make(chan float64, 100)
	cs := connectFault(t, a.front, nil, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			select {
			case progress <- r.Params.Progress:
			default:
			}
		},
	})
	if got, err := tryCall(t.Context(), cs, "st_ping", nil); err != nil || got != "ping" {
		t.Fatalf("st_ping before the fault: %q, %v", got, err)
	}

	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		p := &mcp.CallToolParams{Name: "st_stream", Arguments: map[string]any{"steps": 100}}
		p.SetProgressToken("fault-progress")
		res, err := cs.CallTool(ctx, p)
		r := result{err: err}
		if err == nil {
			b, _ := json.Marshal(res)
			r.text = string(b)
		}
		done <- r
	}()
	for n := 0; n < 3; {
		select {
		case <-progress:
			n++
		case <-time.After(10 * time.Second):
			t.Fatal("no progress from the streaming call")
		}
	}
	_ = st.srv.Close() // killed mid-stream
	killed := time.Now()
	select {
	case r := <-done:
		if r.err == nil && !strings.Contains(r.text, `"isError":true`) {
			t.Errorf("the call whose upstream died succeeded: %s", r.text)
		}
		t.Logf("the interrupted call ended after %v: %v %s", time.Since(killed).Round(time.Millisecond), r.err, r.text)
	case <-time.After(25 * time.Second):
		t.Fatal("the interrupted call never ended")
	}

	// The session survives: the other server is listed and answers; the
	// dead one fails fast; the forbidden tool is refused at the front.
	if got, err := tryCall(t.Context(), cs, "weather_get_forecast", nil); err != nil || got != "mcp-test/weather:get_forecast" {
		t.Errorf("weather_get_forecast with the stream server dead: %q, %v", got, err)
	}
	if got := listTools(t, cs); !slices.Contains(got, "weather_get_forecast") {
		t.Errorf("tools with the stream server dead: %q", got)
	}
	if _, err := tryCall(t.Context(), cs, "st_ping", nil); err == nil {
		t.Error("st_ping succeeded with its server dead")
	}
	if code, body := tryPost(t.Context(), a.front, toolCall("st_forbidden"), map[string]string{"Mcp-Session-Id": cs.ID()}); code != http.StatusForbidden {
		t.Errorf("st_forbidden: %d %s, want 403", code, body)
	}

	// Back on the same address, as a new process (no sessions).
	st2 := startStreamServer(t, addr)
	back := time.Now()
	recovery(t, "upstream-killed-mid-stream", back, func() bool {
		got, err := tryCall(t.Context(), cs, "st_ping", nil)
		return err == nil && got == "ping"
	})
	// The router leaves a server that failed out of its lists for a while
	// (router.go): the tools come back later than the calls.
	recovery(t, "upstream-killed-mid-stream-tools-list", back, func() bool {
		return slices.Contains(listTools(t, cs), "st_stream")
	})
	p := &mcp.CallToolParams{Name: "st_stream", Arguments: map[string]any{"steps": 3}}
	p.SetProgressToken("fault-progress-2")
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	if res, err := cs.CallTool(ctx, p); err != nil || res.IsError {
		t.Errorf("st_stream after the restart: %v", err)
	}
	if got, err := tryCall(t.Context(), cs, "weather_get_forecast", nil); err != nil || got != "mcp-test/weather:get_forecast" {
		t.Errorf("weather_get_forecast after the restart: %q, %v", got, err)
	}
	for _, s := range []*goServer{st, st2} {
		if len(s.calls("forbidden")) > 0 {
			t.Error("the forbidden tool reached the stream server")
		}
	}
	_ = cs.Close()
	checkNoPanic(t, procs)
}

// TestFaultRouterReplicaKilled kills one of two router replicas (SIGKILL)
// under a session: the session continues on the other replica, every call
// succeeds, and the forbidden tool stays refused.
//
// What makes it realistic: the routers keep no session state of their own
// (the session id is sealed with a shared key), so any replica serves any
// session; what must not happen is a request sent to the dead replica
// coming back as an error. A bare round-robin balancer would answer 502 to
// every other request until Kubernetes removes the dead endpoint; Istio's
// (and Envoy's usual) retry on connect-failure sends it to the live one.
// The harness balancer (startBalancer) does exactly that. The client itself never retries.
func TestFaultRouterReplicaKilled(t *testing.T) {
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list", "forbidden")
	a := startAggregate(t, 2, kubeServer(kube.url)+faultPolicy)
	f := a.lb
	procs := map[string]*proc{"edge": a.edge, "router 0": a.routers[0], "router 1": a.routers[1]}

	cs := connectFault(t, a.front, nil, nil)
	for i := range 4 {
		if got, err := tryCall(t.Context(), cs, "kube_pods_list", nil); err != nil || got != "mcp-test/kubernetes-mcp:pods_list" {
			t.Fatalf("call %d before the fault: %q, %v", i, got, err)
		}
	}
	before := f.served(cs.ID())
	for be, n := range before {
		if n == 0 {
			t.Fatalf("replica %s served none of the session before the fault: %v", be, before)
		}
	}

	a.routers[0].kill()
	// The kernel closed the dead replica's connections; drop them from the
	// pool now rather than race the pool's own noticing (Envoy, too, stops
	// using an upstream connection once it sees it closed).
	f.tr.CloseIdleConnections()
	killed := time.Now()
	failed := 0
	recovery(t, "router-replica-killed", killed, func() bool {
		got, err := tryCall(t.Context(), cs, "kube_pods_list", nil)
		if err != nil || got != "mcp-test/kubernetes-mcp:pods_list" {
			failed++
			return false
		}
		return true
	})
	if failed > 0 {
		t.Errorf("%d calls failed after the replica died", failed)
	}
	for i := range 10 {
		if got, err := tryCall(t.Context(), cs, "kube_pods_list", nil); err != nil || got != "mcp-test/kubernetes-mcp:pods_list" {
			t.Errorf("call %d after the fault: %q, %v", i, got, err)
		}
	}
	if got := listTools(t, cs); !slices.Equal(got, []string{"kube_pods_list"}) {
		t.Errorf("tools after the fault: %q", got)
	}
	if code, body := tryPost(t.Context(), a.front, toolCall("kube_forbidden"), map[string]string{"Mcp-Session-Id": cs.ID()}); code != http.StatusForbidden {
		t.Errorf("kube_forbidden: %d %s, want 403", code, body)
	}
	after := f.served(cs.ID())
	live := f.backends[1] // a.routers[1]
	if after[f.backends[0]] != before[f.backends[0]] {
		t.Errorf("the dead replica served requests: before %v, after %v", before, after)
	}
	if after[live] <= before[live] {
		t.Errorf("the live replica served nothing after the fault: before %v, after %v", before, after)
	}
	f.mu.Lock()
	t.Logf("requests moved from the dead replica to the live one: %d", f.retried)
	f.mu.Unlock()
	calls := 0
	for _, r := range kube.requests() {
		if r.method == "tools/call" {
			calls++
		}
	}
	if want := 4 + 1 + 10; calls != want { // before, the recovery call, after
		t.Errorf("the server received %d tools/call, want the %d that were allowed", calls, want)
	}
	_ = cs.Close()
	checkNoPanic(t, procs)
}

// TestFaultConfigCorrupted overwrites the running configuration with
// garbage, then with a policy that does not compile: each is refused,
// logged and counted, the old configuration keeps serving (calls in a loop
// all the while never fail, and never get what the old policy refused);
// the fixed file applies.
func TestFaultConfigCorrupted(t *testing.T) {
	up := startRecorder(t)
	servers := kubeServer(up.url())
	s := startStack(t, up.url(), servers+`policies:
  - name: tools
    cel: 'mcp.tool.name == "pods_list"'
`)
	procs := map[string]*proc{"mcp-authz": s.proc}
	good, err := os.ReadFile(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	reloadErrors := func() float64 {
		_, page := get(t, "http://"+s.metrics+"/metrics")
		return metric(page, "mcp_authz_config_reload_errors_total")
	}

	// A client calls both tools in a loop for the whole test.
	var fixed atomic.Bool
	var listFailures, deleteAllowed, calls atomic.Int64
	ctx, cancel := context.WithCancel(t.Context())
	loop := make(chan struct{})
	go func() {
		defer close(loop)
		for ctx.Err() == nil {
			if code, _ := tryPost(ctx, s.url(), toolCall("kube_pods_list"), nil); code != http.StatusOK && ctx.Err() == nil {
				listFailures.Add(1)
			}
			wasFixed := fixed.Load()
			if code, _ := tryPost(ctx, s.url(), toolCall("kube_pods_delete"), nil); code == http.StatusOK && !wasFixed {
				deleteAllowed.Add(1)
			}
			calls.Add(1)
			time.Sleep(10 * time.Millisecond) // the client's pace
		}
	}()
	stopLoop := func() { cancel(); <-loop }
	defer stopLoop()

	for i, bad := range []struct{ name, content string }{
		{name: "garbage", content: "\x00\xff{{ not: [yaml\n"},
		{name: "a policy that does not compile", content: strings.Replace(string(good), `'mcp.tool.name == "pods_list"'`, `'mcp.tool.name == '`, 1)},
	} {
		if err := os.WriteFile(s.cfgPath, []byte(bad.content), 0o600); err != nil { // in place, as a careless edit
			t.Fatal(err)
		}
		want := float64(i + 1)
		waitFor(t, bad.name+" refused (mcp_authz_config_reload_errors_total)", 10*time.Second, func() bool { return reloadErrors() >= want })
		if got := reloadErrors(); got != want {
			t.Errorf("%s: mcp_authz_config_reload_errors_total = %v, want %v", bad.name, got, want)
		}
		if n := strings.Count(s.proc.out.String(), "config reload refused"); n != i+1 {
			t.Errorf("%s: %d lines say config reload refused, want %d", bad.name, n, i+1)
		}
		expect(t, s, "", "kube_pods_list", http.StatusOK, "")
		expect(t, s, "", "kube_pods_delete", http.StatusForbidden, "tool_denied")
	}

	// The fix: a new version that also allows pods_delete.
	fixedAt := time.Now()
	fixed.Store(true)
	replaceFile(t, s.cfgPath, strings.Replace(string(good), `'mcp.tool.name == "pods_list"'`, `'mcp.tool.name in ["pods_list", "pods_delete"]'`, 1))
	recovery(t, "config-corrupted", fixedAt, func() bool { return status(t, s, "", "kube_pods_delete") == http.StatusOK })
	stopLoop()
	if n := listFailures.Load(); n > 0 {
		t.Errorf("%d calls of the allowed tool failed while the configuration was broken", n)
	}
	if n := deleteAllowed.Load(); n > 0 {
		t.Errorf("%d calls of the refused tool were allowed before the fix", n)
	}
	if calls.Load() == 0 {
		t.Error("the client loop made no calls")
	}
	if got := reloadErrors(); got != 2 {
		t.Errorf("mcp_authz_config_reload_errors_total after the fix = %v, want 2", got)
	}
	checkNoPanic(t, procs)
}

// TestFaultRegistrationDeleted removes a server from the configuration of
// the edge and the router while a client calls its tools in a loop: after
// the reload its tools are 403 tool_denied with the body of an unknown
// tool, it leaves tools/list, the client is told tools/list_changed, and
// the other server's calls never fail.
func TestFaultRegistrationDeleted(t *testing.T) {
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list")
	weather := startGoServer(t, "mcp-test/weather", "get_forecast")
	kubeBlock := fmt.Sprintf(`  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s
`, kube.url)
	a := startAggregate(t, 1, "servers:\n"+kubeBlock+fmt.Sprintf(`  - name: mcp-test/weather
    prefix: weather_
    url: %s
`, weather.url)+faultPolicy)
	procs := map[string]*proc{"edge": a.edge, "router": a.routers[0]}

	changed := make(chan struct{}, 10)
	stream := watchStream(nil)
	cs := connectFault(t, a.front, stream, &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
	})
	if got := listTools(t, cs); !slices.Equal(got, []string{"kube_pods_list", "weather_get_forecast"}) {
		t.Fatalf("tools before the fault: %q", got)
	}
	// The GET stream that carries list_changed opens after initialize.
	stream.wait(t, 10*time.Second)

	var weatherFailures, weatherCalls, kubeCalls atomic.Int64
	var firstFailure atomic.Value
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if got, err := tryCall(ctx, cs, "weather_get_forecast", nil); (err != nil || got != "mcp-test/weather:get_forecast") && ctx.Err() == nil {
				weatherFailures.Add(1)
				firstFailure.CompareAndSwap(nil, fmt.Sprintf("%v: %q, %v", time.Now().Format(time.RFC3339Nano), got, err))
			}
			weatherCalls.Add(1)
			time.Sleep(10 * time.Millisecond) // the client's pace
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_, _ = tryCall(ctx, cs, "kube_pods_list", nil)
			kubeCalls.Add(1)
			time.Sleep(10 * time.Millisecond) // the client's pace
		}
	}()
	waitFor(t, "the client to call both servers", 10*time.Second, func() bool {
		return weatherCalls.Load() > 0 && kubeCalls.Load() > 0
	})

	for _, p := range []*proc{a.edge, a.routers[0]} {
		path := configFile(t, p)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(kubeBlock)) {
			t.Fatalf("%s does not register the server", path)
		}
		replaceFile(t, path, strings.Replace(string(b), kubeBlock, "", 1))
	}
	removed := time.Now()
	_, unknown := tryPost(t.Context(), a.front, toolCall("zzz_pods_list"), nil)
	recovery(t, "registration-deleted", removed, func() bool {
		// Before the edge reloads, the call passes authz and the router
		// refuses it for want of a session id.
		code, body := tryPost(t.Context(), a.front, toolCall("kube_pods_list"), nil)
		if code != http.StatusForbidden {
			return false
		}
		if body != unknown {
			t.Errorf("kube_pods_list after the removal: %s, want the unknown tool's body %s", body, unknown)
		}
		return true
	})
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Error("no notifications/tools/list_changed within 10s of the removal")
	}
	// A call in flight at the removal may still land; once the loop has
	// ended it, none.
	k := kubeCalls.Load()
	waitFor(t, "the call in flight at the removal to end", 15*time.Second, func() bool { return kubeCalls.Load() > k })
	n := len(kube.requests())
	if got := listTools(t, cs); !slices.Equal(got, []string{"weather_get_forecast"}) {
		t.Errorf("tools after the removal: %q", got)
	}
	if _, err := tryCall(t.Context(), cs, "kube_pods_list", nil); err == nil {
		t.Error("kube_pods_list succeeded after the removal")
	}
	// The loop keeps calling the removed server's tool for a while (ten
	// calls, about as many as the 300ms this window used to be).
	k = kubeCalls.Load()
	waitFor(t, "ten more calls of the removed server's tool", 15*time.Second, func() bool { return kubeCalls.Load() >= k+10 })
	cancel()
	wg.Wait()
	for _, r := range kube.requests()[n:] {
		if r.method == "tools/call" {
			t.Errorf("a tools/call reached the removed server after the reload")
		}
	}
	if n := weatherFailures.Load(); n > 0 {
		t.Errorf("%d of %d calls to the other server failed, the first at %v", n, weatherCalls.Load(), firstFailure.Load())
	}
	t.Logf("calls to the other server during the removal: %d", weatherCalls.Load())
	_ = cs.Close()
	checkNoPanic(t, procs)
}

// TestFaultSlowClients holds 200 connections open on the front, half
// sending their headers a byte a second, half sending their headers at once
// and then their body a byte a second, while a normal client keeps calling: every normal call
// succeeds, and the front closes the slow connections by its timeouts
// (ReadHeaderTimeout 10s; the body's read deadline, 30s).
func TestFaultSlowClients(t *testing.T) {
	up := startRecorder(t)
	s := startStack(t, up.url(), kubeServer(up.url())+`defaultPolicy: allow
`)
	procs := map[string]*proc{"mcp-authz": s.proc}
	front := strings.TrimPrefix(strings.TrimSuffix(s.url(), "/mcp"), "http://")

	const slowHeaders, slowBodies = 100, 100
	type closed struct {
		body  bool
		after time.Duration
	}
	closedc := make(chan closed, slowHeaders+slowBodies)
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	opened := time.Now()
	for i := range slowHeaders + slowBodies {
		body := i >= slowHeaders
		c, err := net.DialTimeout("tcp", front, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			// Read until the front closes the connection (or answers).
			_, _ = io.Copy(io.Discard, c)
			closedc <- closed{body: body, after: time.Since(opened)}
		}()
		go func() {
			req := "POST /mcp HTTP/1.1\r\nHost: " + front + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
			if body { // the headers at once, then the body a byte a second
				if _, err := io.WriteString(c, req+"\r\n"); err != nil {
					return
				}
				req = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{"x":"` + strings.Repeat("a", 1000)
			}
			for j := 0; ctx.Err() == nil; j++ {
				if _, err := c.Write([]byte{req[j%len(req)]}); err != nil {
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
		}()
	}

	// The normal client, until every slow connection is closed.
	var normal, failures int
	var slowest time.Duration
	var lastClosed time.Time
	var headerClosed, bodyClosed []time.Duration
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(headerClosed)+len(bodyClosed) < slowHeaders+slowBodies {
		select {
		case c := <-closedc:
			if c.body {
				bodyClosed = append(bodyClosed, c.after)
			} else {
				headerClosed = append(headerClosed, c.after)
			}
			lastClosed = time.Now()
			continue
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("after %v, %d of %d slow-header and %d of %d slow-body connections were closed by the front",
				time.Since(opened).Round(time.Second), len(headerClosed), slowHeaders, len(bodyClosed), slowBodies)
		}
		start := time.Now()
		code, body := tryPost(ctx, s.url(), toolCall("kube_pods_list"), nil)
		slowest = max(slowest, time.Since(start))
		normal++
		if code != http.StatusOK {
			failures++
			t.Errorf("normal call during the attack: %d %s", code, body)
		}
	}
	recovery(t, "slow-clients", lastClosed, func() bool { return status(t, s, "", "kube_pods_list") == http.StatusOK })
	t.Logf("slow clients: %d normal calls during the attack, %d failed, slowest %v; slow-header connections closed after %v..%v, slow-body after %v..%v",
		normal, failures, slowest.Round(time.Millisecond),
		slices.Min(headerClosed).Round(time.Millisecond), slices.Max(headerClosed).Round(time.Millisecond),
		slices.Min(bodyClosed).Round(time.Millisecond), slices.Max(bodyClosed).Round(time.Millisecond))
	if normal == 0 {
		t.Error("no normal call was made during the attack")
	}
	for _, r := range up.requests() {
		if r.body != toolCall("kube_pods_list") {
			t.Errorf("a partial request reached the upstream: %q", r.body)
		}
	}
	checkNoPanic(t, procs)
}

// rss returns VmRSS and VmHWM of a process, in KiB, from /proc.
func rss(t *testing.T, pid int) (cur, peak int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			cur = n
		case "VmHWM":
			peak = n
		}
	}
	return cur, peak
}

// TestFaultHugeBody posts 10 MiB bodies to the front, with a
// Content-Length and chunked: each is answered 413, none is checked by
// authz nor reaches the upstream, and the front's memory stays bounded.
func TestFaultHugeBody(t *testing.T) {
	up := startRecorder(t)
	s := startStack(t, up.url(), kubeServer(up.url())+`defaultPolicy: allow
`)
	procs := map[string]*proc{"mcp-authz": s.proc}
	checks := func() float64 {
		_, page := get(t, "http://"+s.metrics+"/metrics")
		return metric(page, "mcp_authz_check_duration_seconds_count")
	}
	expect(t, s, "", "kube_pods_list", http.StatusOK, "")
	checksBefore, upBefore := checks(), len(up.requests())
	rssBefore, _ := rss(t, s.proc.cmd.Process.Pid)

	// A 10 MiB JSON-RPC message: a tools/call whose argument is huge.
	const size = 10 << 20
	prefix := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{"x":"`
	suffix := `"}}}`
	huge := prefix + strings.Repeat("a", size-len(prefix)-len(suffix)) + suffix
	var wg sync.WaitGroup
	var answered time.Time
	var mu sync.Mutex
	for i := range 8 {
		wg.Go(func() {
			var body io.Reader = strings.NewReader(huge)
			if i%2 == 1 {
				body = io.MultiReader(body) // no length: sent chunked
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url(), body)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Errorf("10 MiB body (chunked %v): %v", i%2 == 1, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("10 MiB body (chunked %v): %d, want 413", i%2 == 1, resp.StatusCode)
			}
			mu.Lock()
			answered = time.Now()
			mu.Unlock()
		})
	}
	wg.Wait()
	rssAfter, peak := rss(t, s.proc.cmd.Process.Pid)
	t.Logf("front RSS: before %d KiB, after 8 bodies of 10 MiB %d KiB, peak %d KiB", rssBefore, rssAfter, peak)
	if rssAfter-rssBefore > 64<<10 {
		t.Errorf("RSS grew by %d KiB for bodies that should have been refused", rssAfter-rssBefore)
	}
	if got := checks(); got != checksBefore {
		t.Errorf("authz checked %v requests during the huge bodies, want none", got-checksBefore)
	}
	if len(up.requests()) != upBefore {
		t.Error("a huge body reached the upstream")
	}
	if answered.IsZero() {
		t.Fatal("no huge body was answered")
	}
	recovery(t, "huge-body", answered, func() bool { return status(t, s, "", "kube_pods_list") == http.StatusOK })
	checkNoPanic(t, procs)
}
