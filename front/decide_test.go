package front_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/envoy"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/front"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/devidp"
	"github.com/mcp-authz/mcp-authz/internal/devidp/devidptest"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// outcome is what the client and the upstream see of one request through
// the front. The request id differs per request and is left out; the
// assertion the upstream got is given by its verified claims (its times
// differ per request), or "forged" when it is the client's own.
type outcome struct {
	Status       int
	ClientHeader http.Header
	ClientBody   string
	Upstream     *upstreamSaw
}

type upstreamSaw struct {
	URI       string
	Header    http.Header
	Body      string
	Assertion string
}

// recordingUpstream remembers the last request it got.
type recordingUpstream struct {
	mu   sync.Mutex
	last *http.Request
	body []byte
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.last, u.body = r.Clone(r.Context()), b
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
}

func (u *recordingUpstream) take() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r, b := u.last, u.body
	u.last, u.body = nil, nil
	return r, b
}

// TestDecideMatchesGRPC: the front calling authz in process (Deps.Authz)
// and the front calling the same authz over gRPC, as Envoy does
// (authz/envoy), give the client and the upstream the same result for
// allowed requests (the exchanged token, the x-mcp-* headers, the signed
// assertion), each kind of denial (policy, unknown tool, parse error,
// header mismatch, method, token in query), a 401 with its challenge, and
// forged x-mcp-* headers; a forged x-mcp-authz never reaches the upstream,
// with a signer (replaced by a valid assertion) or without one (removed).
// Everything is real: the dev OIDC provider with token exchange, identity,
// the Keycloak tool-roles CEL policy, authz, gRPC on loopback.
func TestDecideMatchesGRPC(t *testing.T) {
	const kube = "mcp-test/kubernetes-mcp"
	p, idp := devidptest.Serve(t, devidp.Config{
		DefaultAudiences: []string{"mcp-gateway"},
		Clients: []devidp.Client{
			{ID: "mcp-gateway", Secret: "gw-secret", TokenExchange: []string{kube}},
			{ID: "mcp-cli", Public: true},
			{ID: kube},
		},
		Users: []devidp.User{{Username: "alice", Password: "alice", ClientRoles: map[string][]string{kube: {"pods_list"}}}},
	})

	v, err := identity.New(identity.Config{
		Issuers: []identity.Issuer{{IssuerURL: p.Issuer(), Audiences: []string{"mcp-gateway"}}},
	}, identity.Deps{HTTPClient: idp.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCP_AUTHZ_TEST_GATEWAY_SECRET", "gw-secret")
	x, err := exchange.New(exchange.Config{TokenURL: p.TokenURL(), ClientID: "mcp-gateway", ClientSecretEnv: "MCP_AUTHZ_TEST_GATEWAY_SECRET"}, exchange.Deps{HTTPClient: idp.Client(), Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := registry.NewSnapshot([]registry.Server{{Name: kube, Prefix: "kube_", URL: "http://127.0.0.1:1/mcp"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{
		Name: "tool-roles", Servers: []string{"*"}, CEL: `mcp.tool.name in token.resource_access[mcp.server].roles`,
	}}, Default: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	verifier := assertion.NewVerifier(key)

	bearer := "Bearer " + devidptest.Login(t, idp, p, "alice", "alice")

	call := func(tool string) string {
		return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`
	}
	forged := map[string]string{
		"X-Mcp-Authz":      "forged.assertion",
		"X-Mcp-Toolname":   "forged_tool",
		"X-Mcp-Servername": "forged/server",
		"X-Mcp-Promptname": "forged_prompt",
	}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name        string
		method      string
		query       string
		body        string
		header      map[string]string
		wantStatus  int
		wantTool    string // the x-mcp-toolname the upstream gets
		wantAuth    bool   // the upstream gets an Authorization other than the caller's
		wantChallng bool
	}{
		{name: "allowed call, forged headers", method: "POST", body: call("kube_pods_list"), header: with(forged, "Authorization", bearer), wantStatus: 200, wantTool: "pods_list", wantAuth: true},
		{name: "allowed list, forged headers", method: "POST", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, header: with(forged, "Authorization", bearer), wantStatus: 200},
		{name: "allowed stream", method: "GET", header: with(forged, "Authorization", bearer), wantStatus: 200},
		{name: "denied by policy", method: "POST", body: call("kube_secrets_get"), header: with(forged, "Authorization", bearer), wantStatus: 403},
		{name: "denied unknown tool", method: "POST", body: call("nope_tool"), header: map[string]string{"Authorization": bearer}, wantStatus: 403},
		{name: "denied parse error", method: "POST", body: `{"jsonrpc":`, header: map[string]string{"Authorization": bearer}, wantStatus: 400},
		{name: "denied header mismatch", method: "POST", body: call("kube_pods_list"), header: map[string]string{"Authorization": bearer, "Mcp-Method": "tools/list", "Mcp-Name": "x"}, wantStatus: 400},
		{name: "denied method", method: "PUT", body: call("kube_pods_list"), header: map[string]string{"Authorization": bearer}, wantStatus: 405},
		{name: "401 no token", method: "POST", body: call("kube_pods_list"), header: forged, wantStatus: 401, wantChallng: true},
		{name: "401 bad token", method: "POST", body: call("kube_pods_list"), header: with(forged, "Authorization", "Bearer not.a.jwt"), wantStatus: 401, wantChallng: true},
		{name: "401 token in query", method: "POST", query: "?access_token=s3cret", body: call("kube_pods_list"), header: map[string]string{"Authorization": bearer}, wantStatus: 401, wantChallng: true},
	}

	for _, signed := range []bool{true, false} {
		deps := authz.Deps{Registry: reg, Policy: policy.NewEngine(set), Verifier: v, Exchanger: x}
		if signed {
			deps.Signer = assertion.NewSigner(key)
		}
		az, err := authz.New(authz.Config{}, deps)
		if err != nil {
			t.Fatal(err)
		}
		up := &recordingUpstream{}
		upSrv := httptest.NewServer(up)
		t.Cleanup(upSrv.Close)
		fronts := map[string]string{
			"grpc":       startFrontGRPC(t, az, upSrv.URL),
			"in process": startFrontDecide(t, az, upSrv.URL),
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("signed=%t/%s", signed, tt.name), func(t *testing.T) {
				got := map[string]outcome{}
				for path, base := range fronts {
					req, err := http.NewRequestWithContext(t.Context(), tt.method, base+"/mcp"+tt.query, strings.NewReader(tt.body))
					if err != nil {
						t.Fatal(err)
					}
					req.Host = "mcp.example.com" // both fronts: the challenge names it
					if tt.body == "" {
						req.Body = nil
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					for k, v := range tt.header {
						req.Header.Set(k, v)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					o := outcome{Status: resp.StatusCode, ClientHeader: resp.Header.Clone(), ClientBody: string(b)}
					o.ClientHeader.Del("Date")
					if r, body := up.take(); r != nil {
						o.Upstream = saw(t, r, body, verifier)
					}
					got[path] = o
				}
				if d := cmp.Diff(got["grpc"], got["in process"]); d != "" {
					t.Errorf("in process differs from gRPC (-grpc +in process):\n%s", d)
				}
				o := got["in process"]
				if o.Status != tt.wantStatus {
					t.Fatalf("status %d, want %d: %s", o.Status, tt.wantStatus, o.ClientBody)
				}
				if tt.wantChallng != (o.ClientHeader.Get("Www-Authenticate") != "") {
					t.Errorf("WWW-Authenticate %q, want one: %t", o.ClientHeader.Get("Www-Authenticate"), tt.wantChallng)
				}
				if tt.wantStatus != 200 {
					if o.Upstream != nil {
						t.Errorf("a denied request reached the upstream: %+v", o.Upstream)
					}
					if ct := o.ClientHeader.Get("Content-Type"); ct != "application/json" {
						t.Errorf("denial content-type %q", ct)
					}
					return
				}
				u := o.Upstream
				if u == nil {
					t.Fatal("an allowed request did not reach the upstream")
				}
				for _, k := range []string{"X-Mcp-Servername", "X-Mcp-Promptname"} {
					if v := u.Header.Get(k); strings.HasPrefix(v, "forged") {
						t.Errorf("the upstream got the client's %s: %q", k, v)
					}
				}
				if v := u.Header.Get("X-Mcp-Toolname"); v != tt.wantTool {
					t.Errorf("x-mcp-toolname %q, want %q", v, tt.wantTool)
				}
				if tt.wantAuth == (u.Header.Get("Authorization") == bearer) {
					t.Errorf("the upstream got Authorization %.20q…, want exchanged: %t", u.Header.Get("Authorization"), tt.wantAuth)
				}
				switch {
				case u.Assertion == "forged":
					t.Error("the forged x-mcp-authz reached the upstream")
				case signed && !strings.HasPrefix(u.Assertion, "valid "):
					t.Errorf("assertion %q, want a valid one", u.Assertion)
				case !signed && u.Assertion != "":
					t.Errorf("assertion %q without a signer, want none", u.Assertion)
				}
			})
		}
	}
}

// saw is what the upstream got, the assertion given by its claims.
func saw(t *testing.T, r *http.Request, body []byte, v *assertion.Verifier) *upstreamSaw {
	t.Helper()
	h := r.Header.Clone()
	h.Del("X-Request-Id")
	a := h.Get("X-Mcp-Authz")
	h.Del("X-Mcp-Authz")
	switch a {
	case "":
	case "forged.assertion":
		a = "forged"
	default:
		c, err := v.Verify(a, body, time.Now())
		if err != nil {
			a = "invalid: " + err.Error()
			break
		}
		a = fmt.Sprintf("valid method=%s server=%s tool=%s sub=%s cred=%t", c.Method, c.Server, c.Tool, c.Subject, c.Credential != "")
	}
	return &upstreamSaw{URI: r.RequestURI, Header: h, Body: string(bytes.Clone(body)), Assertion: a}
}

// startFrontDecide serves a front that calls az in process.
func startFrontDecide(t *testing.T, az *authz.Server, upstream string) string {
	t.Helper()
	fr, err := front.New(front.Config{Upstream: upstream}, front.Deps{Authz: az})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(fr.Handler())
	t.Cleanup(s.Close)
	return s.URL
}

// startFrontGRPC serves a front that calls az over gRPC through authz/envoy.
func startFrontGRPC(t *testing.T, az *authz.Server, upstream string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	envoy.New(envoy.Config{}, az).Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	fr, err := front.New(front.Config{Upstream: upstream}, front.Deps{Checker: front.GRPC(authv3.NewAuthorizationClient(conn))})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(fr.Handler())
	t.Cleanup(s.Close)
	return s.URL
}

// BenchmarkFrontAuthz is one allowed tools/call through the front's handler
// (no network: the upstream is served in process) with authz in the same
// process, called through the Envoy API (authz/envoy as the Checker: a
// CheckRequest built and a CheckResponse applied) and directly (Deps.Authz).
func BenchmarkFrontAuthz(b *testing.B) {
	snap, err := registry.NewSnapshot([]registry.Server{{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:1/mcp"}})
	if err != nil {
		b.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Default: "allow"})
	if err != nil {
		b.Fatal(err)
	}
	key, err := assertion.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	az, err := authz.New(authz.Config{}, authz.Deps{Registry: reg, Policy: policy.NewEngine(set), Signer: assertion.NewSigner(key)})
	if err != nil {
		b.Fatal(err)
	}
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{"namespace":"default"}}}`)
	for _, bc := range []struct {
		name string
		deps front.Deps
	}{
		{"envoy", front.Deps{Checker: envoy.New(envoy.Config{}, az), Upstream: up}},
		{"decide", front.Deps{Authz: az, Upstream: up}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fr, err := front.New(front.Config{Upstream: "http://127.0.0.1:8081"}, bc.deps)
			if err != nil {
				b.Fatal(err)
			}
			h := fr.Handler()
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "http://mcp.example.com/mcp", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// TestDecideTimeout: when authz does not decide within Config.Timeout (here
// its identity provider hangs), the front answers status_on_error with no
// body and forwards nothing, in process as over gRPC.
func TestDecideTimeout(t *testing.T) {
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(stop) }) // runs first
	v, err := identity.New(identity.Config{Issuers: []identity.Issuer{{IssuerURL: hang.URL + "/realms/mcp", Audiences: []string{"mcp-gateway"}}}}, identity.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	snap, err := registry.NewSnapshot(nil)
	if err != nil {
		t.Fatal(err)
	}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Default: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	az, err := authz.New(authz.Config{}, authz.Deps{Registry: reg, Policy: policy.NewEngine(set), Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	up := &recordingUpstream{}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)
	fr, err := front.New(front.Config{Upstream: upSrv.URL, Timeout: 100 * time.Millisecond}, front.Deps{Authz: az})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fr.Handler())
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	// A token of the hanging issuer: verifying it waits for its keys.
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + hang.URL + `/realms/mcp","aud":"mcp-gateway","exp":4102444800}`))
	req.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ."+claims+".c2ln")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || len(b) != 0 {
		t.Errorf("got %d %q, want 503 and no body", resp.StatusCode, b)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("answered after %s, not at the front's timeout", d)
	}
	if r, _ := up.take(); r != nil {
		t.Error("a request authz did not decide in time reached the upstream")
	}
}
