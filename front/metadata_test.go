package front

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestResourceMetadata(t *testing.T) {
	up := startUpstream(t, nil)
	peer, client := startAuthz(t, allow(nil))
	front := startFront(t, Config{ResourceMetadata: &ResourceMetadata{
		Resource:             "http://127.0.0.1:8080/mcp",
		AuthorizationServers: []string{"http://127.0.0.1:8180/realms/mcp"},
		ScopesSupported:      []string{"openid", "mcp"},
	}}, client, up)
	want := map[string]any{
		"resource":                 "http://127.0.0.1:8080/mcp",
		"authorization_servers":    []any{"http://127.0.0.1:8180/realms/mcp"},
		"scopes_supported":         []any{"openid", "mcp"},
		"bearer_methods_supported": []any{"header"},
	}
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantDoc    bool
	}{
		{name: "root", method: http.MethodGet, path: "/.well-known/oauth-protected-resource", wantStatus: 200, wantDoc: true},
		{name: "path-suffixed", method: http.MethodGet, path: "/.well-known/oauth-protected-resource/mcp", wantStatus: 200, wantDoc: true},
		{name: "head", method: http.MethodHead, path: "/.well-known/oauth-protected-resource/mcp", wantStatus: 200},
		{name: "preflight", method: http.MethodOptions, path: "/.well-known/oauth-protected-resource/mcp", wantStatus: 204},
		{name: "post", method: http.MethodPost, path: "/.well-known/oauth-protected-resource", wantStatus: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, newRequest(t, tc.method, front.URL+tc.path, "", nil))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Access-Control-Allow-Origin %q, want *", got)
			}
			if !tc.wantDoc {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		})
	}
	if n := len(peer.requests()); n != 0 {
		t.Errorf("%d checks for metadata, want none (served without authz)", n)
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("upstream got %d metadata requests, want none", n)
	}

	// Any other well-known path is an ordinary request: checked, then proxied.
	resp, _ := do(t, newRequest(t, http.MethodGet, front.URL+"/.well-known/oauth-protected-resource/other", "", nil))
	if resp.StatusCode != http.StatusOK || len(peer.requests()) != 1 || len(up.seen()) != 1 {
		t.Errorf("other path: status %d, %d checks, %d upstream requests; want 200, 1, 1", resp.StatusCode, len(peer.requests()), len(up.seen()))
	}
}

func TestResourceMetadataOff(t *testing.T) {
	up := startUpstream(t, nil)
	peer, client := startAuthz(t, allow(nil))
	front := startFront(t, Config{}, client, up)
	resp, _ := do(t, newRequest(t, http.MethodGet, front.URL+"/.well-known/oauth-protected-resource", "", nil))
	if resp.StatusCode != http.StatusOK || len(peer.requests()) != 1 || len(up.seen()) != 1 {
		t.Errorf("status %d, %d checks, %d upstream requests; want the path checked and proxied", resp.StatusCode, len(peer.requests()), len(up.seen()))
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
listen: 127.0.0.1:8080
upstream: http://127.0.0.1:8081
authz: 127.0.0.1:9001
maxRequestBytes: 65536
allowPartialMessage: true
packAsBytes: true
encodeRawHeaders: true
contextExtensions: {mcp-server: mcp-test/kubernetes-mcp}
timeout: 250ms
statusOnError: 503
autoHostRewrite: true
resourceMetadata:
  resource: http://127.0.0.1:8080/mcp
  authorizationServers: [http://127.0.0.1:8180/realms/mcp]
  scopesSupported: [openid]
  bearerMethodsSupported: [header]
  resourceName: MCP gateway
`
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	var got Config
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen: "127.0.0.1:8080", Upstream: "http://127.0.0.1:8081", Authz: "127.0.0.1:9001",
		MaxRequestBytes: 65536, AllowPartialMessage: true, PackAsBytes: true, EncodeRawHeaders: true,
		ContextExtensions: map[string]string{"mcp-server": "mcp-test/kubernetes-mcp"},
		Timeout:           250 * time.Millisecond, StatusOnError: 503, AutoHostRewrite: true,
		ResourceMetadata: &ResourceMetadata{
			Resource:               "http://127.0.0.1:8080/mcp",
			AuthorizationServers:   []string{"http://127.0.0.1:8180/realms/mcp"},
			ScopesSupported:        []string{"openid"},
			BearerMethodsSupported: []string{"header"},
			ResourceName:           "MCP gateway",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	dec = yaml.NewDecoder(strings.NewReader("upstream: http://a\nmaxBodyBytes: 1\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&Config{}); err == nil {
		t.Errorf("unknown key accepted")
	}
}
