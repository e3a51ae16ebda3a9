package exchange

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/internal/tlsclient"
)

// profile is a compiled Profile (or the default one).
type profile struct {
	name   string
	steps  []*step
	info   []StepInfo
	static *staticCredential
	// verify validates the final token; audience is the Request's.
	verify func(ctx context.Context, raw, audience string) (*identity.Identity, error)
	// def marks the default profile: Request.Scopes and Resource apply,
	// errors are not wrapped in StepError (as before profiles).
	def  bool
	skip bool // SkipWhenAudienceMatches
}

// step is a compiled Step.
type step struct {
	grant     string
	tokenURL  string
	cred      credential
	audience  string // "" in token-exchange: the Request's
	resource  string
	scopes    []string
	requested string // requested_token_type (token-exchange)
	issued    string // the type of the token this step yields
	actorFile string
	actorType string
	client    *http.Client
}

// defaultProfile is the profile of Config's top-level keys.
func defaultProfile(c Config, client *http.Client, v TokenVerifier) (*profile, error) {
	secret, err := readSecret(c.ClientSecretFile, c.ClientSecretEnv)
	if err != nil {
		return nil, err
	}
	if c.CAFile != "" {
		if client, err = tlsclient.WithCAFile(client, c.CAFile); err != nil {
			return nil, &field.Error{Path: "caFile", Err: err}
		}
	}
	requested := c.RequestedTokenType
	if requested == "" {
		requested = TokenTypeAccessToken
	}
	s := &step{
		grant:     GrantTokenExchange,
		tokenURL:  c.TokenURL,
		cred:      &secretCredential{id: c.ClientID, secret: secret, post: c.AuthStyle == "post"},
		scopes:    c.Scopes,
		requested: requested,
		issued:    requested,
		client:    client,
	}
	return &profile{
		name:   DefaultProfile,
		steps:  []*step{s},
		info:   []StepInfo{{Grant: GrantTokenExchange, Endpoint: c.TokenURL}},
		verify: v.VerifyAudience,
		def:    true,
		skip:   c.SkipWhenAudienceMatches,
	}, nil
}

// newProfile compiles a validated named profile; its errors are
// *field.Error relative to the profile.
func newProfile(name string, pc Profile, client *http.Client, now func() time.Time) (*profile, error) {
	if pc.CAFile != "" {
		var err error
		if client, err = tlsclient.WithCAFile(client, pc.CAFile); err != nil {
			return nil, fmt.Errorf("caFile: %w", err)
		}
	}
	p := &profile{name: name}
	if pc.Static != nil {
		scheme := pc.Static.Scheme
		if scheme == "" {
			scheme = "Bearer"
		}
		p.static = &staticCredential{file: pc.Static.SecretFile, prefix: scheme + " "}
		if _, err := p.static.read(); err != nil {
			return nil, fmt.Errorf("static.secretFile: %w", err)
		}
		return p, nil
	}
	for i, sc := range pc.Steps {
		cred, err := sc.credential()
		if err != nil {
			return nil, err
		}
		grant := sc.Grant
		if grant == "" {
			grant = GrantTokenExchange
		}
		s := &step{
			grant:     grant,
			tokenURL:  sc.TokenURL,
			cred:      cred,
			audience:  sc.Audience,
			resource:  sc.Resource,
			scopes:    sc.Scopes,
			actorFile: sc.ActorTokenFile,
			actorType: sc.ActorTokenType,
			client:    client,
			issued:    TokenTypeAccessToken,
		}
		if grant == GrantTokenExchange {
			s.requested = sc.requested(pc.Steps, i)
			s.issued = s.requested
		}
		if s.actorFile != "" && s.actorType == "" {
			s.actorType = TokenTypeJWT
		}
		p.steps = append(p.steps, s)
		p.info = append(p.info, StepInfo{Grant: grant, Endpoint: sc.TokenURL})
	}
	e := pc.Expect
	// The final token's own verifier: its issuer is trusted for this
	// profile's tokens only, never for callers.
	v, err := identity.New(identity.Config{
		Issuers: []identity.Issuer{{IssuerURL: e.Issuer, JWKSURL: e.JWKSURL, Audiences: []string{e.Audience}, Algorithms: e.Algorithms}},
	}, identity.Deps{HTTPClient: client, Now: now})
	if err != nil {
		return nil, fmt.Errorf("expect: %w", err)
	}
	p.verify = func(ctx context.Context, raw, _ string) (*identity.Identity, error) { return v.Verify(ctx, raw) }
	return p, nil
}

// scopes are the scopes of the default profile's request; nil for a named
// profile, whose steps name theirs.
func (p *profile) scopes(r Request) []string {
	if !p.def {
		return nil
	}
	if r.Scopes != nil {
		return r.Scopes
	}
	return p.steps[0].scopes
}

// result is the Token of a validated final token.
func (p *profile) result(raw string, id *identity.Identity, r Request) *Token {
	return &Token{AccessToken: raw, Expiry: id.Expiry, Claims: id.Claims, Exchanged: true, Profile: p.name, Target: r.Target, Steps: p.info}
}

// stepError names the failing step of a named profile (n 1-based, 0 for
// the final token's validation); the default profile's errors are
// returned as they are.
func (p *profile) stepError(n int, err error) error {
	if p.def {
		return err
	}
	e := &StepError{Profile: p.name, Step: n, Err: err}
	if n > 0 {
		e.Grant, e.Endpoint = p.info[n-1].Grant, p.info[n-1].Endpoint
	}
	return e
}

// staticCredential is a secret file read again when it changes.
type staticCredential struct {
	file   string
	prefix string // the scheme and a space

	// mu guards the fields below.
	mu     sync.Mutex
	mod    time.Time
	size   int64
	value  string
	header string // prefix + value
}

// token returns the credential as a Token, the same kind of Token as a
// registration's credentialRef makes (StaticToken).
func (s *staticCredential) token(profile, target string) (*Token, error) {
	h, err := s.read()
	if err != nil {
		return nil, fmt.Errorf("%w: profile %s: static credential: %w", ErrUnavailable, profile, err)
	}
	return StaticToken(h, profile, target), nil
}

// read returns the Authorization value of the file's secret, read again
// when its modification time or size changed (a Secret volume swaps its
// files).
func (s *staticCredential) read() (string, error) {
	fi, err := os.Stat(s.file)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.value != "" && fi.ModTime().Equal(s.mod) && fi.Size() == s.size {
		return s.header, nil
	}
	v, err := readFile(s.file)
	if err != nil {
		return "", err
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			// A header value: no space, control or non-ASCII byte. The
			// secret itself is never quoted.
			return "", fmt.Errorf("%s: not a single token of visible ASCII", s.file)
		}
	}
	s.value, s.mod, s.size, s.header = v, fi.ModTime(), fi.Size(), s.prefix+v
	return s.header, nil
}
