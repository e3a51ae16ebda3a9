package exchange

import (
	"encoding/base64"
	"encoding/binary"
	"strings"

	"github.com/mcp-authz/mcp-authz/internal/expiry"
)

// newCache returns the cache of exchanged tokens for Config.CacheSize: 0
// means DefaultCacheSize, a negative value caches nothing. Only a token
// packed by pack is kept with its deadline: its claims come from the
// verifier, which caches them itself, so 100,000 entries cost little more
// than their tokens.
func newCache(size int) *expiry.Cache[[]byte] {
	if size == 0 {
		size = DefaultCacheSize
	}
	return expiry.New[[]byte](size)
}

// pack returns a compact JWS base64url-decoded, a quarter smaller: a
// marker byte 1, the lengths of the header and payload (2 bytes each),
// then the three parts.
// Any other token, or one whose decoding would not give back the same
// text, is kept as it is behind a marker byte 0.
func pack(token string) []byte {
	h, rest, ok := strings.Cut(token, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if ok && ok2 && len(h) < 1<<16 && len(p) < 1<<16 {
		enc := base64.RawURLEncoding
		b := make([]byte, 5, 5+enc.DecodedLen(len(h))+enc.DecodedLen(len(p))+enc.DecodedLen(len(sig)))
		b[0] = 1
		var err error
		for _, part := range []string{h, p, sig} {
			if b, err = enc.AppendDecode(b, []byte(part)); err != nil {
				break
			}
		}
		if err == nil {
			binary.BigEndian.PutUint16(b[1:], uint16(enc.DecodedLen(len(h))))
			binary.BigEndian.PutUint16(b[3:], uint16(enc.DecodedLen(len(p))))
			if unpack(b) == token {
				return b
			}
		}
	}
	return append([]byte{0}, token...)
}

// unpack returns the token that pack packed.
func unpack(b []byte) string {
	if b[0] == 0 {
		return string(b[1:])
	}
	enc := base64.RawURLEncoding
	hn, pn := int(binary.BigEndian.Uint16(b[1:])), int(binary.BigEndian.Uint16(b[3:]))
	h, p, sig := b[5:5+hn], b[5+hn:5+hn+pn], b[5+hn+pn:]
	out := make([]byte, 0, enc.EncodedLen(len(h))+enc.EncodedLen(len(p))+enc.EncodedLen(len(sig))+2)
	out = enc.AppendEncode(out, h)
	out = append(out, '.')
	out = enc.AppendEncode(out, p)
	out = append(out, '.')
	out = enc.AppendEncode(out, sig)
	return string(out)
}
