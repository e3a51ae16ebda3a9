// Package devidp is a Keycloak-shaped OpenID Connect provider for development and tests only.
//
// It stands in for Keycloak where Keycloak cannot run: the issuer is
// BASE/realms/<realm>, with discovery, the token endpoint
// (/protocol/openid-connect/token), the JWKS (/protocol/openid-connect/certs)
// and userinfo at Keycloak's paths; RS256 JWT access tokens carry
// preferred_username, name, groups and resource_access.<client>.roles. It
// offers the password, client_credentials and Standard Token Exchange
// (RFC 8693, Keycloak 26.2 rules) grants, and key rotation on demand. Users
// and secrets come in clear from a realm file: it MUST NOT guard anything
// real. It is built on github.com/zitadel/oidc/v3/pkg/op.
package devidp

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcp-authz/mcp-authz/internal/devidp/jwtcheck"
)

const (
	grantPassword = oidc.GrantType("password")
	maxBodyBytes  = 64 << 10
)

// Provider serves one realm.
type Provider struct {
	realm   *realm
	store   *storage
	handler http.Handler
	replay  *jwtcheck.ReplayCache
	idpKeys map[string]gooidc.KeySet // identity provider alias -> its keys
	now     func() time.Time
}

// Deps are what a server of several realms (package realms) shares with
// each; the zero value serves one realm on its own.
type Deps struct {
	// Client fetches identity providers' keys; nil means one trusting the
	// system roots and each provider's CAFile.
	Client *http.Client
	// Keys keeps the realm's signing keys across restarts; nil keeps them in
	// memory.
	Keys KeyStore
}

// KeyStore keeps realms' signing keys across restarts: RSA private JWKs,
// oldest first, none for a realm it does not hold. It holds private keys:
// development only.
type KeyStore interface {
	LoadKeys(realm string) ([]jose.JSONWebKey, error)
	SaveKeys(realm string, keys []jose.JSONWebKey) error
}

// New validates cfg and builds the provider; its first RSA signing key is
// fresh unless o.Keys holds the realm's keys.
func New(cfg Config, o Deps) (*Provider, error) {
	r, err := compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	p := &Provider{realm: r, store: &storage{realm: r, persist: o.Keys}, replay: jwtcheck.NewReplayCache(maxReplayEntries), idpKeys: map[string]gooidc.KeySet{}, now: time.Now}
	if err := p.store.load(); err != nil {
		return nil, err
	}
	for alias, idp := range r.idps {
		client := o.Client
		if client == nil || idp.caFile != "" {
			if client, err = httpClient(o.Client, idp.caFile); err != nil {
				return nil, fmt.Errorf("devidp: identity provider %q: %w", alias, err)
			}
		}
		p.idpKeys[alias] = gooidc.NewRemoteKeySet(gooidc.ClientContext(context.Background(), client), idp.jwksURL)
	}
	opc := &op.Config{AuthMethodPost: true, AuthMethodPrivateKeyJWT: true, SupportedClaims: append(slices.Clip(supportedClaims), "groups", "resource_access", "typ")}
	rand.Read(opc.CryptoKey[:])
	provider, err := op.NewProvider(opc, p.store, op.StaticIssuer(r.issuer), op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	endpoints := op.Endpoints{
		Authorization: op.NewEndpoint("protocol/openid-connect/auth"),
		Token:         op.NewEndpoint("protocol/openid-connect/token"),
		Userinfo:      op.NewEndpoint("protocol/openid-connect/userinfo"),
		JwksURI:       op.NewEndpoint("protocol/openid-connect/certs"),
	}
	srv := &server{LegacyServer: op.NewLegacyServer(provider, endpoints), p: p}
	oidcHandler := http.StripPrefix("/realms/"+r.name, op.RegisterLegacyServer(srv, http.NotFound))

	mux := http.NewServeMux()
	mux.Handle("/realms/"+r.name+"/", oidcHandler)
	mux.Handle("POST /realms/"+r.name+"/protocol/openid-connect/token", p.tokenHandler(oidcHandler))
	mux.HandleFunc("/realms/"+r.name+"/protocol/openid-connect/token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	})
	mux.HandleFunc("POST /admin/realms/"+r.name+"/rotate-keys", p.rotateHandler)
	p.handler = http.MaxBytesHandler(mux, maxBodyBytes)
	return p, nil
}

// Listen listens on addr (such as "127.0.0.1:0"), sets cfg.BaseURL to
// http://<the bound address> and builds the provider; serve p.Handler() on
// the listener.
func Listen(cfg Config, addr string) (*Provider, net.Listener, error) {
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("devidp: listen: %w", err)
	}
	cfg.BaseURL = "http://" + ln.Addr().String()
	p, err := New(cfg, Deps{})
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return p, ln, nil
}

// Handler serves the realm under /realms/<realm>/ and the key rotation at
// POST /admin/realms/<realm>/rotate-keys (loopback callers only).
func (p *Provider) Handler() http.Handler { return p.handler }

// Realm is the realm's name.
func (p *Provider) Realm() string { return p.realm.name }

// Issuer is BaseURL/realms/<realm>.
func (p *Provider) Issuer() string { return p.realm.issuer }

// TokenURL is the realm's token endpoint.
func (p *Provider) TokenURL() string { return p.realm.issuer + "/protocol/openid-connect/token" }

// RotateKeys makes a new signing key: new tokens carry its kid, while the
// replaced keys (up to two) stay in the JWKS so issued tokens still verify.
func (p *Provider) RotateKeys() error {
	_, err := p.store.rotate()
	return err
}

func (p *Provider) rotateHandler(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	kid, err := p.store.rotate()
	if err != nil {
		http.Error(w, "key rotation failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"kid": kid})
}

// tokenHandler answers the grants op does not offer (password, jwt-bearer,
// token exchange for a JWT authorization grant) and hands every other to
// op. Parameters come in the form body only.
func (p *Provider) tokenHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			op.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("parameters belong in the form body, not the query string"), nil)
			return
		}
		if err := r.ParseForm(); err != nil {
			op.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("error parsing form"), nil)
			return
		}
		var grant func(*http.Request) (any, error)
		switch oidc.GrantType(r.PostForm.Get("grant_type")) {
		case grantPassword:
			grant = p.password
		case oidc.GrantTypeBearer:
			grant = p.jwtBearer
		case oidc.GrantTypeTokenExchange:
			if t := r.PostForm.Get("requested_token_type"); t == TokenTypeJWT || t == TokenTypeIDJAG {
				grant = p.authorizationGrant
			}
		}
		if grant == nil {
			next.ServeHTTP(w, r)
			return
		}
		if len(r.PostForm["grant_type"]) > 1 {
			op.WriteError(w, r, oidc.ErrInvalidRequest().WithDescription("parameter grant_type given more than once"), nil)
			return
		}
		resp, err := grant(r)
		if err != nil {
			op.WriteError(w, r, err, nil)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// password is the resource owner password credentials grant. The token's aud
// is the clients the user has roles in plus the realm's default audiences.
func (p *Provider) password(r *http.Request) (any, error) {
	c, err := p.clientFromRequest(r)
	if err != nil {
		return nil, err
	}
	if !op.ValidateGrantType(c, grantPassword) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("Client not allowed for direct access grants")
	}
	user := p.realm.byName[r.PostForm.Get("username")]
	if user == nil || user.password == "" || !equal(r.PostForm.Get("password"), user.password) {
		return nil, op.NewStatusError(oidc.ErrInvalidGrant().WithDescription("Invalid user credentials"), http.StatusUnauthorized)
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile}
	}
	roleClients := user.roleClients()
	aud := slices.Compact(slices.Sorted(slices.Values(append(slices.Clip(roleClients), p.realm.defaults...))))
	req := &tokenRequest{principal: user, audience: aud, scopes: scopes, clientID: c.id, roles: roleClients}
	return p.accessToken(r.Context(), req, c, time.Now())
}

// accessToken issues the access token of req to client c, valid for the
// realm's token lifetime from now.
func (p *Provider) accessToken(ctx context.Context, req *tokenRequest, c *client, now time.Time) (*oidc.AccessTokenResponse, error) {
	token, err := op.CreateJWT(ctx, p.realm.issuer, req, now.Add(p.realm.lifetime), newUUID(), c, p.store)
	if err != nil {
		return nil, err
	}
	return &oidc.AccessTokenResponse{
		AccessToken: token,
		TokenType:   oidc.BearerToken,
		ExpiresIn:   uint64(p.realm.lifetime.Seconds()),
		Scope:       req.scopes,
	}, nil
}

// server is op's LegacyServer with Keycloak's client authentication (basic,
// post or private_key_jwt; 401 for bad credentials) and the extension
// grants in discovery.
type server struct {
	*op.LegacyServer
	p *Provider
}

func (s *server) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	return s.p.authenticate(ctx, r.Data.ClientID, r.Data.ClientSecret, r.Data.ClientAssertion, r.Data.ClientAssertionType)
}

func (s *server) Discovery(ctx context.Context, r *op.Request[struct{}]) (*op.Response, error) {
	resp, err := s.LegacyServer.Discovery(ctx, r)
	if err != nil {
		return nil, err
	}
	if d, ok := resp.Data.(*oidc.DiscoveryConfiguration); ok {
		d.GrantTypesSupported = append(d.GrantTypesSupported, grantPassword)
		if len(s.p.realm.idps) > 0 && !slices.Contains(d.GrantTypesSupported, oidc.GrantTypeBearer) {
			d.GrantTypesSupported = append(d.GrantTypesSupported, oidc.GrantTypeBearer)
		}
	}
	return resp, nil
}

var supportedClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "jti", "azp", "scope",
	"preferred_username", "name", "given_name", "family_name",
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// httpClient trusts the system roots, the roots of base's transport (when
// base is set) and the PEM certificates of caFile.
func httpClient(base *http.Client, caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if base != nil {
		if t, ok := base.Transport.(*http.Transport); ok && t.TLSClientConfig != nil && t.TLSClientConfig.RootCAs != nil {
			pool = t.TLSClientConfig.RootCAs.Clone()
		}
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("caFile %s: no PEM certificates", caFile)
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t, Timeout: 10 * time.Second}, nil
}
