package exchange

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/internal/tlsclient"
)

// Grants a Step may make.
const (
	// GrantTokenExchange is RFC 8693 token exchange.
	GrantTokenExchange = "token-exchange"
	// GrantJWTBearer is the RFC 7523 JWT bearer authorization grant: the
	// previous step's token is the assertion.
	GrantJWTBearer = "jwt-bearer"
)

// DefaultProfile names the profile of Config's top-level keys.
const DefaultProfile = "default"

// Profile is a named way to get the token a server takes: a chain of
// token-endpoint steps whose final token is checked against Expect, or a
// static credential. Exactly one of Steps and Static is set.
type Profile struct {
	// Steps are made in order, each against its own token endpoint: the
	// first step's input is the caller's token, each next step's input is
	// the previous step's output, and the last step's output goes upstream.
	Steps []Step `yaml:"steps,omitempty" json:"steps,omitempty"`
	// Expect pins what the final token must be; required with Steps. The
	// token is checked against it alone, never against the callers'
	// issuers, and Expect's issuer is never trusted for callers.
	Expect *Expect `yaml:"expect,omitempty" json:"expect,omitempty"`
	// Static sends a fixed credential read from a file instead (an API key:
	// Kuadrant's credentialRef).
	Static *Static `yaml:"static,omitempty" json:"static,omitempty"`
	// CAFile is a PEM bundle trusted, besides the system roots, for the
	// profile's token endpoints and for Expect's discovery and key set.
	CAFile string `yaml:"caFile,omitempty" json:"caFile,omitempty"`
}

// Step is one call to a token endpoint.
type Step struct {
	// Grant is GrantTokenExchange (the default) or GrantJWTBearer.
	Grant string `yaml:"grant,omitempty" json:"grant,omitempty"`
	// TokenURL is the token endpoint; required.
	TokenURL string `yaml:"tokenURL" json:"tokenURL"`
	// ClientID identifies the gateway at this endpoint; required.
	ClientID string `yaml:"clientID" json:"clientID"`
	// ClientSecretFile, ClientSecretEnv, PrivateKeyFile and
	// FederatedTokenFile are the client's credential: exactly one is set.
	// A secret is sent as AuthStyle says (client_secret_basic or
	// client_secret_post).
	ClientSecretFile string `yaml:"clientSecretFile,omitempty" json:"clientSecretFile,omitempty"`
	// ClientSecretEnv is the environment variable holding the secret.
	ClientSecretEnv string `yaml:"clientSecretEnv,omitempty" json:"clientSecretEnv,omitempty"`
	// AuthStyle is "basic" (client_secret_basic, the default) or "post"
	// (client_secret_post); with a secret only.
	AuthStyle string `yaml:"authStyle,omitempty" json:"authStyle,omitempty"`
	// PrivateKeyFile is a PEM private key (PKCS #8, PKCS #1 RSA or SEC 1
	// EC): the client authenticates with private_key_jwt (RFC 7523 section
	// 2.2), a fresh assertion per call.
	PrivateKeyFile string `yaml:"privateKeyFile,omitempty" json:"privateKeyFile,omitempty"`
	// KeyID is the kid of PrivateKeyFile's assertions; "" sends none.
	KeyID string `yaml:"keyID,omitempty" json:"keyID,omitempty"`
	// Algorithm signs PrivateKeyFile's assertions; "" means RS256 for RSA,
	// ES256/ES384/ES512 for EC P-256/384/521, EdDSA for Ed25519.
	Algorithm string `yaml:"algorithm,omitempty" json:"algorithm,omitempty"`
	// AssertionAudience is the aud of PrivateKeyFile's assertions; ""
	// means TokenURL.
	AssertionAudience string `yaml:"assertionAudience,omitempty" json:"assertionAudience,omitempty"`
	// FederatedTokenFile holds a JWT issued to the gateway by another
	// issuer (a projected Kubernetes service-account token), sent as the
	// client_assertion (type jwt-bearer). It is read again on every call,
	// so a rotated token is used at once.
	FederatedTokenFile string `yaml:"federatedTokenFile,omitempty" json:"federatedTokenFile,omitempty"`
	// Audience is the audience parameter; "" in a token-exchange step
	// means the server's audience (registry's servers[].audience).
	Audience string `yaml:"audience,omitempty" json:"audience,omitempty"`
	// Resource is the RFC 8707 resource parameter; "" sends none.
	Resource string `yaml:"resource,omitempty" json:"resource,omitempty"`
	// Scopes are the scope parameter; empty sends none.
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	// RequestedTokenType is the requested_token_type of a token-exchange
	// step: TokenTypeAccessToken, TokenTypeJWT or TokenTypeIDJAG. ""
	// means TokenTypeJWT before a jwt-bearer step, else
	// TokenTypeAccessToken. (Keycloak's Standard Token Exchange answers a
	// grant for a peer as an access token: set TokenTypeAccessToken.)
	RequestedTokenType string `yaml:"requestedTokenType,omitempty" json:"requestedTokenType,omitempty"`
	// ActorTokenFile holds an actor token (RFC 8693 actor_token), read on
	// every call; token-exchange steps only.
	ActorTokenFile string `yaml:"actorTokenFile,omitempty" json:"actorTokenFile,omitempty"`
	// ActorTokenType is the actor_token_type; "" means TokenTypeJWT.
	ActorTokenType string `yaml:"actorTokenType,omitempty" json:"actorTokenType,omitempty"`
}

// Expect is what a profile's final token must be.
type Expect struct {
	// Issuer is its exact iss; its keys come from Issuer's OpenID
	// discovery unless JWKSURL is set. Required.
	Issuer string `yaml:"issuer" json:"issuer"`
	// JWKSURL is the issuer's key set; set, no discovery is made.
	JWKSURL string `yaml:"jwksURL,omitempty" json:"jwksURL,omitempty"`
	// Audience must be in its aud. Required.
	Audience string `yaml:"audience" json:"audience"`
	// Algorithms are accepted; empty means identity.DefaultAlgorithms.
	Algorithms []string `yaml:"algorithms,omitempty" json:"algorithms,omitempty"`
}

// Static is a credential read from a file and sent as the upstream's
// Authorization: "<scheme> <secret>".
type Static struct {
	// SecretFile holds the secret (a trailing newline is dropped). It is
	// read again when it changes (a Kubernetes Secret volume update).
	SecretFile string `yaml:"secretFile" json:"secretFile"`
	// Scheme is the Authorization scheme; "" means Bearer.
	Scheme string `yaml:"scheme,omitempty" json:"scheme,omitempty"`
}

// TokenTypeIDJAG is the Identity Assertion JWT Authorization Grant type
// (draft-ietf-oauth-identity-assertion-authz-grant).
const TokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag"

var profileName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// schemeChars is an RFC 9110 token, the syntax of an auth-scheme.
var schemeChars = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// validate reports the problems of a profile, paths relative to it.
func (p Profile) validate() error {
	var errs []error
	switch {
	case p.Static != nil && (len(p.Steps) > 0 || p.Expect != nil):
		errs = append(errs, field.Errorf("static", "a static profile has no steps or expect"))
	case p.Static != nil:
		if _, err := readFile(p.Static.SecretFile); err != nil {
			errs = append(errs, field.Under("static.secretFile", err))
		}
		if p.Static.Scheme != "" && !schemeChars.MatchString(p.Static.Scheme) {
			errs = append(errs, field.Errorf("static.scheme", "%q is not an HTTP auth-scheme", p.Static.Scheme))
		}
	case len(p.Steps) == 0:
		errs = append(errs, field.Errorf("steps", "a profile needs steps (with expect) or static"))
	case p.Expect == nil:
		errs = append(errs, field.Errorf("expect", "required: the issuer and audience of the final token"))
	}
	for i, s := range p.Steps {
		errs = append(errs, field.Under(fmt.Sprintf("steps[%d]", i), s.validate(i, p.Steps)))
	}
	if e := p.Expect; e != nil {
		if err := httpURL(e.Issuer); err != nil {
			errs = append(errs, field.Under("expect.issuer", err))
		}
		if e.JWKSURL != "" {
			if err := httpURL(e.JWKSURL); err != nil {
				errs = append(errs, field.Under("expect.jwksURL", err))
			}
		}
		if e.Audience == "" {
			errs = append(errs, field.Errorf("expect.audience", "required"))
		}
	}
	if p.CAFile != "" {
		if _, err := tlsclient.ReadPool(nil, p.CAFile); err != nil {
			errs = append(errs, field.Under("caFile", err))
		}
	}
	return errors.Join(errs...)
}

// validate reports the problems of steps[i], paths relative to it.
func (s Step) validate(i int, steps []Step) error {
	var errs []error
	switch s.Grant {
	case "", GrantTokenExchange:
		switch s.RequestedTokenType {
		case "", TokenTypeAccessToken, TokenTypeJWT, TokenTypeIDJAG:
		default:
			errs = append(errs, field.Errorf("requestedTokenType", "%q: want %s, %s or %s", s.RequestedTokenType, TokenTypeAccessToken, TokenTypeJWT, TokenTypeIDJAG))
		}
	case GrantJWTBearer:
		if i == 0 {
			errs = append(errs, field.Errorf("grant", "jwt-bearer needs an assertion: it cannot be the first step"))
		}
		for _, f := range []struct{ key, v string }{{"requestedTokenType", s.RequestedTokenType}, {"actorTokenFile", s.ActorTokenFile}, {"actorTokenType", s.ActorTokenType}} {
			if f.v != "" {
				errs = append(errs, field.Errorf(f.key, "token-exchange only"))
			}
		}
	default:
		errs = append(errs, field.Errorf("grant", "%q: want %s or %s", s.Grant, GrantTokenExchange, GrantJWTBearer))
	}
	if err := httpURL(s.TokenURL); err != nil {
		errs = append(errs, field.Under("tokenURL", err))
	}
	if s.ClientID == "" {
		errs = append(errs, field.Errorf("clientID", "required"))
	}
	if _, err := s.credential(); err != nil {
		errs = append(errs, err)
	}
	if s.ActorTokenFile == "" && s.ActorTokenType != "" {
		errs = append(errs, field.Errorf("actorTokenType", "needs actorTokenFile"))
	}
	if s.ActorTokenFile != "" {
		if _, err := readFile(s.ActorTokenFile); err != nil {
			errs = append(errs, field.Under("actorTokenFile", err))
		}
	}
	return errors.Join(errs...)
}

// requested is steps[i]'s requested_token_type with its default.
func (s Step) requested(steps []Step, i int) string {
	switch {
	case s.RequestedTokenType != "":
		return s.RequestedTokenType
	case i+1 < len(steps) && steps[i+1].Grant == GrantJWTBearer:
		return TokenTypeJWT
	}
	return TokenTypeAccessToken
}

// httpURL checks an absolute http(s) URL without credentials; the URL is
// never quoted.
func httpURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("required")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return errors.New("must be an absolute http(s) URL")
	case u.User != nil:
		return errors.New("must not carry credentials")
	}
	return nil
}

// validateProfiles reports the problems of every profile, paths under
// "profiles", in name order.
func validateProfiles(ps map[string]Profile) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(ps)) {
		at := "profiles." + name
		switch {
		case name == DefaultProfile:
			errs = append(errs, field.Errorf(at, "%q names the top-level exchange keys: pick another name", name))
			continue
		case !profileName.MatchString(name) || len(name) > 63:
			errs = append(errs, field.Errorf(at, "%q must be a DNS-1123 label", name))
			continue
		}
		errs = append(errs, field.Under(at, ps[name].validate()))
	}
	return errors.Join(errs...)
}

// trimSecret drops a trailing newline.
func trimSecret(b []byte) string { return strings.TrimRight(string(b), "\r\n") }
