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

// FuzzAppendWire: what appendWire writes is JSON that encoding/json reads
// back as the same claims and the compact reader takes as they are; what it
// refuses has a string that is not plain.
func FuzzAppendWire(f *testing.F) {
	f.Add("tools/call", "ns/a", "x", "https://idp/realms/a", "alice", "cred", "bh", int64(5), int64(1), int64(2))
	f.Add("", "", "", "", "", "", "", int64(0), int64(0), int64(0))
	f.Add(`a"b`, "\\", "\x01", "é", "<&>", "\u2028", "\xff", int64(-1), int64(-9007199254740993), int64(1<<62))
	f.Fuzz(func(t *testing.T, method, server, tool, iss, sub, cred, bh string, cexp, iat, exp int64) {
		w := wire{Method: method, Server: server, Tool: tool, Issuer: iss, Subject: sub, CallerExp: cexp, Cred: cred, BodyHash: bh, IssuedAt: iat, Expiry: exp}
		out, ok := appendWire([]byte("prefix"), &w)
		if string(out[:6]) != "prefix" {
			t.Fatalf("appendWire changed what was before: %q", out)
		}
		if !ok {
			if len(out) != 6 {
				t.Fatalf("refused but wrote %q", out)
			}
			for _, s := range []string{method, server, tool, iss, sub, cred, bh} {
				if !plain(s) {
					return
				}
			}
			t.Fatalf("refused %+v, every string plain", w)
		}
		payload := out[6:]
		var slow wire
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&slow); err != nil || dec.More() {
			t.Fatalf("%s: encoding/json: %v", payload, err)
		}
		if slow != w {
			t.Fatalf("%s: encoding/json reads %+v, want %+v", payload, slow, w)
		}
		var fast wire
		if !compactWire(string(payload), &fast) && plainInts(w) {
			t.Fatalf("%s: the compact reader does not take it", payload)
		}
	})
}

// plainInts: every integer of w is one the compact reader takes (at most 18
// digits); larger ones are left to encoding/json, which is fine.
func plainInts(w wire) bool {
	for _, v := range []int64{w.CallerExp, w.IssuedAt, w.Expiry} {
		if v >= 1e18 || v <= -1e18 {
			return false
		}
	}
	return true
}
