// Package jwttest signs JWTs with RSA keys of its own, for tests that play a
// party an identity provider trusts (a client with private_key_jwt, a peer's
// grant) or one it does not.
package jwttest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is an RSA signing key and its key id.
type Key struct {
	Private *rsa.PrivateKey
	KID     string
}

// NewKey makes a 2048-bit RSA key with a random key id.
func NewKey(t testing.TB) Key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Private: k, KID: rand.Text()}
}

// JWKS is the JSON Web Key Set of k's public key.
func (k Key) JWKS(t testing.TB) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.Private.PublicKey, KeyID: k.KID, Algorithm: "RS256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Sign is the compact RS256 JWS of claims with k's kid and, unless typ is
// "", that typ header.
func (k Key) Sign(t testing.TB, claims map[string]any, typ string) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.Private, KeyID: k.KID}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// ClientAssertion is a private_key_jwt assertion (RFC 7523 section 2.2) of
// client id for aud, valid for a minute, with a fresh jti.
func (k Key) ClientAssertion(t testing.TB, id, aud string) string {
	t.Helper()
	now := time.Now().Unix()
	return k.Sign(t, map[string]any{"iss": id, "sub": id, "aud": aud, "iat": now, "exp": now + 60, "jti": rand.Text()}, "")
}

// Header decodes a JWT's JOSE header without verifying it.
func Header(t testing.TB, raw string) map[string]any {
	t.Helper()
	return part(t, raw, 0)
}

// Claims decodes a JWT's claims without verifying it (for tests that check
// what was issued; verify with go-oidc where it matters).
func Claims(t testing.TB, raw string) map[string]any {
	t.Helper()
	return part(t, raw, 1)
}

// part decodes the i-th dot-separated part of a compact JWS as a JSON object.
func part(t testing.TB, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("jwttest: not a compact JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Pick keeps the named claims of c, an aud string as a one-element list.
func Pick(c map[string]any, names ...string) map[string]any {
	out := map[string]any{}
	for _, n := range names {
		if v, ok := c[n]; ok {
			out[n] = v
		}
	}
	if a, ok := out["aud"].(string); ok {
		out["aud"] = []any{a}
	}
	return out
}
