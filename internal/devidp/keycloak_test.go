package devidp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite manifests/keycloak/realm.json from dev/realm.yaml")

const realmJSON = "../../manifests/keycloak/realm.json"

// The subset of Keycloak's realm representation (realm import format) we ship.
type (
	kcRealm struct {
		Realm               string                         `json:"realm"`
		Enabled             bool                           `json:"enabled"`
		SSLRequired         string                         `json:"sslRequired"`
		AccessTokenLifespan int                            `json:"accessTokenLifespan"`
		Groups              []kcGroup                      `json:"groups"`
		Roles               map[string]map[string][]kcRole `json:"roles"`
		Clients             []kcClient                     `json:"clients"`
		Users               []kcUser                       `json:"users"`
	}
	kcGroup struct {
		Name string `json:"name"`
		Path string `json:"path"`
	}
	kcRole struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
	}
	kcClient struct {
		ClientID                  string            `json:"clientId"`
		Name                      string            `json:"name,omitempty"`
		Enabled                   bool              `json:"enabled"`
		Protocol                  string            `json:"protocol"`
		PublicClient              bool              `json:"publicClient"`
		ClientAuthenticatorType   string            `json:"clientAuthenticatorType,omitempty"`
		StandardFlowEnabled       bool              `json:"standardFlowEnabled"`
		DirectAccessGrantsEnabled bool              `json:"directAccessGrantsEnabled"`
		ServiceAccountsEnabled    bool              `json:"serviceAccountsEnabled"`
		FullScopeAllowed          bool              `json:"fullScopeAllowed"`
		RedirectURIs              []string          `json:"redirectUris,omitempty"`
		Attributes                map[string]string `json:"attributes,omitempty"`
		ProtocolMappers           []kcMapper        `json:"protocolMappers,omitempty"`
	}
	kcMapper struct {
		Name           string            `json:"name"`
		Protocol       string            `json:"protocol"`
		ProtocolMapper string            `json:"protocolMapper"`
		Config         map[string]string `json:"config"`
	}
	kcUser struct {
		ID            string              `json:"id"`
		Username      string              `json:"username"`
		Enabled       bool                `json:"enabled"`
		Email         string              `json:"email"`
		EmailVerified bool                `json:"emailVerified"`
		FirstName     string              `json:"firstName,omitempty"`
		LastName      string              `json:"lastName,omitempty"`
		Credentials   []kcCredential      `json:"credentials"`
		Groups        []string            `json:"groups,omitempty"`
		ClientRoles   map[string][]string `json:"clientRoles,omitempty"`
	}
	kcCredential struct {
		Type      string `json:"type"`
		Value     string `json:"value"`
		Temporary bool   `json:"temporary"`
	}
)

func groupsMapper() kcMapper {
	return kcMapper{Name: "groups", Protocol: "openid-connect", ProtocolMapper: "oidc-group-membership-mapper", Config: map[string]string{
		"claim.name": "groups", "full.path": "false", "access.token.claim": "true", "id.token.claim": "true", "userinfo.token.claim": "true", "introspection.token.claim": "true",
	}}
}

func audienceMapper(client string) kcMapper {
	return kcMapper{Name: "audience " + client, Protocol: "openid-connect", ProtocolMapper: "oidc-audience-mapper", Config: map[string]string{
		"included.client.audience": client, "access.token.claim": "true", "id.token.claim": "false", "introspection.token.claim": "true",
	}}
}

// keycloakRealm renders the dev realm as a Keycloak 26.2+ realm import. Client
// secrets are left out: Keycloak generates them.
func keycloakRealm(cfg Config) kcRealm {
	r, err := compile(Config{Realm: cfg.Realm, BaseURL: "http://127.0.0.1:1", TokenLifetime: cfg.TokenLifetime,
		DefaultAudiences: cfg.DefaultAudiences, Clients: cfg.Clients, Users: cfg.Users})
	if err != nil {
		panic(err)
	}
	out := kcRealm{Realm: r.name, Enabled: true, SSLRequired: "external", AccessTokenLifespan: int(r.lifetime.Seconds()),
		Roles: map[string]map[string][]kcRole{"client": {}}}
	var groups []string
	for _, u := range cfg.Users {
		groups = append(groups, u.Groups...)
		for c, roles := range u.ClientRoles {
			for _, role := range roles {
				if !slices.Contains(out.Roles["client"][c], kcRole{Name: role}) {
					out.Roles["client"][c] = append(out.Roles["client"][c], kcRole{Name: role})
				}
			}
		}
	}
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		out.Groups = append(out.Groups, kcGroup{Name: g, Path: "/" + g})
	}
	for _, c := range cfg.Clients {
		kc := kcClient{ClientID: c.ID, Enabled: true, Protocol: "openid-connect", PublicClient: c.Public, FullScopeAllowed: true}
		switch cl := r.clients[c.ID]; {
		case cl.public:
			kc.Name = "public client for user logins"
			kc.StandardFlowEnabled, kc.DirectAccessGrantsEnabled = true, true
			kc.RedirectURIs = []string{"http://127.0.0.1/*", "http://localhost/*"}
			kc.Attributes = map[string]string{"pkce.code.challenge.method": "S256"}
			kc.ProtocolMappers = []kcMapper{groupsMapper()}
			for _, a := range r.defaults {
				kc.ProtocolMappers = append(kc.ProtocolMappers, audienceMapper(a))
			}
		case cl.confidential():
			kc.Name = "confidential client"
			kc.ClientAuthenticatorType = "client-secret"
			kc.ServiceAccountsEnabled = true
			kc.ProtocolMappers = []kcMapper{groupsMapper()}
			if len(cl.exchangeTo) > 0 {
				kc.Name = "gateway: exchanges user tokens for per-server tokens"
				kc.Attributes = map[string]string{"standard.token.exchange.enabled": "true"}
				for _, t := range cl.exchangeTo {
					kc.ProtocolMappers = append(kc.ProtocolMappers, audienceMapper(t))
				}
			}
		default:
			kc.Name = "MCP server (audience only; roles are tool names)"
			kc.ClientAuthenticatorType = "client-secret"
		}
		out.Clients = append(out.Clients, kc)
	}
	for _, u := range cfg.Users {
		p := r.byName[u.Username]
		ku := kcUser{ID: p.subject, Username: u.Username, Enabled: true, Email: u.Username + "@example.com", EmailVerified: true,
			FirstName: u.FirstName, LastName: u.LastName, Credentials: []kcCredential{{Type: "password", Value: u.Password}}, ClientRoles: u.ClientRoles}
		for _, g := range u.Groups {
			ku.Groups = append(ku.Groups, "/"+g)
		}
		out.Users = append(out.Users, ku)
	}
	return out
}

// TestKeycloakRealm checks manifests/keycloak/realm.json is valid JSON and the
// same realm as dev/realm.yaml (go test -run TestKeycloakRealm -update rewrites it).
func TestKeycloakRealm(t *testing.T) {
	cfg, _ := devRealm(t)
	want, err := json.MarshalIndent(keycloakRealm(cfg), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(realmJSON, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(realmJSON)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(got) {
		t.Fatal("realm.json is not valid JSON")
	}
	var realm kcRealm
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&realm); err != nil {
		t.Fatalf("realm.json: %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("realm.json differs from dev/realm.yaml; run go test ./internal/devidp -run TestKeycloakRealm -update (-want +got):\n%s", diff)
	}
	gw := realm.Clients[slices.IndexFunc(realm.Clients, func(c kcClient) bool { return c.ClientID == "mcp-gateway" })]
	if gw.PublicClient || gw.Attributes["standard.token.exchange.enabled"] != "true" {
		t.Errorf("mcp-gateway: public %v, attributes %v", gw.PublicClient, gw.Attributes)
	}
	if len(realm.Roles["client"][kube]) != 22 {
		t.Errorf("%s has %d roles, want 22", kube, len(realm.Roles["client"][kube]))
	}
}
