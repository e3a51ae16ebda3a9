//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// routePolicy stands in for what Kuadrant runs on a server's own HTTPRoute
// (Authorino and Limitador cannot run here): an Envoy ext_authz gRPC server
// keyed on the x-mcp-* headers only, as Kuadrant's samples are. Its
// AuthPolicy part wants a bearer token and x-mcp-servername naming the
// route's server on every request, and, where x-mcp-toolname is present,
// that tool to be the one allowed (403 otherwise); its RateLimitPolicy part
// admits limit tools/call requests in all (429 after).
type routePolicy struct {
	authv3.UnimplementedAuthorizationServer
	server, tool string
	limit        int

	mu      sync.Mutex
	calls   int
	refused []string // "status toolname" of each refusal
}

func (p *routePolicy) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	status := http.StatusOK
	tool, named := h["x-mcp-toolname"]
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case !strings.HasPrefix(h["authorization"], "Bearer "):
		status = http.StatusUnauthorized
	case h["x-mcp-servername"] != p.server:
		status = http.StatusForbidden
	case named && tool != p.tool:
		status = http.StatusForbidden
	case h["x-mcp-method"] == "tools/call" && p.calls >= p.limit:
		status = http.StatusTooManyRequests
	case h["x-mcp-method"] == "tools/call":
		p.calls++
	}
	if status == http.StatusOK {
		return &authv3.CheckResponse{
			Status:       &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
		}, nil
	}
	p.refused = append(p.refused, fmt.Sprint(status, " ", tool))
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode(status)},
			Body:   `{"error":"Forbidden"}`,
		}},
	}, nil
}

func (p *routePolicy) refusals() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// startRoutePolicy serves p on a loopback port and returns its address.
func startRoutePolicy(t *testing.T, p *routePolicy) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, p)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// startRouteGateway runs the front alone as the gateway that serves a
// server's own HTTPRoute: it checks every request with the ext_authz server
// at check (the route's policies) and proxies to upstream.
func startRouteGateway(t *testing.T, upstream, check string) string {
	t.Helper()
	listen := freePort(t)
	cfg := writeFile(t, t.TempDir(), "route-gateway.yaml", fmt.Sprintf(`gateway:
  listen: %s
  upstream: %s
  authz: %s
log:
  level: debug
`, listen, upstream, check))
	start(t, listen, nil, filepath.Join(bin, "mcp-authz"), "serve", "--config", cfg)
	return "http://" + listen + "/mcp"
}

// forged adds a caller's own x-mcp-* headers, as the per-route policy
// would want them for the allowed tool, to every request.
type forged struct {
	token string
}

func (f forged) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("x-mcp-servername", "mcp-test/kubernetes-mcp")
	req.Header.Set("x-mcp-toolname", "pods_list")
	req.Header.Set("x-mcp-method", "tools/call")
	return http.DefaultTransport.RoundTrip(req)
}

// TestThroughGatewayRoutePolicy is the deploy issue's "keeping Kuadrant's
// AuthPolicy": front -> authz -> router, whose upstream URL leads back
// through a gateway (the front alone) where the server's own route has
// Kuadrant-style policies keyed on x-mcp-* (routePolicy), to a go-sdk MCP
// server. authz allows every tool; the route's policy allows only pods_list
// and three calls. The server sees the router's x-mcp-* headers on every
// request and a token exchanged for it; pods_delete is refused at the route
// and never reaches it, however the client forges x-mcp-* headers; the
// fourth call is rate limited.
func TestThroughGatewayRoutePolicy(t *testing.T) {
	const server = "mcp-test/kubernetes-mcp"
	p := startIdP(t, "")
	kube := startGoServer(t, server, "pods_list", "pods_delete")
	policy := &routePolicy{server: server, tool: "pods_list", limit: 3}
	route := startRouteGateway(t, kube.url, startRoutePolicy(t, policy))
	a := startAggregate(t, 1, identityConfig(p)+kubeServer(route)+"defaultPolicy: allow\n")
	token := p.login(t, "alice")
	sub, _ := jwtPayload(t, token)["sub"].(string)

	c := mcp.NewClient(&mcp.Implementation{Name: "forger", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: a.front, HTTPClient: &http.Client{Transport: forged{token: token}}, MaxRetries: -1,
	}, sessionOptions)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })

	if got, want := listTools(t, cs), []string{"kube_pods_delete", "kube_pods_list"}; !cmp.Equal(got, want) {
		t.Fatalf("tools %q, want %q (authz allows every tool)", got, want)
	}
	if got, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list"}); err != nil || got != server+":pods_list" {
		t.Fatalf("pods_list: %q, %v", got, err)
	}
	if got, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_delete"}); err == nil {
		t.Fatalf("pods_delete passed the route's policy: %q", got)
	}
	for i := 2; i <= 4; i++ {
		got, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list"})
		if i <= policy.limit && (err != nil || got != server+":pods_list") {
			t.Fatalf("pods_list call %d: %q, %v", i, got, err)
		}
		if i > policy.limit && err == nil {
			t.Fatalf("pods_list call %d passed the rate limit of %d: %q", i, policy.limit, got)
		}
	}
	if got, want := policy.refusals(), []string{"403 pods_delete", "429 pods_list"}; !cmp.Equal(got, want) {
		t.Errorf("the route's policy refused %q, want %q", got, want)
	}
	waitFor(t, "the router's upstream GET stream through the gateway", 10*time.Second, func() bool {
		return kube.count(0, http.MethodGet) > 0
	})
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}

	seen := kube.requests()
	calls := 0
	for _, r := range seen {
		want := map[string]string{"x-mcp-servername": server}
		if r.method != http.MethodGet && r.method != http.MethodDelete {
			want["x-mcp-method"] = r.method
		}
		if r.method == "tools/call" {
			calls++
			want["x-mcp-toolname"] = r.tool
			if r.tool != "pods_list" {
				t.Errorf("the server received a call of %q", r.tool)
			}
		}
		if diff := cmp.Diff(want, mcpHeaders(r.header)); diff != "" {
			t.Errorf("%s: x-mcp-* headers (-want +got):\n%s", r.method, diff)
		}
	}
	if calls != policy.limit {
		t.Errorf("the server received %d calls, want %d", calls, policy.limit)
	}
	for _, m := range []string{"initialize", "notifications/initialized", "tools/list", "tools/call", http.MethodGet, http.MethodDelete} {
		if !slices.ContainsFunc(seen, func(r request) bool { return r.method == m }) {
			t.Errorf("the server received no %s through the gateway", m)
		}
	}
	checkUpstreamTokens(t, server, seen, map[string]string{sub: token}, sub)
	a.noTokenInLogs(t, token)
}

// mcpHeaders is the x-mcp-* headers of h, lower-cased, each one's values
// joined by commas.
func mcpHeaders(h http.Header) map[string]string {
	got := map[string]string{}
	for k, v := range h {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-mcp-") {
			got[lk] = strings.Join(v, ",")
		}
	}
	return got
}
