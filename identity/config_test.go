package identity

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	const doc = `
issuers:
  - issuerURL: http://127.0.0.1:8180/realms/mcp
    jwksURL: http://127.0.0.1:8180/realms/mcp/protocol/openid-connect/certs
    audiences: [mcp-gateway]
    algorithms: [RS256, PS256]
leeway: 10s
cacheSize: 500
keyRefreshInterval: 1m
keyMaxAge: 2h
timeout: 3s
`
	var got Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Issuers: []Issuer{{
			IssuerURL:  "http://127.0.0.1:8180/realms/mcp",
			JWKSURL:    "http://127.0.0.1:8180/realms/mcp/protocol/openid-connect/certs",
			Audiences:  []string{"mcp-gateway"},
			Algorithms: []string{"RS256", "PS256"},
		}},
		Leeway: 10 * time.Second, CacheSize: 500, KeyRefreshInterval: time.Minute, KeyMaxAge: 2 * time.Hour, Timeout: 3 * time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded config mismatch (-want +got):\n%s", diff)
	}
	if _, err := New(got, Deps{}); err != nil {
		t.Errorf("New(decoded config): %v", err)
	}
}
