package devidp

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"
)

// Config is one realm: its clients, its users and where the provider is reached.
type Config struct {
	// Realm names the realm; the issuer is BaseURL + "/realms/" + Realm. "" means "mcp".
	Realm string `yaml:"realm" json:"realm"`
	// BaseURL is the scheme, host and port clients reach the provider at, such as
	// "http://127.0.0.1:8180", with no path. Required by New; Listen fills it in.
	BaseURL string `yaml:"baseURL" json:"baseURL"`
	// TokenLifetime is the lifetime of every access token; 0 means 300 s. Times
	// come from the wall clock, which zitadel's op reads itself.
	TokenLifetime time.Duration `yaml:"tokenLifetime" json:"tokenLifetime"`
	// DefaultAudiences are clients added to the aud of every password-login token,
	// as a Keycloak audience mapper adds them. The gateway client belongs here so
	// that it may exchange users' tokens.
	DefaultAudiences []string `yaml:"defaultAudiences" json:"defaultAudiences"`
	// Clients are the realm's clients.
	Clients []Client `yaml:"clients" json:"clients"`
	// Users are the realm's users.
	Users []User `yaml:"users" json:"users"`

	// GrantLifetime is the lifetime of the JWT authorization grants the realm
	// issues for its peers; 0 means 60 s. At most 300 s, the longest
	// assertion Keycloak accepts by default.
	GrantLifetime time.Duration `yaml:"grantLifetime" json:"grantLifetime"`
	// Peers are authorization servers of other trust domains this realm
	// issues JWT authorization grants for (identity chaining: RFC 8693 token
	// exchange with requested_token_type jwt or id-jag and the peer's issuer
	// as audience or resource). Only clients listing a peer in
	// AuthorizationGrants get grants for it.
	Peers []Peer `yaml:"peers" json:"peers"`
	// IdentityProviders are the issuers whose JWT authorization grants the
	// realm accepts with the RFC 7523 jwt-bearer grant, as Keycloak's
	// identity providers with JWT Authorization Grant enabled.
	IdentityProviders []IdentityProvider `yaml:"identityProviders" json:"identityProviders"`
}

// Peer is an authorization server the realm issues JWT authorization grants
// for. Exactly one of Issuer and Realm is set.
type Peer struct {
	// Alias names the peer in Client.AuthorizationGrants.
	Alias string `yaml:"alias" json:"alias"`
	// Issuer is the peer's issuer URL: the grant's aud, and the audience or
	// resource a client names to ask for the grant.
	Issuer string `yaml:"issuer" json:"issuer"`
	// Realm names a realm served at this realm's BaseURL instead of Issuer.
	Realm string `yaml:"realm" json:"realm"`
	// ClientID is the requesting client's clientId at the peer, the client_id
	// claim of ID-JAG grants; "" means the requester's own clientId.
	ClientID string `yaml:"clientId" json:"clientId"`
}

// IdentityProvider is a trusted issuer of JWT authorization grants. Exactly
// one of Issuer and Realm is set.
type IdentityProvider struct {
	// Alias names the provider in Client.JWTAuthorizationGrant and
	// User.FederatedIdentities.
	Alias string `yaml:"alias" json:"alias"`
	// Issuer is the iss every grant from this provider carries.
	Issuer string `yaml:"issuer" json:"issuer"`
	// Realm names a realm served at this realm's BaseURL instead of Issuer.
	Realm string `yaml:"realm" json:"realm"`
	// JWKSURL is where the provider's signing keys are fetched; "" means
	// Issuer + "/protocol/openid-connect/certs", Keycloak's path.
	JWKSURL string `yaml:"jwksURL" json:"jwksURL"`
	// CAFile is a PEM bundle trusted, besides the system roots and the
	// serving CA of this provider, when fetching JWKSURL. LoadConfig resolves
	// a relative path against the realm file's folder.
	CAFile string `yaml:"caFile" json:"caFile"`
	// UserClaim is the grant's claim that names the user: "sub" (the
	// default, as Keycloak), "preferred_username" or "email". Its value is
	// looked up in the users' FederatedIdentities for this alias.
	UserClaim string `yaml:"userClaim" json:"userClaim"`
	// MaxAssertionLifetime bounds how far in the future a grant's exp may
	// be; 0 means 300 s (Keycloak's default).
	MaxAssertionLifetime time.Duration `yaml:"maxAssertionLifetime" json:"maxAssertionLifetime"`
	// AllowedClockSkew is tolerated on exp, nbf and iat; 0 means none.
	AllowedClockSkew time.Duration `yaml:"allowedClockSkew" json:"allowedClockSkew"`
	// AssertionTypes are the JOSE typ header values accepted (RFC 8725
	// explicit typing; compared case-insensitively, "application/"
	// optional); empty means "JWT" and "oauth-id-jag+jwt".
	AssertionTypes []string `yaml:"assertionTypes" json:"assertionTypes"`
}

// Client is an OAuth client. With Public it is a public client (password logins
// only); with Secret or SecretFile a confidential one; with neither a bearer-only
// resource server that may be an audience but never asks for a token.
type Client struct {
	// ID is the clientId, for MCP servers their "namespace/name".
	ID string `yaml:"clientId" json:"clientId"`
	// Secret is the client secret of a confidential client.
	Secret string `yaml:"secret" json:"secret"`
	// SecretFile holds the secret instead (surrounding space trimmed). LoadConfig
	// resolves a relative path against the realm file's folder.
	SecretFile string `yaml:"secretFile" json:"secretFile"`
	// Public marks a public client: no secret, password grant only.
	Public bool `yaml:"public" json:"public"`
	// TokenExchange lists the clients this confidential client may exchange
	// tokens to (the audience parameter). Empty: no token exchange.
	TokenExchange []string `yaml:"tokenExchange" json:"tokenExchange"`
	// JWKS is a JSON Web Key Set (JSON text) of the client's public keys: the
	// client authenticates with private_key_jwt (an RFC 7523 client
	// assertion) instead of a secret.
	JWKS string `yaml:"jwks" json:"jwks"`
	// JWKSFile holds JWKS instead. LoadConfig resolves a relative path
	// against the realm file's folder.
	JWKSFile string `yaml:"jwksFile" json:"jwksFile"`
	// AuthorizationGrants lists the peers (Peer.Alias) this confidential
	// client may ask JWT authorization grants for.
	AuthorizationGrants []string `yaml:"authorizationGrants" json:"authorizationGrants"`
	// JWTAuthorizationGrant lists the identity providers
	// (IdentityProvider.Alias) whose grants this confidential client may
	// present with the jwt-bearer grant. Empty: no jwt-bearer grant.
	JWTAuthorizationGrant []string `yaml:"jwtAuthorizationGrant" json:"jwtAuthorizationGrant"`
	// GrantAudiences are the clients a jwt-bearer request of this client may
	// name with audience or resource; the first is the aud when it names
	// none. Empty: the aud is the client itself.
	GrantAudiences []string `yaml:"grantAudiences" json:"grantAudiences"`
}

// User is a realm user.
type User struct {
	// Username is the login name, also the preferred_username claim.
	Username string `yaml:"username" json:"username"`
	// Password is the user's password (dev realms only).
	Password string `yaml:"password" json:"password"`
	// Subject is the sub claim; "" means a UUID derived from realm and username,
	// stable across restarts.
	Subject string `yaml:"sub" json:"sub"`
	// FirstName and LastName fill given_name, family_name and name.
	FirstName string `yaml:"firstName" json:"firstName"`
	LastName  string `yaml:"lastName" json:"lastName"`
	// Groups fill the groups claim.
	Groups []string `yaml:"groups" json:"groups"`
	// ClientRoles maps a clientId to the user's roles in that client
	// (resource_access.<client>.roles).
	ClientRoles map[string][]string `yaml:"clientRoles" json:"clientRoles"`
	// FederatedIdentities links the user to identity providers: alias -> the
	// value of that provider's UserClaim in its grants (Keycloak's
	// federated identity link).
	FederatedIdentities map[string]string `yaml:"federatedIdentities" json:"federatedIdentities"`
}

// LoadConfig reads a realm file (YAML, unknown keys are errors) and resolves
// relative SecretFile paths against the file's folder.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("devidp: load config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("devidp: load config %s: %w", path, err)
	}
	resolve := func(f *string) {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(filepath.Dir(path), *f)
		}
	}
	for i := range c.Clients {
		resolve(&c.Clients[i].SecretFile)
		resolve(&c.Clients[i].JWKSFile)
	}
	for i := range c.IdentityProviders {
		resolve(&c.IdentityProviders[i].CAFile)
	}
	return c, nil
}

var realmName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// compile validates c and builds the realm's lookup tables.
func compile(c Config) (*realm, error) {
	r := &realm{
		name:      c.Realm,
		lifetime:  c.TokenLifetime,
		clients:   map[string]*client{},
		byName:    map[string]*principal{},
		bySubject: map[string]*principal{},
		defaults:  slices.Clone(c.DefaultAudiences),
	}
	if r.name == "" {
		r.name = "mcp"
	}
	if !realmName.MatchString(r.name) {
		return nil, fmt.Errorf("invalid realm name %q", r.name)
	}
	if r.lifetime == 0 {
		r.lifetime = 300 * time.Second
	}
	if r.lifetime < 0 {
		return nil, errors.New("negative tokenLifetime")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("baseURL %q: want scheme://host:port", c.BaseURL)
	}
	base := u.Scheme + "://" + u.Host
	r.issuer = base + "/realms/" + r.name
	r.grantLifetime = c.GrantLifetime
	switch {
	case r.grantLifetime == 0:
		r.grantLifetime = 60 * time.Second
	case r.grantLifetime < 0 || r.grantLifetime > maxAssertionLifetime:
		return nil, fmt.Errorf("grantLifetime %v: want (0, %v]", c.GrantLifetime, maxAssertionLifetime)
	}
	if err := r.compileTrust(c, base); err != nil {
		return nil, err
	}

	for _, cc := range c.Clients {
		cl, err := compileClient(cc)
		if err != nil {
			return nil, err
		}
		if _, dup := r.clients[cl.id]; dup {
			return nil, fmt.Errorf("client %q: duplicate", cl.id)
		}
		r.clients[cl.id] = cl
	}
	for _, cl := range r.clients {
		for _, t := range cl.exchangeTo {
			if r.clients[t] == nil {
				return nil, fmt.Errorf("client %q: tokenExchange target %q is not a client", cl.id, t)
			}
		}
		for _, a := range cl.grantPeers {
			if r.peerByAlias(a) == nil {
				return nil, fmt.Errorf("client %q: authorizationGrants: %q is not a peer", cl.id, a)
			}
		}
		for _, a := range cl.grantIdPs {
			if r.idps[a] == nil {
				return nil, fmt.Errorf("client %q: jwtAuthorizationGrant: %q is not an identity provider", cl.id, a)
			}
		}
		for _, a := range cl.grantAudiences {
			if r.clients[a] == nil {
				return nil, fmt.Errorf("client %q: grantAudiences: %q is not a client", cl.id, a)
			}
		}
		if cl.confidential() {
			// Like Keycloak's service accounts: the client_credentials principal.
			r.add(&principal{subject: uuidFrom(r.name + "/service-account/" + cl.id), username: "service-account-" + cl.id})
		}
	}
	for _, a := range r.defaults {
		if r.clients[a] == nil {
			return nil, fmt.Errorf("defaultAudiences: %q is not a client", a)
		}
	}
	for _, cu := range c.Users {
		if cu.Username == "" || cu.Password == "" {
			return nil, errors.New("user: username and password are required")
		}
		if strings.HasPrefix(cu.Username, "service-account-") {
			return nil, fmt.Errorf("user %q: reserved name", cu.Username)
		}
		p := &principal{
			subject: cu.Subject, username: cu.Username, password: cu.Password,
			given: cu.FirstName, family: cu.LastName, groups: slices.Clone(cu.Groups), roles: map[string][]string{},
		}
		for id, roles := range cu.ClientRoles {
			p.roles[id] = slices.Clone(roles)
		}
		if p.subject == "" {
			p.subject = uuidFrom(r.name + "/user/" + cu.Username)
		}
		for id := range p.roles {
			if r.clients[id] == nil {
				return nil, fmt.Errorf("user %q: clientRoles: %q is not a client", cu.Username, id)
			}
		}
		for alias, v := range cu.FederatedIdentities {
			idp := r.idps[alias]
			switch {
			case idp == nil:
				return nil, fmt.Errorf("user %q: federatedIdentities: %q is not an identity provider", cu.Username, alias)
			case v == "":
				return nil, fmt.Errorf("user %q: federatedIdentities: empty value for %q", cu.Username, alias)
			case idp.users[v] != nil:
				return nil, fmt.Errorf("user %q: federatedIdentities: %s %q is linked to user %q already", cu.Username, alias, v, idp.users[v].username)
			}
			idp.users[v] = p
		}
		if r.byName[p.username] != nil || r.bySubject[p.subject] != nil {
			return nil, fmt.Errorf("user %q: duplicate username or sub", cu.Username)
		}
		r.add(p)
	}
	return r, nil
}

func compileClient(cc Client) (*client, error) {
	cl := &client{id: cc.ID, public: cc.Public, secret: cc.Secret, exchangeTo: slices.Clone(cc.TokenExchange),
		grantPeers: slices.Clone(cc.AuthorizationGrants), grantIdPs: slices.Clone(cc.JWTAuthorizationGrant), grantAudiences: slices.Clone(cc.GrantAudiences)}
	if cl.id == "" {
		return nil, errors.New("client: clientId is required")
	}
	if cc.JWKS != "" || cc.JWKSFile != "" {
		keys, err := loadJWKS(cc.JWKS, cc.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", cl.id, err)
		}
		cl.keys = keys
	}
	if cl.keys != nil && (cc.Secret != "" || cc.SecretFile != "" || cc.Public) {
		return nil, fmt.Errorf("client %q: jwks excludes secret, secretFile and public", cl.id)
	}
	if cc.SecretFile != "" {
		if cl.secret != "" {
			return nil, fmt.Errorf("client %q: secret and secretFile are exclusive", cl.id)
		}
		b, err := os.ReadFile(cc.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", cl.id, err)
		}
		if cl.secret = strings.TrimSpace(string(b)); cl.secret == "" {
			return nil, fmt.Errorf("client %q: empty secretFile", cl.id)
		}
	}
	if cl.public && cl.secret != "" {
		return nil, fmt.Errorf("client %q: a public client has no secret", cl.id)
	}
	if len(cl.exchangeTo) > 0 && !cl.confidential() {
		return nil, fmt.Errorf("client %q: only confidential clients may exchange tokens", cl.id)
	}
	if slices.Contains(cl.exchangeTo, "") {
		return nil, fmt.Errorf("client %q: empty tokenExchange target", cl.id)
	}
	if (len(cl.grantPeers) > 0 || len(cl.grantIdPs) > 0) && !cl.confidential() {
		return nil, fmt.Errorf("client %q: only confidential clients may use authorization grants", cl.id)
	}
	if len(cl.grantAudiences) > 0 && len(cl.grantIdPs) == 0 {
		return nil, fmt.Errorf("client %q: grantAudiences without jwtAuthorizationGrant", cl.id)
	}
	return cl, nil
}

// loadJWKS reads a client's public keys, inline or from a file; private keys
// are reduced to their public halves.
func loadJWKS(inline, file string) ([]crypto.PublicKey, error) {
	if inline != "" && file != "" {
		return nil, errors.New("jwks and jwksFile are exclusive")
	}
	b := []byte(inline)
	if file != "" {
		var err error
		if b, err = os.ReadFile(file); err != nil {
			return nil, err
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("jwks: no keys")
	}
	keys := make([]crypto.PublicKey, 0, len(set.Keys))
	for _, k := range set.Keys {
		if !k.Valid() {
			return nil, fmt.Errorf("jwks: invalid key %q", k.KeyID)
		}
		keys = append(keys, k.Public().Key)
	}
	return keys, nil
}

// compileTrust builds the realm's peers and identity providers; base is the
// scheme://host the realm is served at, for peers named by realm.
func (r *realm) compileTrust(c Config, base string) error {
	issuer := func(what, alias, iss, realm string) (string, error) {
		switch {
		case alias == "":
			return "", fmt.Errorf("%s: alias is required", what)
		case (iss == "") == (realm == ""):
			return "", fmt.Errorf("%s %q: exactly one of issuer and realm", what, alias)
		case realm != "":
			if !realmName.MatchString(realm) {
				return "", fmt.Errorf("%s %q: invalid realm name %q", what, alias, realm)
			}
			return base + "/realms/" + realm, nil
		}
		u, err := url.Parse(iss)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("%s %q: issuer %q: want an http(s) URL", what, alias, iss)
		}
		return strings.TrimSuffix(iss, "/"), nil
	}
	for _, cp := range c.Peers {
		iss, err := issuer("peer", cp.Alias, cp.Issuer, cp.Realm)
		if err != nil {
			return err
		}
		if r.peerByAlias(cp.Alias) != nil || r.peerByIssuer(iss) != nil {
			return fmt.Errorf("peer %q: duplicate alias or issuer", cp.Alias)
		}
		if iss == r.issuer {
			return fmt.Errorf("peer %q: the realm itself", cp.Alias)
		}
		r.peers = append(r.peers, &peer{alias: cp.Alias, issuer: iss, clientID: cp.ClientID})
	}
	r.idps = map[string]*identityProvider{}
	for _, ci := range c.IdentityProviders {
		iss, err := issuer("identity provider", ci.Alias, ci.Issuer, ci.Realm)
		if err != nil {
			return err
		}
		idp := &identityProvider{
			alias: ci.Alias, issuer: iss, jwksURL: ci.JWKSURL, caFile: ci.CAFile, userClaim: ci.UserClaim,
			maxLifetime: ci.MaxAssertionLifetime, skew: ci.AllowedClockSkew, users: map[string]*principal{},
		}
		if r.idps[idp.alias] != nil || slices.ContainsFunc(slices.Collect(maps.Values(r.idps)), func(o *identityProvider) bool { return o.issuer == iss }) {
			return fmt.Errorf("identity provider %q: duplicate alias or issuer", idp.alias)
		}
		if iss == r.issuer {
			return fmt.Errorf("identity provider %q: the realm itself", idp.alias)
		}
		if idp.jwksURL == "" {
			idp.jwksURL = iss + "/protocol/openid-connect/certs"
		} else if u, err := url.Parse(idp.jwksURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("identity provider %q: jwksURL %q: want an http(s) URL", idp.alias, idp.jwksURL)
		}
		switch idp.userClaim {
		case "":
			idp.userClaim = "sub"
		case "sub", "preferred_username", "email":
		default:
			return fmt.Errorf("identity provider %q: userClaim %q: want sub, preferred_username or email", idp.alias, idp.userClaim)
		}
		switch {
		case idp.maxLifetime == 0:
			idp.maxLifetime = maxAssertionLifetime
		case idp.maxLifetime < 0:
			return fmt.Errorf("identity provider %q: negative maxAssertionLifetime", idp.alias)
		}
		if idp.skew < 0 {
			return fmt.Errorf("identity provider %q: negative allowedClockSkew", idp.alias)
		}
		types := ci.AssertionTypes
		if len(types) == 0 {
			types = []string{typeJWT, typeIDJAG}
		}
		for _, t := range types {
			if t == "" {
				return fmt.Errorf("identity provider %q: empty assertion type", idp.alias)
			}
			idp.types = append(idp.types, normalizeTyp(t))
		}
		r.idps[idp.alias] = idp
	}
	return nil
}
