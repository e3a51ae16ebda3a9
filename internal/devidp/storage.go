package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// maxKeys bounds the JWKS: the signing key and the keys it replaced.
const maxKeys = 3

var errUnsupported = errors.New("not supported by the dev provider")

// storage implements op.Storage, op.ClientCredentialsStorage,
// op.TokenExchangeStorage and op.CanGetPrivateClaimsFromRequest over a realm.
// Nothing is persisted: tokens are self-contained JWTs.
type storage struct {
	realm   *realm
	persist KeyStore // nil: keys live in memory only

	mu   sync.RWMutex
	keys []*signingKey // last one signs
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.TokenExchangeStorage           = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
)

// load takes the realm's keys from the key file, or makes the first one.
func (s *storage) load() error {
	if s.persist != nil {
		jwks, err := s.persist.LoadKeys(s.realm.name)
		if err != nil {
			return fmt.Errorf("devidp: keys: %w", err)
		}
		var keys []*signingKey
		for _, k := range jwks {
			priv, ok := k.Key.(*rsa.PrivateKey)
			if !ok || k.KeyID == "" || priv.Validate() != nil {
				return fmt.Errorf("devidp: keys: realm %s: key %q is not an RSA private key", s.realm.name, k.KeyID)
			}
			keys = append(keys, &signingKey{id: k.KeyID, key: priv})
		}
		if len(keys) > maxKeys {
			keys = keys[len(keys)-maxKeys:]
		}
		if len(keys) > 0 {
			s.mu.Lock()
			s.keys = keys
			s.mu.Unlock()
			return nil
		}
	}
	_, err := s.rotate()
	return err
}

// rotate makes a new signing key; the previous ones stay in the key set.
// With a key file, the new set is saved before it is used.
func (s *storage) rotate() (string, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", fmt.Errorf("devidp: rotate keys: %w", err)
	}
	id := make([]byte, 12)
	rand.Read(id)
	sk := &signingKey{id: base64.RawURLEncoding.EncodeToString(id), key: k}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := append(slices.Clip(s.keys), sk)
	if len(keys) > maxKeys {
		keys = keys[len(keys)-maxKeys:]
	}
	if s.persist != nil {
		jwks := make([]jose.JSONWebKey, 0, len(keys))
		for _, k := range keys {
			jwks = append(jwks, jose.JSONWebKey{Key: k.key, KeyID: k.id, Algorithm: string(jose.RS256), Use: "sig"})
		}
		if err := s.persist.SaveKeys(s.realm.name, jwks); err != nil {
			return "", fmt.Errorf("devidp: keys: %w", err)
		}
	}
	s.keys = keys
	return sk.id, nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[len(s.keys)-1], nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := make([]op.Key, 0, len(s.keys))
	for i := len(s.keys) - 1; i >= 0; i-- {
		keys = append(keys, publicKey{s.keys[i]})
	}
	return keys, nil
}

// authenticate checks a client's credentials like Keycloak: unknown client or
// wrong secret is 401 invalid_client; a public client needs no secret.
func (s *storage) authenticate(id, secret string) (*client, error) {
	c := s.realm.clients[id]
	switch {
	case c == nil:
		return nil, op.NewStatusError(oidc.ErrInvalidClient().WithDescription("Invalid client or Invalid client credentials"), 401)
	case c.public:
		return c, nil
	case !c.confidential():
		return nil, oidc.ErrUnauthorizedClient().WithDescription("Bearer-only client not allowed to retrieve tokens")
	case c.keys != nil: // private_key_jwt only: no secret matches
		return nil, op.NewStatusError(oidc.ErrInvalidClient().WithDescription("Invalid client or Invalid client credentials"), 401)
	case !equal(secret, c.secret):
		return nil, op.NewStatusError(oidc.ErrInvalidClient().WithDescription("Invalid client or Invalid client credentials"), 401)
	}
	return c, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c := s.realm.clients[id]; c != nil {
		return c, nil
	}
	return nil, oidc.ErrInvalidClient().WithDescription("Invalid client or Invalid client credentials")
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	_, err := s.authenticate(id, secret)
	return err
}

func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	return s.authenticate(id, secret)
}

// ClientCredentialsTokenRequest issues a token for the client's service
// account, with the client itself as audience.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	p := s.realm.byName["service-account-"+id]
	if p == nil {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("Client not enabled to retrieve service account")
	}
	return &tokenRequest{principal: p, audience: []string{id}, scopes: scopes, clientID: id}, nil
}

func (s *storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return newUUID(), time.Now().Add(s.realm.lifetime), nil
}

func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	t, ok := req.(*tokenRequest)
	if !ok {
		return nil, oidc.ErrServerError().WithDescription("unexpected token request")
	}
	return t.principal.claims(t.clientID, t.scopes, t.roles), nil
}

// ValidateTokenExchangeRequest applies Keycloak's standard token exchange
// rules. The subject token has been verified by op already (signature,
// issuer, expiry); its claims are in the request.
func (s *storage) ValidateTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) error {
	requester := s.realm.clients[req.GetClientID()]
	switch {
	case requester == nil || !requester.confidential():
		return oidc.ErrUnauthorizedClient().WithDescription("Public client is not allowed to exchange token")
	case req.GetExchangeSubjectTokenType() != oidc.AccessTokenType:
		return oidc.ErrInvalidRequest().WithDescription("Parameter 'subject_token' supports access tokens only")
	case req.GetExchangeActorTokenIDOrToken() != "":
		return oidc.ErrInvalidRequest().WithDescription("Parameter 'actor_token' is not supported")
	case len(req.GetResourses()) > 0:
		return oidc.ErrInvalidRequest().WithDescription("Parameter 'resource' is not supported")
	}
	switch req.GetRequestedTokenType() {
	case "":
		req.SetRequestedTokenType(oidc.AccessTokenType)
	case oidc.AccessTokenType:
	default:
		return oidc.ErrInvalidRequest().WithDescription("requested_token_type unsupported")
	}
	subject := req.GetExchangeSubjectTokenClaims()
	if s.realm.bySubject[req.GetSubject()] == nil {
		return oidc.ErrInvalidRequest().WithDescription("Invalid token")
	}
	if !slices.Contains(audiences(subject["aud"]), requester.id) {
		return &oidc.Error{ErrorType: oidc.AccessDenied, Description: "Client is not within the token audience"}
	}
	targets := req.GetAudience()
	if len(targets) == 0 {
		return oidc.ErrInvalidRequest().WithDescription("Parameter 'audience' is required")
	}
	for _, t := range targets {
		if !slices.Contains(requester.exchangeTo, t) {
			return &oidc.Error{ErrorType: oidc.InvalidTarget, Description: "Requested audience not available: " + t}
		}
	}
	if len(req.GetScopes()) == 0 {
		scope, _ := subject["scope"].(string)
		req.SetCurrentScopes(strings.Fields(scope))
	}
	return nil
}

func (s *storage) CreateTokenExchangeRequest(context.Context, op.TokenExchangeRequest) error {
	return nil
}

// GetPrivateClaimsFromTokenExchangeRequest: the same user, azp = the
// requester, roles of the target clients only.
func (s *storage) GetPrivateClaimsFromTokenExchangeRequest(_ context.Context, req op.TokenExchangeRequest) (map[string]any, error) {
	p := s.realm.bySubject[req.GetSubject()]
	if p == nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("Invalid token")
	}
	return p.claims(req.GetClientID(), req.GetScopes(), req.GetAudience()), nil
}

func (s *storage) SetUserinfoFromTokenExchangeRequest(ctx context.Context, info *oidc.UserInfo, req op.TokenExchangeRequest) error {
	return s.SetUserinfoFromToken(ctx, info, "", req.GetSubject(), "")
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, _, subject, _ string) error {
	p := s.realm.bySubject[subject]
	if p == nil {
		return oidc.ErrInvalidRequest().WithDescription("Invalid token")
	}
	info.Subject = p.subject
	info.PreferredUsername = p.username
	info.GivenName, info.FamilyName = p.given, p.family
	info.Name = strings.TrimSpace(p.given + " " + p.family)
	info.AppendClaims("groups", p.groups)
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) Health(context.Context) error { return nil }

// The rest of op.Storage serves flows the dev provider does not offer
// (browser login, refresh tokens, revocation, JWT profile).

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, oidc.ErrRequestNotSupported().WithDescription("interactive login is not supported by the dev provider")
}
func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (s *storage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errUnsupported
}
func (s *storage) SaveAuthCode(context.Context, string, string) error     { return errUnsupported }
func (s *storage) DeleteAuthRequest(context.Context, string) error        { return nil }
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }
func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, oidc.ErrInvalidRequest().WithDescription("refresh tokens are not supported by the dev provider")
}
func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errUnsupported
}
func (s *storage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrUnsupportedGrantType().WithDescription("revocation is not supported by the dev provider")
}
func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errUnsupported
}
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errUnsupported
}

// signingKey implements op.SigningKey.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey implements op.Key, the JWKS entry of a signingKey.
type publicKey struct{ k *signingKey }

func (k publicKey) ID() string                         { return k.k.id }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.k.key.PublicKey }

// audiences reads an aud claim: a string or an array of strings.
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		out := make([]string, 0, len(a))
		for _, e := range a {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
