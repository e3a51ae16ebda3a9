package assertion

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Unix(1_800_000_000, 0)

func edPair(t testing.TB) (Key, Key) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Ed25519Key(priv), Ed25519PublicKey(pub)
}

func hmacPair(t testing.TB) (Key, Key) {
	t.Helper()
	k, err := HMACKey([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k, k
}

func TestSignVerify(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`)
	want := Claims{
		Method: "tools/call", Server: "ns/a", Tool: "x", Issuer: "https://idp/realms/a", Subject: "alice",
		CallerExpiry: t0.Add(time.Hour), Credential: CredentialHash("Bearer for-ns-a"),
		BodyHash: BodyHash(body), IssuedAt: t0, Expiry: t0.Add(Lifetime),
	}
	for _, tc := range []struct {
		name string
		keys func(testing.TB) (Key, Key)
	}{
		{name: "ed25519", keys: edPair},
		{name: "hmac", keys: hmacPair},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sk, vk := tc.keys(t)
			c := want
			c.Expiry = time.Time{}
			v, err := NewSigner(sk).Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := NewVerifier(vk).Verify(v, body, t0.Add(10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerifyErrors(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	sk, vk := edPair(t)
	otherSK, _ := edPair(t)
	hk, _ := hmacPair(t)
	sign := func(k Key, c Claims) string {
		v, err := NewSigner(k).Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := Claims{Method: "tools/list", BodyHash: BodyHash(body), IssuedAt: t0}
	valid := sign(sk, good)
	enc, sig, _ := strings.Cut(valid, ".")
	for _, tc := range []struct {
		name  string
		value string
		body  []byte
		now   time.Time
		want  error
	}{
		{name: "missing", value: "", want: ErrMissing},
		{name: "one segment", value: enc, want: ErrInvalid},
		{name: "three segments", value: valid + ".x", want: ErrInvalid},
		{name: "bad signature encoding", value: enc + ".!!", want: ErrInvalid},
		{name: "tampered payload", value: b64.EncodeToString([]byte(`{"method":"tools/call","bh":"x","iat":1,"exp":2}`)) + "." + sig, want: ErrInvalid},
		{name: "other key", value: sign(otherSK, good), want: ErrInvalid},
		{name: "hmac for ed25519 verifier", value: sign(hk, good), want: ErrInvalid},
		{name: "too long", value: strings.Repeat("a", maxValue+1), want: ErrInvalid},
		{name: "expired", value: valid, now: t0.Add(Lifetime), want: ErrExpired},
		{name: "issued in the future", value: valid, now: t0.Add(-time.Minute), want: ErrInvalid},
		{name: "lifetime too long", value: sign(sk, Claims{Method: "m", BodyHash: BodyHash(body), IssuedAt: t0, Expiry: t0.Add(time.Hour)}), want: ErrInvalid},
		{name: "no body hash", value: sign(sk, Claims{Method: "m", IssuedAt: t0}), want: ErrInvalid},
		{name: "no method (GET or DELETE)", value: sign(sk, Claims{BodyHash: BodyHash(body), IssuedAt: t0})},
		{name: "other body", value: valid, body: []byte(`{}`), want: ErrBodyMismatch},
		{name: "valid", value: valid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := body
			if tc.body != nil {
				b = tc.body
			}
			now := tc.now
			if now.IsZero() {
				now = t0.Add(time.Second)
			}
			_, err := NewVerifier(vk).Verify(tc.value, b, now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignWithPublicKeyFails(t *testing.T) {
	_, pub := edPair(t)
	if _, err := NewSigner(pub).Sign(Claims{Method: "m", BodyHash: "h"}); err == nil {
		t.Fatal("Sign with a public key succeeded")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(strings.Repeat("k", 40))
	files := map[string][]byte{
		"ed.pem":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"edpub.pem":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		"rsa.pem":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}),
		"cert.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}),
		"hmac.b64":   []byte(base64.StdEncoding.EncodeToString(secret) + "\n"),
		"hmac.raw":   secret,
		"short.raw":  []byte("short"),
		"short.b64":  []byte(base64.StdEncoding.EncodeToString([]byte("short")) + "\n"),
		"badpk8.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	body := []byte("b")
	for _, tc := range []struct {
		name     string
		sign     string
		verify   string
		wantLoad bool
	}{
		{name: "ed25519 private and public", sign: "ed.pem", verify: "edpub.pem", wantLoad: true},
		{name: "ed25519 private both sides", sign: "ed.pem", verify: "ed.pem", wantLoad: true},
		{name: "hmac base64 and raw are the same secret", sign: "hmac.b64", verify: "hmac.raw", wantLoad: true},
		{name: "rsa rejected", sign: "rsa.pem"},
		{name: "certificate rejected", sign: "cert.pem"},
		{name: "short raw rejected", sign: "short.raw"},
		{name: "short base64 rejected", sign: "short.b64"},
		{name: "bad pkcs8 rejected", sign: "badpk8.pem"},
		{name: "no file", sign: "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sk, err := LoadKey(filepath.Join(dir, tc.sign))
			if (err == nil) != tc.wantLoad {
				t.Fatalf("LoadKey(%s) err = %v, want load %v", tc.sign, err, tc.wantLoad)
			}
			if !tc.wantLoad {
				return
			}
			vk, err := LoadKey(filepath.Join(dir, tc.verify))
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewSigner(sk).Sign(Claims{Method: "m", BodyHash: BodyHash(body), IssuedAt: t0})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewVerifier(vk).Verify(v, body, t0); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewSigner(a).Sign(Claims{Method: "m", BodyHash: BodyHash(nil), IssuedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewVerifier(a).Verify(v, nil, t0); err != nil {
		t.Errorf("same key: %v", err)
	}
	if _, err := NewVerifier(b).Verify(v, nil, t0); !errors.Is(err, ErrInvalid) {
		t.Errorf("other generated key: %v, want ErrInvalid", err)
	}
}

// FuzzVerify checks that Verify never panics and that whatever it accepts
// carries a signature the key made.
func FuzzVerify(f *testing.F) {
	k, err := HMACKey([]byte(strings.Repeat("f", 32)))
	if err != nil {
		f.Fatal(err)
	}
	good, err := NewSigner(k).Sign(Claims{Method: "tools/list", BodyHash: BodyHash([]byte("{}")), IssuedAt: t0})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, []byte("{}"))
	v := NewVerifier(k)
	f.Fuzz(func(t *testing.T, value string, body []byte) {
		c, err := v.Verify(value, body, t0)
		if err != nil {
			return
		}
		if c.BodyHash != BodyHash(body) || !t0.Before(c.Expiry) {
			t.Fatalf("accepted bad claims %+v", c)
		}
		enc, sig, _ := strings.Cut(value, ".")
		want, _ := k.sign(nil, signedMessage(k, enc))
		if b64.EncodeToString(want) != sig {
			t.Fatalf("accepted a signature the key did not make: %q", value)
		}
	})
}

func benchKeys(b *testing.B) []struct {
	name string
	k    Key
} {
	ed, _ := edPair(b)
	h, _ := hmacPair(b)
	return []struct {
		name string
		k    Key
	}{{"ed25519", ed}, {"hmac", h}}
}

func BenchmarkSign(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pods_list","arguments":{}}}`)
	for _, bk := range benchKeys(b) {
		b.Run(bk.name, func(b *testing.B) {
			s := NewSigner(bk.k)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(Claims{Method: "tools/call", Server: "ns/kube", Tool: "pods_list", Subject: "alice", BodyHash: BodyHash(body), IssuedAt: t0}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pods_list","arguments":{}}}`)
	for _, bk := range benchKeys(b) {
		b.Run(bk.name, func(b *testing.B) {
			val, err := NewSigner(bk.k).Sign(Claims{Method: "tools/call", Server: "ns/kube", Tool: "pods_list", Subject: "alice", BodyHash: BodyHash(body), IssuedAt: t0})
			if err != nil {
				b.Fatal(err)
			}
			v := NewVerifier(bk.k)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(val, body, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestHTTPHeaderIsHeader(t *testing.T) {
	if got := http.CanonicalHeaderKey(Header); got != HTTPHeader {
		t.Errorf("HTTPHeader = %q, the canonical form of %q is %q", HTTPHeader, Header, got)
	}
}

// signedMessage is the message a key signs for the encoded payload.
func signedMessage(k Key, payload string) []byte {
	return append(appendMessagePrefix(nil, k.alg()), payload...)
}
