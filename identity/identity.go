// Package identity validates OIDC bearer tokens.
package identity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/mcp-authz/mcp-authz/internal/expiry"
	"github.com/mcp-authz/mcp-authz/internal/tlsclient"
)

// Errors returned by Verify, VerifyAudience and BearerToken. Each is wrapped
// with a short detail that never contains the token.
var (
	ErrMissing     = errors.New("identity: missing bearer token")
	ErrMalformed   = errors.New("identity: malformed token")
	ErrExpired     = errors.New("identity: token expired")
	ErrNotYetValid = errors.New("identity: token not yet valid")
	ErrIssuer      = errors.New("identity: issuer not accepted")
	ErrAudience    = errors.New("identity: audience not accepted")
	ErrSignature   = errors.New("identity: invalid signature")
	ErrAlgorithm   = errors.New("identity: algorithm not allowed")
	// ErrUnavailable means the issuer's discovery document or key set could
	// not be fetched: the token was not verified and must not be accepted.
	ErrUnavailable = errors.New("identity: identity provider unavailable")
)

// MaxTokenBytes is the largest token accepted, in bytes.
const MaxTokenBytes = 16 << 10

// Defaults of the zero Config.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultCacheSize          = 10000
	DefaultKeyRefreshInterval = time.Second
	DefaultKeyMaxAge          = time.Hour
	DefaultTimeout            = 5 * time.Second
)

// DefaultAlgorithms are the signature algorithms accepted when an Issuer
// lists none.
var DefaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// allowedAlgorithms are the algorithms an Issuer may list. HMAC and "none"
// are never accepted: a verifier that holds only public keys cannot check
// them, and accepting them lets a caller sign with a public key.
var allowedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Config configures a Verifier.
type Config struct {
	// Issuers are the accepted token issuers; at least one is required.
	Issuers []Issuer `yaml:"issuers" json:"issuers"`
	// Leeway is the clock skew allowed on exp and nbf; 0 means
	// DefaultLeeway (30s), a negative value means none.
	Leeway time.Duration `yaml:"leeway" json:"leeway"`
	// CacheSize bounds the verified tokens remembered so that one token's
	// signature is checked once; 0 means DefaultCacheSize, a negative
	// value disables the cache.
	CacheSize int `yaml:"cacheSize" json:"cacheSize"`
	// KeyRefreshInterval is the least time between two fetches of one
	// issuer's key set, however many tokens name keys it lacks: it bounds
	// the load that tokens with made-up key ids put on the provider. A
	// token whose key id is not cached is not refused for that: it waits
	// for a fetch that begins after it arrived (one in flight, or the
	// next one this interval allows, if that comes within its request's
	// deadline and at most 2s), so a key the provider has just published
	// is accepted on its first use. A key id that such a fetch did not
	// find is refused at once, without another fetch, for 10s. Keep it
	// short: a token may wait this long. 0 means DefaultKeyRefreshInterval
	// (1s).
	KeyRefreshInterval time.Duration `yaml:"keyRefreshInterval" json:"keyRefreshInterval"`
	// KeyMaxAge is the age past which a key set is fetched again, in the
	// background, when a token is verified with it, so that keys the
	// provider withdrew stop being trusted; 0 means DefaultKeyMaxAge (1h).
	KeyMaxAge time.Duration `yaml:"keyMaxAge" json:"keyMaxAge"`
	// Timeout bounds each discovery or key-set fetch; 0 means
	// DefaultTimeout (5s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// Deps are the Verifier's runtime dependencies: what a configuration file
// cannot say.
type Deps struct {
	// HTTPClient fetches discovery documents and key sets; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Issuer is one accepted token issuer.
type Issuer struct {
	// IssuerURL is the exact iss claim of its tokens. Unless JWKSURL is
	// set, the key-set address is discovered from
	// IssuerURL + "/.well-known/openid-configuration" on first use.
	IssuerURL string `yaml:"issuerURL" json:"issuerURL"`
	// JWKSURL is the key-set address; set, no discovery is made.
	JWKSURL string `yaml:"jwksURL" json:"jwksURL"`
	// Audiences are accepted by Verify: a token's aud must contain one of
	// them. At least one is required.
	Audiences []string `yaml:"audiences" json:"audiences"`
	// Algorithms are the accepted signature algorithms; empty means
	// DefaultAlgorithms. Allowed: RS256, RS384, RS512, PS256, PS384,
	// PS512, ES256, ES384, ES512, EdDSA.
	Algorithms []string `yaml:"algorithms" json:"algorithms"`
	// CAFile is a PEM bundle trusted, besides the system roots, for this
	// issuer's discovery and key-set fetches: a provider (Keycloak in the
	// cluster, say) whose certificate a private CA signed. Relative paths
	// are read from the configuration file's folder.
	CAFile string `yaml:"caFile,omitempty" json:"caFile,omitempty"`
}

// Identity is a verified token. The Verifier shares one Identity between
// the callers presenting the same token: it must not be modified.
type Identity struct {
	Subject  string
	Issuer   string
	Audience []string
	Expiry   time.Time
	// Claims are all the token's claims as decoded by encoding/json:
	// numbers are float64, objects map[string]any, arrays []any.
	Claims map[string]any
}

// Verifier verifies bearer tokens from the configured issuers. It is safe
// for concurrent use.
type Verifier struct {
	issuers map[string]*issuer
	leeway  time.Duration
	now     func() time.Time
	cache   *expiry.Cache[entry]
}

// New returns a Verifier. It makes no network call: each issuer's
// discovery document and key set are fetched on first use and retried
// after failures, so an identity provider that is down when the process
// starts makes requests fail with ErrUnavailable until it is back.
func New(c Config, d Deps) (*Verifier, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("identity: config: %w", err)
	}
	client := d.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	v := &Verifier{
		issuers: make(map[string]*issuer, len(c.Issuers)),
		leeway:  orDefault(c.Leeway, DefaultLeeway),
		now:     d.Now,
		cache:   newCache(c.CacheSize),
	}
	if v.leeway < 0 {
		v.leeway = 0
	}
	if v.now == nil {
		v.now = time.Now
	}
	tm := timing{
		refresh: orDefault(c.KeyRefreshInterval, DefaultKeyRefreshInterval),
		maxAge:  orDefault(c.KeyMaxAge, DefaultKeyMaxAge),
		timeout: orDefault(c.Timeout, DefaultTimeout),
	}
	for i, ic := range c.Issuers {
		cl := client
		if ic.CAFile != "" {
			var err error
			if cl, err = tlsclient.WithCAFile(client, ic.CAFile); err != nil {
				return nil, fmt.Errorf("identity: issuers[%d].caFile: %w", i, err)
			}
		}
		v.issuers[ic.IssuerURL] = newIssuer(ic, cl, v.now, tm)
	}
	return v, nil
}

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// Verify verifies raw (signature, issuer, algorithm, exp, nbf) and that
// its aud contains one of its issuer's Audiences.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Identity, error) {
	return v.verify(ctx, raw, "")
}

// VerifyAudience verifies raw as Verify does, except that its aud must be
// exactly audience, alone: it checks tokens minted for one server.
func (v *Verifier) VerifyAudience(ctx context.Context, raw, audience string) (*Identity, error) {
	if audience == "" {
		return nil, fmt.Errorf("%w: no audience requested", ErrAudience)
	}
	return v.verify(ctx, raw, audience)
}

func (v *Verifier) verify(ctx context.Context, raw, audience string) (*Identity, error) {
	if raw == "" {
		return nil, ErrMissing
	}
	if len(raw) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	key := sha256.Sum256([]byte(raw))
	if e, ok := v.cache.Peek(key); ok {
		if err := v.check(&e, audience); err != nil {
			return nil, err
		}
		return e.id, nil
	}
	e, err := v.verifySigned(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := v.check(e, audience); err != nil {
		return nil, err
	}
	v.cache.Put(key, *e, v.now(), cacheUntil(e, v.leeway))
	return e.id, nil
}

// check applies the time and audience checks, made on every use of a
// token, cached or not.
func (v *Verifier) check(e *entry, audience string) error {
	now := v.now()
	if now.After(e.id.Expiry.Add(v.leeway)) {
		return fmt.Errorf("%w: exp passed", ErrExpired)
	}
	if !e.nbf.IsZero() && now.Add(v.leeway).Before(e.nbf) {
		return fmt.Errorf("%w: nbf in the future", ErrNotYetValid)
	}
	aud := e.id.Audience
	if audience != "" {
		if len(aud) != 1 || aud[0] != audience {
			return fmt.Errorf("%w: aud is not the requested audience alone", ErrAudience)
		}
		return nil
	}
	for _, a := range e.iss.audiences {
		if slices.Contains(aud, a) {
			return nil
		}
	}
	return fmt.Errorf("%w: aud holds none of the issuer's audiences", ErrAudience)
}

// errSlot carries the typed error of the key set out of go-oidc, which
// flattens the errors of KeySet.VerifySignature into text.
type errSlot struct{}

// verifySigned makes the checks that do not depend on time or audience:
// structure, issuer, algorithm, signature.
func (v *Verifier) verifySigned(ctx context.Context, raw string) (*entry, error) {
	h, err := peek(raw)
	if err != nil {
		return nil, err
	}
	iss, ok := v.issuers[h.Iss]
	if !ok {
		return nil, fmt.Errorf("%w: unknown iss", ErrIssuer)
	}
	if !slices.Contains(iss.algorithms, h.Alg) {
		return nil, fmt.Errorf("%w: alg not in the issuer's allowlist", ErrAlgorithm)
	}
	ver, err := iss.verifier(ctx)
	if err != nil {
		return nil, err
	}
	var keyErr error
	tok, err := ver.Verify(context.WithValue(ctx, errSlot{}, &keyErr), raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		switch {
		case keyErr != nil:
			return nil, keyErr
		case errors.As(err, &expired):
			return nil, fmt.Errorf("%w: exp passed", ErrExpired)
		default:
			return nil, fmt.Errorf("%w: rejected by verifier", ErrMalformed)
		}
	}
	if tok.Expiry.IsZero() {
		return nil, fmt.Errorf("%w: no exp", ErrMalformed)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	e := &entry{
		id: &Identity{
			Subject:  tok.Subject,
			Issuer:   tok.Issuer,
			Audience: tok.Audience,
			Expiry:   tok.Expiry,
			Claims:   claims,
		},
		iss: iss,
	}
	switch nbf := claims["nbf"].(type) {
	case nil:
	case float64:
		e.nbf = time.Unix(int64(nbf), 0)
	default:
		return nil, fmt.Errorf("%w: nbf is not a number", ErrMalformed)
	}
	return e, nil
}

// header holds what is read from a token before it is verified: alg and
// kid from its header, iss from its payload (only to pick the issuer).
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Iss string `json:"iss"`
}

func peek(raw string) (header, error) {
	var h header
	hdr, rest, ok := strings.Cut(raw, ".")
	payload, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(sig, ".") {
		return h, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	if err := decodeSegment(hdr, &h); err != nil {
		return h, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	var p struct {
		Iss string `json:"iss"`
	}
	if err := decodeSegment(payload, &p); err != nil {
		return h, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	h.Iss = p.Iss
	return h, nil
}

var errSegment = errors.New("not base64url-encoded JSON")

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return errSegment
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errSegment
	}
	return nil
}

// BearerToken returns the token of an Authorization header value: exactly
// one "Bearer <token68>" (scheme case-insensitive), at most MaxTokenBytes.
// An empty value or another scheme is ErrMissing; anything else that is
// not one bearer token, such as two headers joined with a comma, is
// ErrMalformed.
func BearerToken(authorization string) (string, error) {
	if authorization == "" {
		return "", ErrMissing
	}
	scheme, tok, _ := strings.Cut(authorization, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		if strings.Contains(authorization, ",") {
			return "", fmt.Errorf("%w: more than one credential", ErrMalformed)
		}
		return "", fmt.Errorf("%w: not a bearer credential", ErrMissing)
	}
	switch {
	case tok == "":
		return "", fmt.Errorf("%w: empty bearer token", ErrMalformed)
	case len(tok) > MaxTokenBytes:
		return "", fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	case strings.Contains(tok, ","):
		return "", fmt.Errorf("%w: more than one credential", ErrMalformed)
	case !token68(tok):
		return "", fmt.Errorf("%w: not a token68", ErrMalformed)
	}
	return tok, nil
}

// TokenInQuery reports whether a raw query string (as sent, still
// percent-encoded) carries an OAuth access token, which must never travel in
// a URL (RFC 6750 section 5.3, MCP authorization): a parameter named
// access_token or token. Parameters are split at "&" and ";", and each
// name is compared as any server might read it: percent- and plus-decoded
// (again while that changes it, as by a server that decodes twice), cut at a
// NUL, without surrounding white space, case-insensitively. A name that
// does not decode counts as a token (fail closed).
func TokenInQuery(rawQuery string) bool {
	for rawQuery != "" {
		var param string
		if i := strings.IndexAny(rawQuery, "&;"); i >= 0 {
			param, rawQuery = rawQuery[:i], rawQuery[i+1:]
		} else {
			param, rawQuery = rawQuery, ""
		}
		name, _, _ := strings.Cut(param, "=")
		if tokenParam(name) {
			return true
		}
	}
	return false
}

// maxQueryDecodes bounds how many times a query parameter name is decoded.
const maxQueryDecodes = 4

// tokenParam reports whether a raw query parameter name may be read as a
// token parameter.
func tokenParam(name string) bool {
	for i := 0; strings.ContainsAny(name, "%+"); i++ {
		d, err := url.QueryUnescape(name)
		if err != nil || i == maxQueryDecodes && d != name {
			return true
		}
		if d == name {
			break
		}
		name = d
	}
	name, _, _ = strings.Cut(name, "\x00")
	name = strings.TrimSpace(name)
	return strings.EqualFold(name, "access_token") || strings.EqualFold(name, "token")
}

// token68 reports whether s is RFC 7235's token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func token68(s string) bool {
	i := 0
	for i < len(s) && token68Chars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

var token68Chars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()
