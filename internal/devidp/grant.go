package devidp

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/mcp-authz/mcp-authz/internal/devidp/jwtcheck"
)

// Token types of identity chaining (RFC 8693 section 3) and ID-JAG.
const (
	TokenTypeJWT   = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDJAG = "urn:ietf:params:oauth:token-type:id-jag"
)

// authorizationGrant is the token exchange of identity chaining at the
// issuing side: the caller's access token, issued by this realm, becomes a
// short-lived JWT authorization grant whose aud is a peer's issuer, for a
// client allowed to ask grants for that peer.
func (p *Provider) authorizationGrant(r *http.Request) (any, error) {
	c, err := p.clientFromRequest(r)
	if err != nil {
		return nil, err
	}
	f := r.PostForm
	if err := once(f, "subject_token", "subject_token_type", "requested_token_type", "scope", "actor_token", "actor_token_type"); err != nil {
		return nil, err
	}
	switch {
	case !c.confidential():
		return nil, oidc.ErrUnauthorizedClient().WithDescription("Public client is not allowed to exchange token")
	case len(c.grantPeers) == 0:
		return nil, oidc.ErrUnauthorizedClient().WithDescription("Client is not allowed to request authorization grants")
	case f.Get("subject_token_type") != string(oidc.AccessTokenType):
		return nil, oidc.ErrInvalidRequest().WithDescription("Parameter 'subject_token' supports access tokens only")
	case f.Get("actor_token") != "" || f.Get("actor_token_type") != "":
		return nil, oidc.ErrInvalidRequest().WithDescription("Parameter 'actor_token' is not supported")
	}
	targets := append(slices.Clone(f["audience"]), f["resource"]...)
	if len(targets) != 1 {
		return nil, &oidc.Error{ErrorType: oidc.InvalidTarget, Description: "Name exactly one peer with audience or resource"}
	}
	peer := p.realm.peerByIssuer(strings.TrimSuffix(targets[0], "/"))
	if peer == nil || !slices.Contains(c.grantPeers, peer.alias) {
		return nil, &oidc.Error{ErrorType: oidc.InvalidTarget, Description: "Requested audience not available"}
	}

	now := p.now()
	_, subject, err := jwtcheck.Verify(r.Context(), p.ownKeys(), f.Get("subject_token"))
	if err != nil || subject.Issuer != p.realm.issuer || subject.CheckTimes(now, p.realm.lifetime, 0) != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("Invalid token")
	}
	user := p.realm.bySubject[subject.Subject]
	if user == nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("Invalid token")
	}
	if !slices.Contains(subject.Audience, c.id) {
		return nil, &oidc.Error{ErrorType: oidc.AccessDenied, Description: "Client is not within the token audience"}
	}
	scope := strings.Join(strings.Fields(f.Get("scope")), " ")
	if scope == "" {
		scope = subject.Scope
	}
	// The grant never outlives the token it was exchanged for.
	exp := now.Add(p.realm.grantLifetime)
	if e := subject.Expiry.Time(); e.Before(exp) {
		exp = e
	}
	requested, typ := f.Get("requested_token_type"), typeJWT
	if requested == TokenTypeIDJAG {
		typ = typeIDJAG
	}
	clientID := peer.clientID
	if clientID == "" {
		clientID = c.id
	}
	grant := map[string]any{
		"iss": p.realm.issuer, "sub": user.subject, "aud": peer.issuer,
		"iat": now.Unix(), "exp": exp.Unix(), "jti": newUUID(),
		"client_id": clientID, "azp": c.id, "preferred_username": user.username,
	}
	if scope != "" {
		grant["scope"] = scope
	}
	raw, err := p.store.sign(grant, typ)
	if err != nil {
		return nil, oidc.ErrServerError().WithDescription("signing failed")
	}
	return &oidc.TokenExchangeResponse{
		AccessToken:     raw,
		IssuedTokenType: oidc.TokenType(requested),
		TokenType:       "N_A",
		ExpiresIn:       uint64(exp.Sub(now).Seconds()),
		Scopes:          strings.Fields(scope),
	}, nil
}

// jwtBearer is the RFC 7523 authorization grant at the accepting side: a
// grant from a trusted identity provider, for this realm, used once, names
// a linked user; the realm issues its own access token for that user.
func (p *Provider) jwtBearer(r *http.Request) (any, error) {
	c, err := p.clientFromRequest(r)
	if err != nil {
		return nil, err
	}
	f := r.PostForm
	if err := once(f, "assertion", "scope"); err != nil {
		return nil, err
	}
	switch {
	case !c.confidential():
		return nil, oidc.ErrUnauthorizedClient().WithDescription("Public client is not allowed to use JWT authorization grants")
	case len(c.grantIdPs) == 0:
		return nil, oidc.ErrUnauthorizedClient().WithDescription("Client is not allowed to use JWT authorization grants")
	case f.Get("assertion") == "":
		return nil, oidc.ErrInvalidRequest().WithDescription("Missing parameter: assertion")
	}
	raw := f.Get("assertion")
	typ, unverified, err := jwtcheck.Peek(raw)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("Invalid assertion")
	}
	idp := p.realm.idpByIssuer(unverified.Issuer)
	if idp == nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion issuer is not trusted")
	}
	if !slices.Contains(c.grantIdPs, idp.alias) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("Client is not allowed to use grants of this identity provider")
	}
	if !slices.Contains(idp.types, normalizeTyp(typ)) {
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion typ is not accepted")
	}
	payload, a, err := jwtcheck.Verify(r.Context(), p.idpKeys[idp.alias], raw)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("Invalid assertion signature")
	}
	now := p.now()
	switch {
	case a.Issuer != idp.issuer:
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion issuer is not trusted")
	case !p.realm.forRealm(a.Audience):
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion audience is not this realm")
	case a.ID == "":
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion jti is required")
	case a.Subject == "":
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion sub is required")
	case normalizeTyp(typ) == typeIDJAG && a.ClientID != c.id:
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion client_id is not the client")
	}
	if err := a.CheckTimes(now, idp.maxLifetime, idp.skew); err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion %v", err)
	}
	var all map[string]any
	if err := json.Unmarshal(payload, &all); err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("Invalid assertion")
	}
	name, _ := all[idp.userClaim].(string)
	user := idp.users[name]
	if name == "" || user == nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("No user is linked to the assertion's subject")
	}
	aud := append(slices.Clone(f["audience"]), f["resource"]...)
	for _, t := range aud {
		if !slices.Contains(c.grantAudiences, t) {
			return nil, &oidc.Error{ErrorType: oidc.InvalidTarget, Description: "Requested audience not available"}
		}
	}
	if len(aud) == 0 {
		aud = []string{c.id}
		if len(c.grantAudiences) > 0 {
			aud = c.grantAudiences[:1]
		}
	}
	slices.Sort(aud)
	aud = slices.Compact(aud)
	if err := p.replay.Use("grant\x00"+idp.issuer+"\x00"+a.ID, a.Expiry.Time().Add(idp.skew), now); err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("Assertion %v", err)
	}

	scopes := strings.Fields(f.Get("scope"))
	if len(scopes) == 0 {
		scopes = strings.Fields(a.Scope)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile}
	}
	req := &tokenRequest{principal: user, audience: aud, scopes: scopes, clientID: c.id, roles: aud}
	return p.accessToken(r.Context(), req, c, now)
}

// sign makes a JWT of claims with the current key and the given typ header.
func (s *storage) sign(claims map[string]any, typ string) (string, error) {
	s.mu.RLock()
	k := s.keys[len(s.keys)-1]
	s.mu.RUnlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
