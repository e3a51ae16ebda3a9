package identity

import (
	"errors"
	"strings"
	"testing"
)

// FuzzBearerToken checks that BearerToken accepts only one bearer token68
// of at most MaxTokenBytes, and classifies everything else.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"Bearer abc.def.ghi", "bearer a==", "Bearer a,Bearer b", "Basic YWxp", "Bearer ", "Bearer  a", "Bearer a b", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := BearerToken(h)
		if err != nil {
			if !errors.Is(err, ErrMissing) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("BearerToken(%q) error %v is neither ErrMissing nor ErrMalformed", h, err)
			}
			if tok != "" {
				t.Fatalf("BearerToken(%q) returned a token with an error", h)
			}
			return
		}
		if !strings.EqualFold(h[:7], "Bearer ") || h[7:] != tok || !token68(tok) || len(tok) > MaxTokenBytes || strings.Contains(tok, ",") {
			t.Fatalf("BearerToken(%q) = %q", h, tok)
		}
	})
}

// FuzzVerify checks that nothing but the provider's own tokens verifies,
// that Verify never panics and that its errors never hold the token.
func FuzzVerify(f *testing.F) {
	p := newProvider(f)
	clk := newClock(start)
	v := newVerifier(f, p, clk, nil)
	good := p.sign(f, "rsa-1", p.claims(clk.Now(), "mcp-gateway"))
	for _, s := range []string{good, good[:len(good)-2], "e30.e30.e30", "..", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(t.Context(), raw)
		if err == nil {
			// Only good itself verifies, up to the encoding of its signature
			// (base64 bits past the last byte are not checked).
			signed := good[:strings.LastIndex(good, ".")+1]
			if !strings.HasPrefix(raw, signed) || id.Subject != "alice-id" {
				t.Fatalf("Verify(%q) accepted a token the provider did not issue", raw)
			}
			return
		}
		if len(raw) > 16 && strings.Contains(err.Error(), raw) {
			t.Fatalf("error %q holds the token", err)
		}
	})
}
