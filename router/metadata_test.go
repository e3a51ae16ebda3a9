package router

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/resourcemeta"
	"github.com/mcp-authz/mcp-authz/registry"
)

// TestResourceMetadata: behind Envoy the router serves the RFC 9728
// document itself, on both well-known paths, with no assertion; other
// well-known paths stay unknown and /mcp still needs the assertion.
func TestResourceMetadata(t *testing.T) {
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, Config{ResourceMetadata: &resourcemeta.Metadata{
		Resource:             "https://mcp.example.com/mcp",
		AuthorizationServers: []string{"https://keycloak.example.com/realms/mcp"},
	}}, Deps{Registry: &registry.Registry{}, AssertionKey: key})
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(srv.Close)

	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var doc struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &doc) != nil || doc.Resource != "https://mcp.example.com/mcp" || len(doc.AuthorizationServers) != 1 {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	for path, want := range map[string]int{
		"/.well-known/oauth-protected-resource/other": http.StatusNotFound,
		"/mcp": http.StatusUnauthorized,
	} {
		resp, err := http.Post(srv.URL+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if path == "/mcp" && resp.StatusCode != want {
			t.Errorf("POST %s without an assertion: %d, want %d", path, resp.StatusCode, want)
		}
		if path != "/mcp" && resp.StatusCode != want {
			t.Errorf("POST %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
