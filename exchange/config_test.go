package exchange

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	const doc = `
tokenURL: http://127.0.0.1:8180/realms/mcp/protocol/openid-connect/token
clientID: mcp-gateway
clientSecretFile: dev/gateway-secret
authStyle: post
scopes: [openid]
requestedTokenType: urn:ietf:params:oauth:token-type:access_token
skipWhenAudienceMatches: true
cacheSize: 100
expirySkew: 10s
timeout: 2s
`
	var got Config
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := Config{
		TokenURL: "http://127.0.0.1:8180/realms/mcp/protocol/openid-connect/token", ClientID: "mcp-gateway",
		ClientSecretFile: "dev/gateway-secret", AuthStyle: "post", Scopes: []string{"openid"},
		RequestedTokenType: TokenTypeAccessToken, SkipWhenAudienceMatches: true,
		CacheSize: 100, ExpirySkew: 10 * time.Second, Timeout: 2 * time.Second,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Config{}, "Now")); diff != "" {
		t.Errorf("decoded config mismatch (-want +got):\n%s", diff)
	}
}
