// Package jwttest signs JWTs with RSA keys of its own, for tests that play a
// party an identity provider trusts (a client with private_key_jwt, a peer's
// grant) or one it does not.
package jwttest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
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
