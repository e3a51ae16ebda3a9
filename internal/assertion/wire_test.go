package assertion

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeWire: the hand-read compact form and encoding/json agree on
// every payload: the same claims when the compact reader takes it, and
// encoding/json (strict, nothing after the object) then accepts it too.
func FuzzDecodeWire(f *testing.F) {
	for _, s := range []string{
		`{"method":"tools/call","server":"ns/a","tool":"x","iss":"https://idp","sub":"alice","cexp":1800003600,"cred":"abc","bh":"h","iat":1800000000,"exp":1800000030}`,
		`{"method":"","bh":"h","iat":-0,"exp":1}`,
		`{"method":"a","method":"b","bh":"h","iat":1,"exp":2}`,
		`{"Method":"a","bh":"h","iat":1,"exp":2}`,
		`{"method":"a\u00e9","bh":"h","iat":1,"exp":2}`,
		`{"method":"a","bh":"h","iat":1.0,"exp":2}`,
		`{"method":"a","bh":"h","iat":99999999999999999999,"exp":2}`,
		`{"method":"a","bh":"h","iat":1,"exp":2,}`,
		`{"method":"a","bh":"h","iat":1,"exp":2} `,
		`{"method":"a","bh":"h","iat":1,"exp":2}{}`,
		`{"method":null,"bh":"h","iat":1,"exp":2}`,
		`{"other":1}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var fast wire
		took := compactWire(string(payload), &fast)
		var slow wire
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		err := dec.Decode(&slow)
		if err == nil && dec.More() {
			err = errTrailing
		}
		if took && err != nil {
			t.Fatalf("compact reader took %q, encoding/json refuses it: %v", payload, err)
		}
		if took && fast != slow {
			t.Fatalf("%q: compact reader %+v, encoding/json %+v", payload, fast, slow)
		}
		got, gotErr := decodeWire(payload)
		if (gotErr == nil) != (err == nil) || (err == nil && got != slow) {
			t.Fatalf("%q: decodeWire %+v %v, encoding/json %+v %v", payload, got, gotErr, slow, err)
		}
	})
}

// TestDecodeWireCompact: what the Signer writes is read without
// encoding/json (the fast path is taken, not only agreed with).
func TestDecodeWireCompact(t *testing.T) {
	v, err := NewSigner(mustHMAC(t)).Sign(Claims{
		Method: "tools/call", Server: "ns/a", Tool: "x", Issuer: "https://idp/realms/a", Subject: "alice",
		CallerExpiry: t0.Add(time.Hour), Credential: CredentialHash("Bearer t"), BodyHash: BodyHash(nil), IssuedAt: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	enc, _, _ := strings.Cut(v, ".")
	payload, err := b64.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	var w wire
	if !compactWire(string(payload), &w) {
		t.Fatalf("the Signer's payload %s is not read by the compact reader", payload)
	}
	want := wire{Method: "tools/call", Server: "ns/a", Tool: "x", Issuer: "https://idp/realms/a", Subject: "alice",
		CallerExp: t0.Add(time.Hour).Unix(), Cred: CredentialHash("Bearer t"), BodyHash: BodyHash(nil), IssuedAt: t0.Unix(), Expiry: t0.Add(Lifetime).Unix()}
	if w != want {
		t.Errorf("compact reader %+v, want %+v", w, want)
	}
}

func mustHMAC(t testing.TB) Key {
	t.Helper()
	k, _ := hmacPair(t)
	return k
}
