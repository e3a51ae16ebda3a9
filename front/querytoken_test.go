package front_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/envoy"
	"github.com/mcp-authz/mcp-authz/front"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// TestQueryTokenThroughFront: a token in the query string is refused through
// the built-in front however its parameter name is encoded, and nothing
// reaches the upstream. The front has no check of its own, as Envoy has none:
// it hands authz the request target as sent, undecoded, and authz refuses it.
// The real authz server runs behind the front, over gRPC (as Envoy calls it)
// and in process (as serve wires it when both run in one process), with
// identity on
// (an issuer that is never contacted: a token in the query is refused before
// any token is verified, and the requests carry no Authorization).
func TestQueryTokenThroughFront(t *testing.T) {
	snap, err := registry.NewSnapshot([]registry.Server{{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:1/mcp"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	set, err := policy.Compile(policy.Config{Default: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := identity.New(identity.Config{Issuers: []identity.Issuer{{IssuerURL: "http://127.0.0.1:1/realms/mcp", Audiences: []string{"mcp-gateway"}}}}, identity.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	az, err := authz.New(authz.Config{}, authz.Deps{Registry: reg, Policy: policy.NewEngine(set), Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ext := envoy.New(envoy.Config{}, az)
	g := grpc.NewServer()
	ext.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	t.Cleanup(up.Close)
	for _, path := range []struct {
		name    string
		checker front.Checker
	}{
		{"grpc", front.GRPC(authv3.NewAuthorizationClient(conn))},
		{"in process", ext},
	} {
		fr, err := front.New(front.Config{Upstream: up.URL}, front.Deps{Checker: path.checker})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(fr.Handler())
		t.Cleanup(srv.Close)
		t.Run(path.name, func(t *testing.T) { queryTokens(t, srv.URL) })
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}

// queryTokens sends the query-token cases to the front at url.
func queryTokens(t *testing.T, url string) {
	tests := []struct {
		name, query, want string
	}{
		{"plain", "access_token=s3cret", authz.ReasonTokenInQuery},
		{"token", "token=s3cret", authz.ReasonTokenInQuery},
		{"percent-encoded a", "%61ccess_token=s3cret", authz.ReasonTokenInQuery},
		{"percent-encoded underscore", "access%5Ftoken=s3cret", authz.ReasonTokenInQuery},
		{"percent-encoded k", "to%6Ben=s3cret", authz.ReasonTokenInQuery},
		{"double-encoded", "to%256Ben=s3cret", authz.ReasonTokenInQuery},
		{"plus-encoded space", "+access_token=s3cret", authz.ReasonTokenInQuery},
		{"mixed case", "ACCESS_Token=s3cret", authz.ReasonTokenInQuery},
		{"mixed case and encoded", "%54OKEN=s3cret", authz.ReasonTokenInQuery},
		{"semicolon", "a=1;token=s3cret", authz.ReasonTokenInQuery},
		{"undecodable name", "to%zken=s3cret", authz.ReasonTokenInQuery},
		// Control: no token in the query, so the missing Authorization is
		// what is refused.
		{"other parameters", "session=1&tokens=2", authz.ReasonTokenMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{}}}`
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/mcp?"+tt.query, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e struct {
				Error struct {
					Data struct{ Reason string } `json:"data"`
				} `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if resp.StatusCode != http.StatusUnauthorized || e.Error.Data.Reason != tt.want {
				t.Errorf("got %d %s, want 401 %s", resp.StatusCode, e.Error.Data.Reason, tt.want)
			}
			if strings.Contains(string(b), "s3cret") {
				t.Errorf("the answer echoes the token: %s", b)
			}
		})
	}
}
