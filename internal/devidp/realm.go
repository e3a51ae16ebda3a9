package devidp

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// realm is the compiled, immutable Config.
type realm struct {
	name, issuer  string
	lifetime      time.Duration
	grantLifetime time.Duration
	clients       map[string]*client
	byName        map[string]*principal
	bySubject     map[string]*principal
	defaults      []string // audiences of every password-login token
	peers         []*peer
	idps          map[string]*identityProvider // by alias
}

func (r *realm) peerByAlias(alias string) *peer {
	for _, p := range r.peers {
		if p.alias == alias {
			return p
		}
	}
	return nil
}

func (r *realm) peerByIssuer(iss string) *peer {
	for _, p := range r.peers {
		if p.issuer == iss {
			return p
		}
	}
	return nil
}

func (r *realm) idpByIssuer(iss string) *identityProvider {
	for _, idp := range r.idps {
		if idp.issuer == iss {
			return idp
		}
	}
	return nil
}

// tokenURL is the realm's token endpoint, an accepted aud of assertions.
func (r *realm) tokenURL() string { return r.issuer + "/protocol/openid-connect/token" }

// peer is an authorization server the realm issues grants for.
type peer struct {
	alias, issuer, clientID string
}

// identityProvider is a trusted issuer of JWT authorization grants.
type identityProvider struct {
	alias, issuer, jwksURL, caFile string
	userClaim                      string
	maxLifetime, skew              time.Duration
	types                          []string              // normalized typ values
	users                          map[string]*principal // userClaim value -> user
}

const (
	typeJWT   = "JWT"
	typeIDJAG = "oauth-id-jag+jwt"
	// maxAssertionLifetime caps grants issued and accepted, as Keycloak's
	// default "Max allowed assertion expiration".
	maxAssertionLifetime = 300 * time.Second
)

// normalizeTyp is a typ header value as compared: lower case, without the
// optional "application/" prefix (RFC 7515 section 4.1.9).
func normalizeTyp(t string) string {
	t = strings.ToLower(t)
	return strings.TrimPrefix(t, "application/")
}

func (r *realm) add(p *principal) {
	r.byName[p.username] = p
	r.bySubject[p.subject] = p
}

// principal is a user, or a confidential client's service account.
type principal struct {
	subject, username, password string // password "" never logs in
	given, family               string
	groups                      []string
	roles                       map[string][]string // clientId -> roles
}

// claims are the private claims of an access token for p, with the roles of
// the given clients only.
func (p *principal) claims(azp string, scopes, clients []string) map[string]any {
	c := map[string]any{
		"typ":                "Bearer",
		"azp":                azp,
		"scope":              strings.Join(scopes, " "),
		"preferred_username": p.username,
		"groups":             append([]string{}, p.groups...),
	}
	if p.given != "" {
		c["given_name"] = p.given
	}
	if p.family != "" {
		c["family_name"] = p.family
	}
	if name := strings.TrimSpace(p.given + " " + p.family); name != "" {
		c["name"] = name
	}
	access := map[string]any{}
	for _, id := range clients {
		if roles := p.roles[id]; len(roles) > 0 {
			access[id] = map[string]any{"roles": roles}
		}
	}
	if len(access) > 0 {
		c["resource_access"] = access
	}
	return c
}

// roleClients are the clients p has roles in, sorted.
func (p *principal) roleClients() []string {
	var ids []string
	for id, roles := range p.roles {
		if len(roles) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// client is a realm client; it implements op.Client.
type client struct {
	id, secret     string
	public         bool
	keys           []crypto.PublicKey // private_key_jwt instead of a secret
	exchangeTo     []string
	grantPeers     []string // peers it may ask authorization grants for
	grantIdPs      []string // identity providers whose grants it may present
	grantAudiences []string // audiences of its jwt-bearer tokens
}

func (c *client) confidential() bool { return !c.public && (c.secret != "" || c.keys != nil) }

func (c *client) GetID() string                        { return c.id }
func (c *client) RedirectURIs() []string               { return nil }
func (c *client) PostLogoutRedirectURIs() []string     { return nil }
func (c *client) ApplicationType() op.ApplicationType  { return op.ApplicationTypeWeb }
func (c *client) ResponseTypes() []oidc.ResponseType   { return nil }
func (c *client) LoginURL(string) string               { return "" }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *client) IDTokenLifetime() time.Duration       { return 5 * time.Minute }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(string) bool           { return true }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }

func (c *client) AuthMethod() oidc.AuthMethod {
	switch {
	case c.public:
		return oidc.AuthMethodNone
	case c.keys != nil:
		return oidc.AuthMethodPrivateKeyJWT
	}
	return oidc.AuthMethodBasic
}

func (c *client) GrantTypes() []oidc.GrantType {
	switch {
	case c.public:
		return []oidc.GrantType{grantPassword}
	case !c.confidential():
		return nil // bearer-only
	}
	grants := []oidc.GrantType{grantPassword, oidc.GrantTypeClientCredentials}
	if len(c.exchangeTo) > 0 || len(c.grantPeers) > 0 {
		grants = append(grants, oidc.GrantTypeTokenExchange)
	}
	if len(c.grantIdPs) > 0 {
		grants = append(grants, oidc.GrantTypeBearer)
	}
	return grants
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// tokenRequest is a password or client_credentials request; it implements
// op.TokenRequest.
type tokenRequest struct {
	principal *principal
	audience  []string
	scopes    []string
	clientID  string
	roles     []string // clients whose roles the token carries
}

func (t *tokenRequest) GetSubject() string    { return t.principal.subject }
func (t *tokenRequest) GetAudience() []string { return t.audience }
func (t *tokenRequest) GetScopes() []string   { return t.scopes }

// uuidFrom derives a stable UUID (version 8, name-based) from name.
func uuidFrom(name string) string {
	sum := sha256.Sum256([]byte(name))
	return formatUUID([16]byte(sum[:16]), 8)
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	return formatUUID(b, 4)
}

func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
