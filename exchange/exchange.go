// Package exchange implements an RFC 8693 token-exchange client.
package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/expiry"
	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/internal/tlsclient"
)

// Token types of RFC 8693 section 3.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	grantType            = "urn:ietf:params:oauth:grant-type:token-exchange"
)

// Defaults of the zero Config.
const (
	DefaultCacheSize  = 10000
	DefaultExpirySkew = 30 * time.Second
	DefaultTimeout    = 5 * time.Second
)

var (
	// ErrUnavailable means no usable answer came from the token service:
	// unreachable, too slow, 5xx, not JSON, or no access_token.
	ErrUnavailable = errors.New("exchange: token service unavailable")
	// ErrInvalidToken means the token service issued a token that failed
	// validation (signature, issuer, expiry, audience): it is misbehaving
	// and the token is not used.
	ErrInvalidToken = errors.New("exchange: issued token is invalid")
)

// RetrieveError is a refusal by the token service: an RFC 6749 section
// 5.2 error answer (a 4xx, or a 200 carrying an error), like
// oauth2.RetrieveError.
type RetrieveError struct {
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// ErrorCode is the RFC 6749 error code, such as invalid_grant,
	// unauthorized_client or invalid_target; empty if the service sent
	// one outside RFC 6749's character set or longer than 64 bytes.
	ErrorCode string
	// ErrorDescription is the service's text, at most 256 bytes and never
	// holding the subject token. It is not part of Error(): show it to no
	// client.
	ErrorDescription string
}

func (e *RetrieveError) Error() string {
	code := e.ErrorCode
	if code == "" {
		code = "unnamed error"
	}
	return fmt.Sprintf("exchange: token endpoint refused: %s (status %d)", code, e.StatusCode)
}

// Config configures a Client. Its top-level keys are the default profile
// (DefaultProfile), one RFC 8693 exchange at TokenURL whose token is
// validated by the caller verifier for the server's audience; Profiles
// adds named ones. The default profile's keys may all be left out when
// Profiles is set: servers must then name a profile.
type Config struct {
	// TokenURL is the token endpoint; required unless Profiles is set and
	// no other default-profile key is.
	TokenURL string `yaml:"tokenURL" json:"tokenURL"`
	// ClientID identifies the gateway to the token service; required.
	ClientID string `yaml:"clientID" json:"clientID"`
	// ClientSecretFile is a file holding the client secret (a trailing
	// newline is dropped). Exactly one of ClientSecretFile and
	// ClientSecretEnv is required; the secret itself never appears in
	// the configuration.
	ClientSecretFile string `yaml:"clientSecretFile" json:"clientSecretFile"`
	// ClientSecretEnv is the environment variable holding the secret.
	ClientSecretEnv string `yaml:"clientSecretEnv" json:"clientSecretEnv"`
	// AuthStyle is how the client authenticates: "basic"
	// (client_secret_basic, the default) or "post" (client_secret_post).
	AuthStyle string `yaml:"authStyle" json:"authStyle"`
	// Scopes are requested when a Request names none; empty means no
	// scope parameter.
	Scopes []string `yaml:"scopes" json:"scopes"`
	// RequestedTokenType is the requested_token_type; empty means
	// TokenTypeAccessToken.
	RequestedTokenType string `yaml:"requestedTokenType" json:"requestedTokenType"`
	// SkipWhenAudienceMatches returns the subject token unchanged when
	// its aud is exactly the requested audience, alone.
	SkipWhenAudienceMatches bool `yaml:"skipWhenAudienceMatches" json:"skipWhenAudienceMatches"`
	// CAFile is a PEM bundle trusted, besides the system roots, for
	// TokenURL: a token service whose certificate a private CA signed.
	CAFile string `yaml:"caFile,omitempty" json:"caFile,omitempty"`
	// Profiles are the named profiles (DNS-1123 labels, not "default")
	// that servers and targets name (registry's servers[].exchange and
	// servers[].targets).
	Profiles map[string]Profile `yaml:"profiles,omitempty" json:"profiles,omitempty"`
	// CacheSize bounds the tokens kept, all profiles together; 0 means
	// DefaultCacheSize, a negative value disables the cache.
	CacheSize int `yaml:"cacheSize" json:"cacheSize"`
	// ExpirySkew is how long before its expiry a cached token stops being
	// served; 0 means DefaultExpirySkew (30s), a negative value none.
	ExpirySkew time.Duration `yaml:"expirySkew" json:"expirySkew"`
	// Timeout bounds one call to a token endpoint, and the validation of
	// the final token; 0 means DefaultTimeout (5s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// Deps are the Client's runtime dependencies: what a configuration file
// cannot say.
type Deps struct {
	// HTTPClient reaches the token endpoints (it never follows their
	// redirects); nil means http.DefaultClient.
	HTTPClient *http.Client
	// Verifier validates the default profile's tokens: required when
	// Config sets the default profile. A named profile's final token is
	// validated by a verifier of its own Expect.
	Verifier TokenVerifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// hasDefault reports whether c sets the default profile: any of its keys,
// or no profiles at all (then its keys are required).
func (c Config) hasDefault() bool {
	return len(c.Profiles) == 0 || c.TokenURL != "" || c.ClientID != "" || c.ClientSecretFile != "" ||
		c.ClientSecretEnv != "" || c.AuthStyle != "" || len(c.Scopes) > 0 || c.RequestedTokenType != "" || c.SkipWhenAudienceMatches || c.CAFile != ""
}

// HasProfile reports whether name is a profile of c: DefaultProfile when
// c has one, or a key of Profiles.
func (c Config) HasProfile(name string) bool {
	if name == DefaultProfile {
		return c.hasDefault()
	}
	_, ok := c.Profiles[name]
	return ok
}

// Validate reports every problem of c, each an *field.Error whose path is
// the field's YAML key ("tokenURL", "profiles.spoke.steps[1].tokenURL").
// It reads the client secrets, keys and token files; it reaches no
// network.
func (c Config) Validate() error {
	var errs []error
	if c.hasDefault() {
		if u, err := url.Parse(c.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, field.Errorf("tokenURL", "must be an absolute http(s) URL"))
		}
		if c.ClientID == "" {
			errs = append(errs, field.Errorf("clientID", "required"))
		}
		if _, err := readSecret(c.ClientSecretFile, c.ClientSecretEnv); err != nil {
			errs = append(errs, err)
		}
		switch c.AuthStyle {
		case "", "basic", "post":
		default:
			errs = append(errs, field.Errorf("authStyle", "%q: want basic or post", c.AuthStyle))
		}
		if c.CAFile != "" {
			if _, err := tlsclient.ReadPool(nil, c.CAFile); err != nil {
				errs = append(errs, field.Under("caFile", err))
			}
		}
	}
	errs = append(errs, validateProfiles(c.Profiles))
	return errors.Join(errs...)
}

// TokenVerifier validates an issued token for one audience;
// *identity.Verifier is one.
type TokenVerifier interface {
	VerifyAudience(ctx context.Context, raw, audience string) (*identity.Identity, error)
}

// Request is one exchange.
type Request struct {
	// SubjectToken is the caller's verified access token.
	SubjectToken string
	// SubjectExpiry is its expiry: no token is served from the cache past
	// it. Zero means unknown, and the result is not cached.
	SubjectExpiry time.Time
	// SubjectAudience is its aud, for SkipWhenAudienceMatches.
	SubjectAudience []string
	// Audience is the audience of the token wanted, the target server; a
	// token-exchange step without an audience of its own asks for it.
	Audience string
	// Scopes override Config.Scopes when not nil (default profile only:
	// a named profile's steps name their own).
	Scopes []string
	// Resource is the optional RFC 8707 resource parameter (default
	// profile only).
	Resource string
	// Profile names the profile; "" means DefaultProfile.
	Profile string
	// Target is the target inside the server the token is for (such as a
	// Kubernetes context), "" for none: part of the cache key and of
	// Token.
	Target string
}

// Token is an exchanged token. Tokens are shared between callers: they
// must not be modified.
type Token struct {
	AccessToken string
	// Expiry is the exp of AccessToken; zero for a static credential.
	Expiry time.Time
	// Claims are the claims of AccessToken, as identity decodes them;
	// nil when Exchanged is false.
	Claims map[string]any
	// Exchanged is false when the subject token is returned unchanged
	// (SkipWhenAudienceMatches) and for a static credential.
	Exchanged bool
	// Profile and Target are those of the Request (Profile defaulted).
	Profile, Target string
	// Steps describe the steps that made the token, never a token; nil for
	// a static credential and a skipped exchange. Shared: not to be
	// modified.
	Steps []StepInfo

	// header is the whole Authorization value of a static credential.
	header string
}

// StaticToken is a static credential as a Token: authorization is the
// whole Authorization header value sent upstream (a static profile's
// "<scheme> <secret>", or a registration's credentialRef), profile and
// target name it for policies and the decision log. Its AccessToken is
// authorization too.
func StaticToken(authorization, profile, target string) *Token {
	return &Token{AccessToken: authorization, Profile: profile, Target: target, header: authorization}
}

// Authorization is the token as an Authorization header value: Bearer and
// the token, or a static credential's whole value.
func (t *Token) Authorization() string {
	if t.header != "" {
		return t.header
	}
	return "Bearer " + t.AccessToken
}

// StepInfo describes one step of a profile for policy input and logs.
type StepInfo struct {
	// Grant is GrantTokenExchange or GrantJWTBearer.
	Grant string `json:"grant"`
	// Endpoint is the step's token URL.
	Endpoint string `json:"endpoint"`
}

// Client exchanges tokens and caches the results. It is safe for
// concurrent use.
type Client struct {
	profiles map[string]*profile
	skew     time.Duration
	timeout  time.Duration
	now      func() time.Time
	cache    *expiry.Cache[[]byte] // tokens packed by pack
	caching  bool                  // false when the cache is disabled
	group    singleflight.Group
}

// New returns a Client. It reads the client secrets and keys now; it makes
// no network call and starts nothing.
func New(c Config, d Deps) (*Client, error) {
	client, v := d.HTTPClient, d.Verifier
	if v == nil && c.hasDefault() {
		return nil, errors.New("exchange: config: a TokenVerifier is required")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("exchange: config: %w", err)
	}
	x := &Client{
		profiles: make(map[string]*profile, len(c.Profiles)+1),
		skew:     c.ExpirySkew,
		timeout:  c.Timeout,
		now:      d.Now,
		cache:    newCache(c.CacheSize),
		caching:  c.CacheSize >= 0,
	}
	if x.skew == 0 {
		x.skew = DefaultExpirySkew
	}
	if x.skew < 0 {
		x.skew = 0
	}
	if x.timeout <= 0 {
		x.timeout = DefaultTimeout
	}
	if x.now == nil {
		x.now = time.Now
	}
	if client == nil {
		client = http.DefaultClient
	}
	// A redirect of the POST (307, 308) would send the subject token and
	// the client's credentials wherever the token URL points: never follow.
	cl := *client
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client = &cl
	if c.hasDefault() {
		p, err := defaultProfile(c, client, v)
		if err != nil {
			return nil, fmt.Errorf("exchange: config: %w", err)
		}
		x.profiles[DefaultProfile] = p
	}
	for name, pc := range c.Profiles {
		p, err := newProfile(name, pc, client, x.now)
		if err != nil {
			return nil, fmt.Errorf("exchange: config: %w", field.Under("profiles."+name, err))
		}
		x.profiles[name] = p
	}
	return x, nil
}

// readSecret reads the client secret; its errors are *field.Error.
func readSecret(file, env string) (string, error) {
	switch {
	case file != "" && env != "":
		return "", field.Errorf("clientSecretEnv", "clientSecretFile and clientSecretEnv are exclusive")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", &field.Error{Path: "clientSecretFile", Err: err}
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", field.Errorf("clientSecretFile", "%s: empty", file)
		}
		return s, nil
	case env != "":
		s := os.Getenv(env)
		if s == "" {
			return "", field.Errorf("clientSecretEnv", "$%s is empty or unset", env)
		}
		return s, nil
	default:
		return "", field.Errorf("clientSecretFile", "one of clientSecretFile and clientSecretEnv is required")
	}
}

// ErrNoProfile is returned for a Request naming a profile the Client does
// not have.
var ErrNoProfile = errors.New("exchange: no such profile")

// StepError is a failure of one step of a named profile. It wraps the
// step's error (a *RetrieveError, ErrUnavailable or ErrInvalidToken) and
// names the step for the log; it never holds a token.
type StepError struct {
	Profile string
	// Step is 1-based; 0 is the validation of the final token.
	Step     int
	Grant    string
	Endpoint string
	Err      error
}

func (e *StepError) Error() string {
	if e.Step == 0 {
		return fmt.Sprintf("exchange: profile %s: final token: %v", e.Profile, e.Err)
	}
	return fmt.Sprintf("exchange: profile %s: step %d (%s at %s): %v", e.Profile, e.Step, e.Grant, e.Endpoint, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// Exchange returns a token for r.Audience on behalf of the subject of
// r.SubjectToken, made by r.Profile: from the cache, or from the token
// service(s) and then validated. Concurrent calls for one key make one
// chain of calls, which a caller giving up does not cancel for the others.
func (c *Client) Exchange(ctx context.Context, r Request) (*Token, error) {
	name := r.Profile
	if name == "" {
		name = DefaultProfile
	}
	p, ok := c.profiles[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoProfile, name)
	}
	if p.static != nil {
		return p.static.token(name, r.Target)
	}
	if r.SubjectToken == "" || r.Audience == "" {
		return nil, errors.New("exchange: request needs a subject token and an audience")
	}
	if p.skip && len(r.SubjectAudience) == 1 && r.SubjectAudience[0] == r.Audience {
		return &Token{AccessToken: r.SubjectToken, Expiry: r.SubjectExpiry, Profile: name, Target: r.Target}, nil
	}
	scopes := p.scopes(r)
	key := cacheKey(r, name, scopes)
	if tok, ok := c.cached(ctx, key, p, r); ok {
		return tok, nil
	}
	return c.miss(ctx, key, p, r, scopes)
}

// miss runs the profile once for all concurrent misses of key. It is apart
// from Exchange so that only a miss moves r to the heap (its closure
// captures r).
func (c *Client) miss(ctx context.Context, key [32]byte, p *profile, r Request, scopes []string) (*Token, error) {
	ch := c.group.DoChan(string(key[:]), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout*time.Duration(len(p.steps)+1))
		defer cancel()
		if tok, ok := c.cached(ctx, key, p, r); ok {
			return tok, nil // filled by a call that ended since the miss
		}
		return c.exchange(ctx, key, p, r, scopes)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Token), nil
	}
}

// cached returns the cached token for key, revalidated by the profile's
// verifier (which has it cached too). An entry that no longer validates is
// dropped.
func (c *Client) cached(ctx context.Context, key [32]byte, p *profile, r Request) (*Token, bool) {
	packed, ok := c.cache.Get(key, c.now())
	if !ok {
		return nil, false
	}
	token := unpack(packed)
	id, err := p.verify(ctx, token, r.Audience)
	if err != nil {
		c.cache.Remove(key)
		return nil, false
	}
	return p.result(token, id, r), true
}

// exchange runs the profile's steps, validates the final token and caches
// it. Intermediate results (authorization grants, used once) are passed to
// the next step only: never cached, logged or returned.
func (c *Client) exchange(ctx context.Context, key [32]byte, p *profile, r Request, scopes []string) (*Token, error) {
	subject, subjectType := r.SubjectToken, TokenTypeAccessToken
	var resp *response
	for i, s := range p.steps {
		sctx, cancel := context.WithTimeout(ctx, c.timeout)
		var err error
		resp, err = s.post(sctx, subject, subjectType, r, scopes, c.now())
		cancel()
		if err != nil {
			return nil, p.stepError(i+1, err)
		}
		subject, subjectType = resp.AccessToken, s.issued
	}
	vctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	id, err := p.verify(vctx, resp.AccessToken, r.Audience)
	if err != nil {
		// The cause is kept as text only: the caller's token is fine, and a
		// wrapped identity sentinel would read as a fault of the caller's.
		if errors.Is(err, identity.ErrUnavailable) {
			return nil, p.stepError(0, fmt.Errorf("%w: validating the issued token: %v", ErrUnavailable, err)) //nolint:errorlint // see above
		}
		return nil, p.stepError(0, fmt.Errorf("%w: %v", ErrInvalidToken, err)) //nolint:errorlint // see above
	}
	now := c.now()
	until := id.Expiry
	if resp.expiresIn > 0 {
		until = minTime(until, now.Add(resp.expiresIn))
	}
	until = minTime(until.Add(-c.skew), r.SubjectExpiry)
	// Not packed for nothing: a zero SubjectExpiry (unknown) gives a zero
	// until, and the cache takes no entry that is not after now.
	if c.caching && until.After(now) {
		c.cache.Put(key, pack(resp.AccessToken), now, until)
	}
	return p.result(resp.AccessToken, id, r), nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// cacheKey is the SHA-256 of the subject token, profile, target,
// audience, scopes and resource, each length-prefixed.
func cacheKey(r Request, profile string, scopes []string) [32]byte {
	h := sha256.New()
	field := func(h hash.Hash, s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(h, r.SubjectToken)
	field(h, profile)
	field(h, r.Target)
	field(h, r.Audience)
	field(h, strings.Join(scopes, " "))
	field(h, r.Resource)
	var k [32]byte
	h.Sum(k[:0])
	return k
}
