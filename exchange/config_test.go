package exchange

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/mcp-authz/mcp-authz/internal/field"
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
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded config mismatch (-want +got):\n%s", diff)
	}
}

// TestProfilesValidate: each problem of a profile is reported at its YAML
// path, and a good profile set has none.
func TestProfilesValidate(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretPath, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	te := Step{TokenURL: "https://a.example/token", ClientID: "gw", ClientSecretFile: secretPath, Audience: "https://b.example"}
	jb := Step{Grant: GrantJWTBearer, TokenURL: "https://b.example/token", ClientID: "gw", ClientSecretFile: secretPath}
	expect := &Expect{Issuer: "https://b.example", Audience: "kubernetes"}
	good := Profile{Steps: []Step{te, jb}, Expect: expect}
	tests := []struct {
		name     string
		profiles map[string]Profile
		want     []string // paths of the problems, sorted
	}{
		{"good chain and static", map[string]Profile{"spoke": good, "apikey": {Static: &Static{SecretFile: secretPath}}}, nil},
		{"default is reserved", map[string]Profile{"default": good}, []string{"profiles.default"}},
		{"bad name", map[string]Profile{"Spoke": good}, []string{"profiles.Spoke"}},
		{"no expect", map[string]Profile{"p": {Steps: []Step{te}}}, []string{"profiles.p.expect"}},
		{"nothing", map[string]Profile{"p": {}}, []string{"profiles.p.steps"}},
		{"static with steps", map[string]Profile{"p": {Steps: []Step{te}, Expect: expect, Static: &Static{SecretFile: secretPath}}}, []string{"profiles.p.static"}},
		{"static file missing", map[string]Profile{"p": {Static: &Static{SecretFile: filepath.Join(dir, "nope")}}}, []string{"profiles.p.static.secretFile"}},
		{"jwt-bearer first", map[string]Profile{"p": {Steps: []Step{jb}, Expect: expect}}, []string{"profiles.p.steps[0].grant"}},
		{"access token before jwt-bearer is allowed", map[string]Profile{"p": {Steps: []Step{func() Step { s := te; s.RequestedTokenType = TokenTypeAccessToken; return s }(), jb}, Expect: expect}}, nil}, // Keycloak's grant is an access token
		{"unknown grant", map[string]Profile{"p": {Steps: []Step{func() Step { s := te; s.Grant = "password"; return s }()}, Expect: expect}}, []string{"profiles.p.steps[0].grant"}},
		{"two credentials", map[string]Profile{"p": {Steps: []Step{func() Step { s := te; s.FederatedTokenFile = secretPath; return s }()}, Expect: expect}}, []string{"profiles.p.steps[0].clientSecretFile"}},
		{"no credential", map[string]Profile{"p": {Steps: []Step{func() Step { s := te; s.ClientSecretFile = ""; return s }()}, Expect: expect}}, []string{"profiles.p.steps[0].clientSecretFile"}},
		{"authStyle with a key", map[string]Profile{"p": {Steps: []Step{func() Step {
			s := te
			s.ClientSecretFile, s.PrivateKeyFile, s.AuthStyle = "", secretPath, "post"
			return s
		}()}, Expect: expect}}, []string{"profiles.p.steps[0].authStyle"}},
		{"not a key", map[string]Profile{"p": {Steps: []Step{func() Step { s := te; s.ClientSecretFile, s.PrivateKeyFile = "", secretPath; return s }()}, Expect: expect}}, []string{"profiles.p.steps[0].privateKeyFile"}},
		{"token URL with credentials", map[string]Profile{"p": {Steps: []Step{func() Step { s := te; s.TokenURL = "https://u:p@a.example/token"; return s }()}, Expect: expect}}, []string{"profiles.p.steps[0].tokenURL"}},
		{"requested refresh token", map[string]Profile{"p": {Steps: []Step{func() Step {
			s := te
			s.RequestedTokenType = "urn:ietf:params:oauth:token-type:refresh_token"
			return s
		}()}, Expect: expect}}, []string{"profiles.p.steps[0].requestedTokenType"}},
		{"actor on jwt-bearer", map[string]Profile{"p": {Steps: []Step{te, func() Step { s := jb; s.ActorTokenFile = secretPath; return s }()}, Expect: expect}}, []string{"profiles.p.steps[1].actorTokenFile"}},
		{"expect without audience", map[string]Profile{"p": {Steps: []Step{te}, Expect: &Expect{Issuer: "https://b.example"}}}, []string{"profiles.p.expect.audience"}},
		{"expect issuer relative", map[string]Profile{"p": {Steps: []Step{te}, Expect: &Expect{Issuer: "/realms/b", Audience: "k"}}}, []string{"profiles.p.expect.issuer"}},
		{"caFile not PEM", map[string]Profile{"p": {Steps: []Step{te}, Expect: expect, CAFile: secretPath}}, []string{"profiles.p.caFile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Profiles: tt.profiles}.Validate()
			var got []string
			for _, e := range unjoin(err) {
				var fe *field.Error
				if !errors.As(e, &fe) {
					t.Fatalf("problem %v is not a field.Error", e)
				}
				got = append(got, fe.Path)
				if strings.Contains(fe.Error(), "s3cret") {
					t.Errorf("problem %q holds the secret", fe)
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problem paths mismatch (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
