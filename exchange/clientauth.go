package exchange

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// clientAssertionType is RFC 7523 section 2.2's client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is the life of a private_key_jwt assertion.
const assertionLifetime = time.Minute

// credential authenticates the gateway at one token endpoint.
type credential interface {
	// apply adds the client's authentication to a token request.
	apply(form url.Values, h http.Header, now time.Time) error
}

// secretCredential is client_secret_basic or client_secret_post.
type secretCredential struct {
	id, secret string
	post       bool
}

func (c *secretCredential) apply(form url.Values, h http.Header, _ time.Time) error {
	if c.post {
		form.Set("client_id", c.id)
		form.Set("client_secret", c.secret)
		return nil
	}
	// RFC 6749 section 2.3.1: id and secret are form-urlencoded before they
	// are joined and base64-encoded.
	r := http.Request{Header: h}
	r.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	return nil
}

// keyCredential is private_key_jwt: a fresh RFC 7523 client assertion,
// iss = sub = the client, per call.
type keyCredential struct {
	id, aud string
	signer  jose.Signer
}

func (c *keyCredential) apply(form url.Values, _ http.Header, now time.Time) error {
	claims, err := json.Marshal(map[string]any{
		"iss": c.id, "sub": c.id, "aud": c.aud, "jti": rand.Text(),
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	})
	if err != nil {
		return err
	}
	jws, err := c.signer.Sign(claims)
	if err != nil {
		return fmt.Errorf("signing the client assertion: %w", err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return fmt.Errorf("signing the client assertion: %w", err)
	}
	form.Set("client_id", c.id)
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", raw)
	return nil
}

// federatedCredential sends a token another issuer gave the gateway (a
// projected service-account token) as its client assertion, read from its
// file on every call: the kubelet rotates it in place.
type federatedCredential struct {
	id, file string
}

func (c *federatedCredential) apply(form url.Values, _ http.Header, _ time.Time) error {
	tok, err := readFile(c.file)
	if err != nil {
		return fmt.Errorf("federated token: %w", err)
	}
	form.Set("client_id", c.id)
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", tok)
	return nil
}

// credential builds the step's client authentication; its errors are
// *field.Error relative to the step. It reads the secret or key file.
func (s Step) credential() (credential, error) {
	set := 0
	for _, v := range []string{s.ClientSecretFile, s.ClientSecretEnv, s.PrivateKeyFile, s.FederatedTokenFile} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return nil, field.Errorf("clientSecretFile", "exactly one of clientSecretFile, clientSecretEnv, privateKeyFile and federatedTokenFile is required")
	}
	secret := s.ClientSecretFile != "" || s.ClientSecretEnv != ""
	switch {
	case s.AuthStyle != "" && !secret:
		return nil, field.Errorf("authStyle", "applies to a client secret only")
	case s.AuthStyle != "" && s.AuthStyle != "basic" && s.AuthStyle != "post":
		return nil, field.Errorf("authStyle", "%q: want basic or post", s.AuthStyle)
	case (s.KeyID != "" || s.Algorithm != "" || s.AssertionAudience != "") && s.PrivateKeyFile == "":
		return nil, field.Errorf("privateKeyFile", "keyID, algorithm and assertionAudience need privateKeyFile")
	}
	switch {
	case secret:
		v, err := readSecret(s.ClientSecretFile, s.ClientSecretEnv)
		if err != nil {
			return nil, err
		}
		return &secretCredential{id: s.ClientID, secret: v, post: s.AuthStyle == "post"}, nil
	case s.PrivateKeyFile != "":
		signer, err := keySigner(s.PrivateKeyFile, s.KeyID, s.Algorithm)
		if err != nil {
			return nil, err
		}
		aud := s.AssertionAudience
		if aud == "" {
			aud = s.TokenURL
		}
		return &keyCredential{id: s.ClientID, aud: aud, signer: signer}, nil
	default:
		if _, err := readFile(s.FederatedTokenFile); err != nil {
			return nil, &field.Error{Path: "federatedTokenFile", Err: err}
		}
		return &federatedCredential{id: s.ClientID, file: s.FederatedTokenFile}, nil
	}
}

// keySigner reads a PEM private key and returns a signer of alg (or the
// key's default algorithm); errors are *field.Error.
func keySigner(file, kid, alg string) (jose.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, &field.Error{Path: "privateKeyFile", Err: err}
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, field.Errorf("privateKeyFile", "%s: no PEM block", file)
	}
	var key crypto.Signer
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		key, _ = k.(crypto.Signer)
	} else if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		key = k
	}
	var algs []jose.SignatureAlgorithm
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, field.Errorf("privateKeyFile", "%s: an RSA key needs at least 2048 bits", file)
		}
		algs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512}
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			algs = []jose.SignatureAlgorithm{jose.ES256}
		case elliptic.P384():
			algs = []jose.SignatureAlgorithm{jose.ES384}
		case elliptic.P521():
			algs = []jose.SignatureAlgorithm{jose.ES512}
		}
	case ed25519.PrivateKey:
		algs = []jose.SignatureAlgorithm{jose.EdDSA}
	}
	if len(algs) == 0 {
		return nil, field.Errorf("privateKeyFile", "%s: not an RSA, EC (P-256/384/521) or Ed25519 private key", file)
	}
	a := algs[0]
	if alg != "" {
		a = jose.SignatureAlgorithm(alg)
		ok := false
		for _, x := range algs {
			ok = ok || x == a
		}
		if !ok {
			return nil, field.Errorf("algorithm", "%q does not fit the key: want one of %v", alg, algs)
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: a, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, &field.Error{Path: "privateKeyFile", Err: err}
	}
	return signer, nil
}

// readFile reads a token or secret file, without its trailing newline; an
// empty file is an error. The content never appears in an error.
func readFile(file string) (string, error) {
	if file == "" {
		return "", errors.New("required")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	s := trimSecret(b)
	if s == "" {
		return "", fmt.Errorf("%s: empty", file)
	}
	return s, nil
}
