package devidp

import (
	"context"
	"crypto"
	"net/http"
	"net/url"
	"slices"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcp-authz/mcp-authz/internal/devidp/jwtcheck"
)

// maxReplayEntries bounds the memory of used assertion IDs; when it is full
// of unexpired entries, new assertions are refused (fail closed).
const maxReplayEntries = 4096

// forRealm tells whether aud names the realm: its issuer or token endpoint.
func (r *realm) forRealm(aud jwt.Audience) bool {
	return slices.Contains(aud, r.issuer) || slices.Contains(aud, r.tokenURL())
}

func invalidClient(desc string) error {
	return op.NewStatusError(oidc.ErrInvalidClient().WithDescription("%s", desc), http.StatusUnauthorized)
}

// clientFromRequest authenticates the client of a token request parsed by
// ParseForm: client_secret_basic, client_secret_post, private_key_jwt, or a
// public client's client_id; one method only (RFC 6749 section 2.3).
func (p *Provider) clientFromRequest(r *http.Request) (*client, error) {
	f := r.PostForm
	if err := once(f, "client_id", "client_secret", "client_assertion", "client_assertion_type"); err != nil {
		return nil, err
	}
	id, secret := f.Get("client_id"), f.Get("client_secret")
	assertion, assertionType := f.Get("client_assertion"), f.Get("client_assertion_type")
	bid, bsecret, basic := r.BasicAuth()
	methods := 0
	for _, used := range []bool{basic, secret != "", assertion != ""} {
		if used {
			methods++
		}
	}
	if methods > 1 {
		return nil, oidc.ErrInvalidRequest().WithDescription("client authentication must not use more than one method")
	}
	if basic {
		uid, err1 := url.QueryUnescape(bid)
		usecret, err2 := url.QueryUnescape(bsecret)
		if err1 != nil || err2 != nil {
			return nil, invalidClient("invalid basic auth header")
		}
		if id != "" && id != uid {
			return nil, invalidClient("client_id does not match the basic auth header")
		}
		id, secret = uid, usecret
	}
	return p.authenticate(r.Context(), id, secret, assertion, assertionType)
}

// authenticate checks one set of client credentials.
func (p *Provider) authenticate(ctx context.Context, id, secret, assertion, assertionType string) (*client, error) {
	if assertion == "" && assertionType == "" {
		return p.store.authenticate(id, secret)
	}
	if assertionType != oidc.ClientAssertionTypeJWTAssertion || assertion == "" {
		// As op answers it for the grants it serves.
		return nil, oidc.ErrInvalidRequest().WithDescription("client_assertion_type must be %s with a client_assertion", oidc.ClientAssertionTypeJWTAssertion)
	}
	return p.verifyClientAssertion(ctx, id, assertion)
}

// verifyClientAssertion is private_key_jwt (RFC 7523 section 3, OIDC Core
// section 9): iss = sub = the client, aud = the realm, signed by a key of
// the client's JWKS, short-lived, with a jti used once.
func (p *Provider) verifyClientAssertion(ctx context.Context, id, raw string) (*client, error) {
	_, unverified, err := jwtcheck.Peek(raw)
	if err != nil {
		return nil, invalidClient("Invalid client assertion")
	}
	if id != "" && id != unverified.Issuer {
		return nil, invalidClient("client_id does not match the client assertion")
	}
	c := p.realm.clients[unverified.Issuer]
	if c == nil || c.keys == nil {
		return nil, invalidClient("Invalid client or Invalid client credentials")
	}
	_, cl, err := jwtcheck.Verify(ctx, &gooidc.StaticKeySet{PublicKeys: c.keys}, raw)
	if err != nil {
		return nil, invalidClient("Invalid client assertion signature")
	}
	now := p.now()
	switch {
	case cl.Issuer != c.id || cl.Subject != c.id:
		return nil, invalidClient("Client assertion iss and sub must be the client_id")
	case !p.realm.forRealm(cl.Audience):
		return nil, invalidClient("Client assertion audience is not this realm")
	case cl.ID == "":
		return nil, invalidClient("Client assertion jti is required")
	}
	if err := cl.CheckTimes(now, maxAssertionLifetime, 0); err != nil {
		return nil, invalidClient("Client assertion " + err.Error())
	}
	if err := p.replay.Use("client\x00"+c.id+"\x00"+cl.ID, cl.Expiry.Time(), now); err != nil {
		return nil, invalidClient("Client assertion " + err.Error())
	}
	return c, nil
}

// ownKeys is the realm's current key set, to verify the tokens it issued.
func (p *Provider) ownKeys() gooidc.KeySet {
	p.store.mu.RLock()
	defer p.store.mu.RUnlock()
	keys := make([]crypto.PublicKey, 0, len(p.store.keys))
	for _, k := range p.store.keys {
		keys = append(keys, &k.key.PublicKey)
	}
	return &gooidc.StaticKeySet{PublicKeys: keys}
}

// once refuses a parameter given more than once (RFC 6749 section 3.2).
func once(f url.Values, names ...string) error {
	for _, n := range names {
		if len(f[n]) > 1 {
			return oidc.ErrInvalidRequest().WithDescription("parameter %s given more than once", n)
		}
	}
	return nil
}
