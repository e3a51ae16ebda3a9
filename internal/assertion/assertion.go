// Package assertion signs and verifies the short-lived x-mcp-authz header by
// which authz vouches to the router for one request body.
package assertion

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Header is the request header that carries the assertion, as Envoy
// spells header names; HTTPHeader is the same name in Go's canonical form
// (an http.Header lookup by it converts nothing).
const (
	Header     = "x-mcp-authz"
	HTTPHeader = "X-Mcp-Authz"
)

// Lifetime is how long an assertion stays valid after it is issued.
const Lifetime = 30 * time.Second

// maxValue bounds the header value Verify accepts.
const maxValue = 8 << 10

// Sentinel errors; Verify wraps them with detail.
var (
	ErrMissing      = errors.New("assertion: missing")
	ErrInvalid      = errors.New("assertion: invalid")
	ErrExpired      = errors.New("assertion: expired")
	ErrBodyMismatch = errors.New("assertion: body hash mismatch")
)

// Claims is what authz vouches for: the request it allowed and for whom.
type Claims struct {
	Method  string // JSON-RPC method; "" for a response, GET or DELETE
	Server  string // target server (namespace/name); "" when none
	Tool    string // unprefixed tool or prompt name; "" when none
	Issuer  string // caller token's issuer; "" for anonymous callers
	Subject string // caller's subject; "" for anonymous callers
	// CallerExpiry is when the caller's token expires; zero for anonymous
	// callers. The router ends what it holds open for the caller by then.
	CallerExpiry time.Time
	// Credential is CredentialHash of the Authorization header value authz
	// set for Server (a token obtained for that server); "" when it set none
	// and the header, if any, is still the caller's own. The router forwards
	// the header it received only when it hashes to this.
	Credential string
	BodyHash   string // BodyHash of the request body
	IssuedAt   time.Time
	Expiry     time.Time
}

// wire is the signed JSON form of Claims.
type wire struct {
	Method    string `json:"method"`
	Server    string `json:"server,omitempty"`
	Tool      string `json:"tool,omitempty"`
	Issuer    string `json:"iss,omitempty"`
	Subject   string `json:"sub,omitempty"`
	CallerExp int64  `json:"cexp,omitempty"`
	Cred      string `json:"cred,omitempty"`
	BodyHash  string `json:"bh"`
	IssuedAt  int64  `json:"iat"`
	Expiry    int64  `json:"exp"`
}

var b64 = base64.RawURLEncoding

// BodyHash is the SHA-256 of body, base64url without padding.
func BodyHash(body []byte) string {
	return hashString(sha256.Sum256(body))
}

// hashString is sum in base64url without padding, made in one allocation
// (EncodeToString takes two).
func hashString(sum [sha256.Size]byte) string {
	var buf [43]byte
	return string(b64.AppendEncode(buf[:0], sum[:]))
}

// hashes reports whether h is BodyHash(body), without allocating.
func hashes(h string, body []byte) bool {
	sum := sha256.Sum256(body)
	var buf [43]byte // base64url of 32 bytes, unpadded
	return h == string(b64.AppendEncode(buf[:0], sum[:]))
}

// CredentialHash is the SHA-256 of an Authorization header value, base64url
// without padding: it names the credential in Claims without carrying it.
func CredentialHash(authorization string) string {
	return hashString(sha256.Sum256([]byte(authorization)))
}

// Signer mints assertions with one key.
type Signer struct{ key Key }

// NewSigner returns a Signer using k, which must hold a private or secret key.
func NewSigner(k Key) *Signer { return &Signer{key: k} }

// Sign encodes c as base64url(JSON) "." base64url(signature). A zero
// IssuedAt means now; a zero Expiry means IssuedAt + Lifetime.
func (s *Signer) Sign(c Claims) (string, error) {
	if c.IssuedAt.IsZero() {
		c.IssuedAt = time.Now()
	}
	if c.Expiry.IsZero() {
		c.Expiry = c.IssuedAt.Add(Lifetime)
	}
	w := wire{
		Method: c.Method, Server: c.Server, Tool: c.Tool, Issuer: c.Issuer, Subject: c.Subject,
		Cred: c.Credential, BodyHash: c.BodyHash, IssuedAt: c.IssuedAt.Unix(), Expiry: c.Expiry.Unix(),
	}
	if !c.CallerExpiry.IsZero() {
		w.CallerExp = c.CallerExpiry.Unix()
	}
	var scratch [384]byte
	payload, ok := appendWire(scratch[:0], &w)
	if !ok {
		var err error
		if payload, err = json.Marshal(w); err != nil {
			return "", fmt.Errorf("assertion: sign: %w", err)
		}
	}
	// One buffer: the signed message (appendMessagePrefix, then the
	// payload), the signature's encoding after it, and the raw signature at
	// the end, past where its encoding goes; the assertion is what follows
	// the message's prefix.
	alg := s.key.alg()
	pre := len(messagePrefix) + len(alg) + 1
	n := pre + b64.EncodedLen(len(payload)) + 1 + b64.EncodedLen(maxSignature)
	buf := make([]byte, n+maxSignature)
	out := b64.AppendEncode(appendMessagePrefix(buf[:0], alg), payload)
	sig, err := s.key.sign(buf[n:n], out)
	if err != nil {
		return "", fmt.Errorf("assertion: sign: %w", err)
	}
	out = append(out, '.')
	return string(b64.AppendEncode(out, sig)[pre:]), nil
}

// maxSignature is the longest signature of a Key: Ed25519's and HMAC-SHA256's
// are 64 and 32 bytes.
const maxSignature = 64

// Verifier checks assertions with one key.
type Verifier struct{ key Key }

// NewVerifier returns a Verifier using k (for Ed25519 the public key is enough).
func NewVerifier(k Key) *Verifier { return &Verifier{key: k} }

// Verify checks the signature of value, that it is valid at now and that it
// was issued for body, and returns its claims.
func (v *Verifier) Verify(value string, body []byte, now time.Time) (Claims, error) {
	if value == "" {
		return Claims{}, ErrMissing
	}
	if len(value) > maxValue {
		return Claims{}, fmt.Errorf("%w: too long", ErrInvalid)
	}
	enc, sigEnc, ok := strings.Cut(value, ".")
	if !ok || strings.Contains(sigEnc, ".") {
		return Claims{}, fmt.Errorf("%w: not two segments", ErrInvalid)
	}
	// One buffer: the signed message, the signature, the payload.
	alg := v.key.alg()
	msgLen := len(messagePrefix) + len(alg) + 1 + len(enc)
	buf := make([]byte, 0, msgLen+b64.DecodedLen(len(sigEnc))+b64.DecodedLen(len(enc)))
	buf = append(appendMessagePrefix(buf, alg), enc...)
	buf, err := b64.AppendDecode(buf, []byte(sigEnc))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature encoding", ErrInvalid)
	}
	if !v.key.verify(buf[:msgLen:msgLen], buf[msgLen:len(buf):len(buf)]) {
		return Claims{}, fmt.Errorf("%w: signature", ErrInvalid)
	}
	sigEnd := len(buf)
	buf, err = b64.AppendDecode(buf, []byte(enc))
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload encoding", ErrInvalid)
	}
	payload := buf[sigEnd:]
	w, err := decodeWire(payload)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload", ErrInvalid)
	}
	if w.BodyHash == "" || w.Expiry <= w.IssuedAt || w.Expiry-w.IssuedAt > int64(Lifetime/time.Second) {
		return Claims{}, fmt.Errorf("%w: claims", ErrInvalid)
	}
	c := Claims{
		Method: w.Method, Server: w.Server, Tool: w.Tool, Issuer: w.Issuer, Subject: w.Subject,
		Credential: w.Cred, BodyHash: w.BodyHash, IssuedAt: time.Unix(w.IssuedAt, 0), Expiry: time.Unix(w.Expiry, 0),
	}
	if w.CallerExp != 0 {
		c.CallerExpiry = time.Unix(w.CallerExp, 0)
	}
	// Seconds resolution: allow one second of clock skew for IssuedAt.
	if c.IssuedAt.After(now.Add(time.Second)) {
		return Claims{}, fmt.Errorf("%w: issued in the future", ErrInvalid)
	}
	if !now.Before(c.Expiry) {
		return Claims{}, ErrExpired
	}
	if !hashes(c.BodyHash, body) {
		return Claims{}, ErrBodyMismatch
	}
	return c, nil
}

// messagePrefix starts every signed message.
const messagePrefix = "x-mcp-authz/v1/"

// appendMessagePrefix appends what precedes the payload in a signed
// message: messagePrefix, the algorithm and a dot. The algorithm is bound to
// the signed bytes so that an assertion made for one algorithm never
// verifies under another.
func appendMessagePrefix(m []byte, alg string) []byte {
	m = append(m, messagePrefix...)
	m = append(m, alg...)
	return append(m, '.')
}
