package assertion

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"os"
	"sync"
)

// MinSecret is the shortest HMAC-SHA256 secret accepted, in bytes.
const MinSecret = 32

// Key signs or verifies assertions: an Ed25519 key pair (or public key, to
// verify only) or an HMAC-SHA256 secret.
type Key interface {
	alg() string
	sign(dst, msg []byte) ([]byte, error) // appends the signature of msg to dst
	verify(msg, sig []byte) bool
}

// LoadKey reads a key file: a PEM "PRIVATE KEY" (PKCS#8 Ed25519) or
// "PUBLIC KEY" (PKIX Ed25519, verification only); otherwise an HMAC secret,
// the base64 (standard or URL, padded or not) decoding of the trimmed file
// when it decodes to at least MinSecret bytes, else the raw file bytes.
func LoadKey(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("assertion: load key: %w", err)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("assertion: load key %s: %w", path, err)
	}
	return k, nil
}

// ParseKey parses the contents of a key file as LoadKey does.
func ParseKey(data []byte) (Key, error) {
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pkcs8: %w", err)
			}
			priv, ok := k.(ed25519.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("private key is %T, want ed25519", k)
			}
			return edKey{priv: priv, pub: priv.Public().(ed25519.PublicKey)}, nil
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pkix: %w", err)
			}
			pub, ok := k.(ed25519.PublicKey)
			if !ok {
				return nil, fmt.Errorf("public key is %T, want ed25519", k)
			}
			return edKey{pub: pub}, nil
		default:
			return nil, fmt.Errorf("pem block %q", block.Type)
		}
	}
	text := bytes.TrimSpace(data)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if dec, err := enc.DecodeString(string(text)); err == nil && len(dec) >= MinSecret {
			return HMACKey(dec)
		}
	}
	return HMACKey(data)
}

// HMACKey returns an HMAC-SHA256 key over secret (at least MinSecret bytes).
func HMACKey(secret []byte) (Key, error) {
	if len(secret) < MinSecret {
		return nil, fmt.Errorf("assertion: hmac secret of %d bytes, need at least %d", len(secret), MinSecret)
	}
	return newHMACKey(bytes.Clone(secret)), nil
}

// Ed25519Key returns a key that signs with priv.
func Ed25519Key(priv ed25519.PrivateKey) Key {
	return edKey{priv: priv, pub: priv.Public().(ed25519.PublicKey)}
}

// Ed25519PublicKey returns a key that only verifies, with pub.
func Ed25519PublicKey(pub ed25519.PublicKey) Key { return edKey{pub: pub} }

// GenerateKey returns a fresh random HMAC-SHA256 key, for authz and the
// router running in one process.
func GenerateKey() (Key, error) {
	secret := make([]byte, MinSecret)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("assertion: generate key: %w", err)
	}
	return newHMACKey(secret), nil
}

// hmacKey is an HMAC-SHA256 secret, with its keyed hashes kept for reuse
// (hmac.New hashes the secret each time and allocates six times).
type hmacKey struct {
	macs *sync.Pool // of *macState, keyed with the secret
}

// macState is a keyed hash and room for its sum: a sum written there
// allocates nothing (one written to a caller's stack array escapes through
// hash.Hash).
type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func newHMACKey(secret []byte) hmacKey {
	return hmacKey{macs: &sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, secret)} }}}
}

func (hmacKey) alg() string { return "HS256" }

// mac calls f with the HMAC of msg, valid during the call only.
func (k hmacKey) mac(msg []byte, f func(sum []byte)) {
	m := k.macs.Get().(*macState)
	m.h.Reset()
	m.h.Write(msg)
	f(m.h.Sum(m.sum[:0]))
	k.macs.Put(m)
}

func (k hmacKey) sign(dst, msg []byte) ([]byte, error) {
	k.mac(msg, func(sum []byte) { dst = append(dst, sum...) })
	return dst, nil
}

func (k hmacKey) verify(msg, sig []byte) bool {
	ok := false
	k.mac(msg, func(sum []byte) { ok = hmac.Equal(sum, sig) })
	return ok
}

type edKey struct {
	priv ed25519.PrivateKey // nil: verification only
	pub  ed25519.PublicKey
}

func (edKey) alg() string { return "EdDSA" }

var errNoPrivate = errors.New("ed25519 key holds no private key")

func (k edKey) sign(dst, msg []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, errNoPrivate
	}
	return append(dst, ed25519.Sign(k.priv, msg)...), nil
}

func (k edKey) verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.pub, msg, sig)
}
