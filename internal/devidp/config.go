package devidp

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

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
	for i := range c.Clients {
		if f := c.Clients[i].SecretFile; f != "" && !filepath.IsAbs(f) {
			c.Clients[i].SecretFile = filepath.Join(filepath.Dir(path), f)
		}
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
	r.issuer = u.Scheme + "://" + u.Host + "/realms/" + r.name

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
		if r.byName[p.username] != nil || r.bySubject[p.subject] != nil {
			return nil, fmt.Errorf("user %q: duplicate username or sub", cu.Username)
		}
		r.add(p)
	}
	return r, nil
}

func compileClient(cc Client) (*client, error) {
	cl := &client{id: cc.ID, public: cc.Public, secret: cc.Secret, exchangeTo: slices.Clone(cc.TokenExchange)}
	if cl.id == "" {
		return nil, errors.New("client: clientId is required")
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
	return cl, nil
}
