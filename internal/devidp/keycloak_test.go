package devidp

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite manifests/keycloak/realm*.json from dev/realm*.yaml")

// keycloakBase is where the generated realms say Keycloak is; realms name
// their peers and identity providers by issuer under it.
const keycloakBase = "https://keycloak.example.com"

// keycloakFiles pairs each dev realm file with its Keycloak realm import.
var keycloakFiles = []struct{ yaml, json string }{
	{"../../dev/realm.yaml", "../../manifests/keycloak/realm.json"},
	{"../../dev/realm-a.yaml", "../../manifests/keycloak/realm-a.json"},
	{"../../dev/realm-b.yaml", "../../manifests/keycloak/realm-b.json"},
}

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
		IdentityProviders   []kcIdentityProvider           `json:"identityProviders,omitempty"`
	}
	kcIdentityProvider struct {
		Alias       string            `json:"alias"`
		DisplayName string            `json:"displayName"`
		ProviderID  string            `json:"providerId"`
		Enabled     bool              `json:"enabled"`
		Config      map[string]string `json:"config"`
	}
	kcFederatedIdentity struct {
		IdentityProvider string `json:"identityProvider"`
		UserID           string `json:"userId"`
		UserName         string `json:"userName"`
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
		// FederatedIdentities link the user to identity providers; Keycloak
		// finds the user of a JWT authorization grant by its sub.
		FederatedIdentities []kcFederatedIdentity `json:"federatedIdentities,omitempty"`
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

// keycloakRealm renders a dev realm as a Keycloak 26.5+ realm import. Client
// secrets are left out: Keycloak generates them. others are the other dev
// realms by name, for the subjects of users linked to them.
func keycloakRealm(cfg Config, others map[string]Config) kcRealm {
	cfg.BaseURL = keycloakBase
	r, err := compile(cfg)
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
			kc.Attributes = map[string]string{}
			if cl.keys != nil {
				kc.ClientAuthenticatorType = "client-jwt"
				jwks := c.JWKS
				if c.JWKSFile != "" {
					b, err := os.ReadFile(c.JWKSFile)
					if err != nil {
						panic(err)
					}
					jwks = string(b)
				}
				kc.Attributes["use.jwks.string"], kc.Attributes["jwks.string"] = "true", jwks
			}
			if len(cl.exchangeTo) > 0 || len(cl.grantPeers) > 0 {
				kc.Name = "gateway: exchanges user tokens for per-server tokens"
				kc.Attributes["standard.token.exchange.enabled"] = "true"
				for _, t := range cl.exchangeTo {
					kc.ProtocolMappers = append(kc.ProtocolMappers, audienceMapper(t))
				}
				// Keycloak's chaining: the peer is a client named by its
				// issuer, an audience the gateway may exchange to.
				for _, alias := range cl.grantPeers {
					kc.Name = "gateway: exchanges user tokens for per-server tokens and JWT authorization grants for peers"
					kc.ProtocolMappers = append(kc.ProtocolMappers, audienceMapper(r.peerByAlias(alias).issuer))
				}
			}
			if len(cl.grantIdPs) > 0 {
				kc.Name = "gateway: presents JWT authorization grants (jwt-bearer)"
				kc.Attributes["oauth2.jwt.authorization.grant.enabled"] = "true"
				kc.Attributes["oauth2.jwt.authorization.grant.idp"] = strings.Join(cl.grantIdPs, "##")
				for _, a := range cl.grantAudiences {
					kc.ProtocolMappers = append(kc.ProtocolMappers, audienceMapper(a))
				}
			}
			if len(kc.Attributes) == 0 {
				kc.Attributes = nil
			}
		default:
			kc.Name = "MCP server (audience only; roles are tool names)"
			kc.ClientAuthenticatorType = "client-secret"
		}
		out.Clients = append(out.Clients, kc)
	}
	for _, p := range r.peers {
		out.Clients = append(out.Clients, kcClient{ClientID: p.issuer, Name: "peer " + p.alias + ": audience of JWT authorization grants (its issuer)",
			Enabled: true, Protocol: "openid-connect", ClientAuthenticatorType: "client-secret", FullScopeAllowed: true})
	}
	for _, ci := range cfg.IdentityProviders {
		idp := r.idps[ci.Alias]
		out.IdentityProviders = append(out.IdentityProviders, kcIdentityProvider{
			Alias: idp.alias, DisplayName: idp.alias, ProviderID: "jwt-authorization-grant", Enabled: true,
			Config: map[string]string{
				"issuer": idp.issuer, "useJwksUrl": "true", "jwksUrl": idp.jwksURL,
				"jwtAuthorizationGrantEnabled":                       "true",
				"jwtAuthorizationGrantAssertionReuseAllowed":         "false",
				"jwtAuthorizationGrantMaxAllowedAssertionExpiration": strconv.Itoa(int(idp.maxLifetime.Seconds())),
				"jwtAuthorizationGrantAllowedClockSkew":              strconv.Itoa(int(idp.skew.Seconds())),
			},
		})
	}
	for _, u := range cfg.Users {
		p := r.byName[u.Username]
		ku := kcUser{ID: p.subject, Username: u.Username, Enabled: true, Email: u.Username + "@example.com", EmailVerified: true,
			FirstName: u.FirstName, LastName: u.LastName, Credentials: []kcCredential{{Type: "password", Value: u.Password}}, ClientRoles: u.ClientRoles}
		for _, g := range u.Groups {
			ku.Groups = append(ku.Groups, "/"+g)
		}
		for _, alias := range slices.Sorted(maps.Keys(u.FederatedIdentities)) {
			ku.FederatedIdentities = append(ku.FederatedIdentities, kcFederatedIdentity{
				IdentityProvider: alias, UserID: linkedSubject(r.idps[alias], u.FederatedIdentities[alias], cfg.IdentityProviders, others),
				UserName: u.FederatedIdentities[alias]})
		}
		out.Users = append(out.Users, ku)
	}
	return out
}

// linkedSubject is the sub, at the identity provider, of the user a link
// names: Keycloak links by sub only. With userClaim preferred_username the
// provider must be another dev realm, whose user of that name gives the sub.
func linkedSubject(idp *identityProvider, value string, idps []IdentityProvider, others map[string]Config) string {
	if idp.userClaim == "sub" {
		return value
	}
	ci := idps[slices.IndexFunc(idps, func(i IdentityProvider) bool { return i.Alias == idp.alias })]
	other, ok := others[ci.Realm]
	if !ok {
		panic("identity provider " + idp.alias + ": userClaim " + idp.userClaim + " needs a dev realm to find the linked user's sub")
	}
	other.BaseURL = keycloakBase
	r, err := compile(other)
	if err != nil {
		panic(err)
	}
	for _, p := range r.byName {
		if (idp.userClaim == "preferred_username" && p.username == value) || (idp.userClaim == "email" && p.username+"@example.com" == value) {
			return p.subject
		}
	}
	panic("identity provider " + idp.alias + ": no user " + value + " in realm " + ci.Realm)
}

// TestKeycloakRealm checks manifests/keycloak/realm*.json are valid JSON and
// the same realms as dev/realm*.yaml (go test -run TestKeycloakRealm -update
// rewrites them).
func TestKeycloakRealm(t *testing.T) {
	cfgs := map[string]Config{}
	for _, f := range keycloakFiles {
		cfg, err := LoadConfig(f.yaml)
		if err != nil {
			t.Fatal(err)
		}
		cfgs[f.yaml] = cfg
	}
	byName := map[string]Config{}
	for _, c := range cfgs {
		byName[c.Realm] = c
	}
	realms := map[string]kcRealm{}
	for _, f := range keycloakFiles {
		want, err := json.MarshalIndent(keycloakRealm(cfgs[f.yaml], byName), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, '\n')
		if *update {
			if err := os.WriteFile(f.json, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(f.json)
		if err != nil {
			t.Fatal(err)
		}
		var realm kcRealm
		dec := json.NewDecoder(bytes.NewReader(got))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&realm); err != nil {
			t.Fatalf("%s: %v", f.json, err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s differs from %s; run go test ./internal/devidp -run TestKeycloakRealm -update (-want +got):\n%s", f.json, f.yaml, diff)
		}
		realms[realm.Realm] = realm
	}
	client := func(r kcRealm, id string) kcClient {
		t.Helper()
		i := slices.IndexFunc(r.Clients, func(c kcClient) bool { return c.ClientID == id })
		if i < 0 {
			t.Fatalf("realm %s has no client %s", r.Realm, id)
		}
		return r.Clients[i]
	}
	gw := client(realms["mcp"], "mcp-gateway")
	if gw.PublicClient || gw.Attributes["standard.token.exchange.enabled"] != "true" {
		t.Errorf("mcp-gateway: public %v, attributes %v", gw.PublicClient, gw.Attributes)
	}
	if len(realms["mcp"].Roles["client"][kube]) != 22 {
		t.Errorf("%s has %d roles, want 22", kube, len(realms["mcp"].Roles["client"][kube]))
	}

	// Domain A: the gateway may exchange to domain B's issuer, a client.
	issuerB := keycloakBase + "/realms/domain-b"
	a, b := realms["domain-a"], realms["domain-b"]
	client(a, issuerB)
	gwA := client(a, "mcp-gateway")
	if gwA.Attributes["standard.token.exchange.enabled"] != "true" || !slices.ContainsFunc(gwA.ProtocolMappers, func(m kcMapper) bool {
		return m.ProtocolMapper == "oidc-audience-mapper" && m.Config["included.client.audience"] == issuerB
	}) {
		t.Errorf("domain-a mcp-gateway cannot exchange to %s: %+v", issuerB, gwA)
	}
	// Domain B: a JWT Authorization Grant provider for A, the gateway
	// allowed to use it, alice linked by her sub at A.
	if len(b.IdentityProviders) != 1 || b.IdentityProviders[0].ProviderID != "jwt-authorization-grant" ||
		b.IdentityProviders[0].Config["issuer"] != keycloakBase+"/realms/domain-a" || b.IdentityProviders[0].Config["jwtAuthorizationGrantEnabled"] != "true" {
		t.Errorf("domain-b identity providers: %+v", b.IdentityProviders)
	}
	gwB := client(b, "mcp-gateway")
	if gwB.Attributes["oauth2.jwt.authorization.grant.enabled"] != "true" || gwB.Attributes["oauth2.jwt.authorization.grant.idp"] != "domain-a" {
		t.Errorf("domain-b mcp-gateway attributes %v", gwB.Attributes)
	}
	i := slices.IndexFunc(b.Users, func(u kcUser) bool { return u.Username == "alice.liddell" })
	want := []kcFederatedIdentity{{IdentityProvider: "domain-a", UserID: uuidFrom("domain-a/user/alice"), UserName: "alice"}}
	if i < 0 || !cmp.Equal(b.Users[i].FederatedIdentities, want) {
		t.Errorf("domain-b alice.liddell is not linked to alice of domain-a: %+v", b.Users)
	}
}
