package session

import (
	"bytes"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/seal"
	"github.com/mcp-authz/mcp-authz/router/mrtr"
)

// TestSessionEncoding: a session survives sealing whole, and nothing but
// the encoding's own bytes decodes.
func TestSessionEncoding(t *testing.T) {
	s := &Record{ID: "id", Issuer: "https://idp", Subject: "alice", Version: "2025-06-18", Issued: -5,
		Caps: []byte(`{"elicitation":{}}`), Info: []byte(`{"name":"c"}`)}
	b := s.marshal()
	got, err := unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != s.ID || got.Issuer != s.Issuer || got.Subject != s.Subject || got.Version != s.Version ||
		got.Issued != s.Issued || string(got.Caps) != string(s.Caps) || string(got.Info) != string(s.Info) {
		t.Errorf("round trip: %+v, want %+v", got, s)
	}
	for i := range b {
		if _, err := unmarshal(b[:i]); err == nil {
			t.Errorf("a prefix of %d bytes decoded", i)
		}
	}
	if _, err := unmarshal(append(b, 0)); err == nil {
		t.Error("trailing bytes decoded")
	}
	if _, err := unmarshal([]byte(`{"i":"a","v":"2025-06-18"}`)); err == nil {
		t.Error("the former JSON encoding decoded")
	}
}

// FuzzOpenSession: whatever a client sends as Mcp-Session-Id, open never
// panics and accepts only what the sealer sealed.
func FuzzOpenSession(f *testing.F) {
	s, err := seal.New([][]byte{bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		f.Fatal(err)
	}
	good, err := Seal(s, &Record{ID: "a", Subject: "alice", Version: "2025-06-18", Issued: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add(good[:len(good)-1])
	f.Fuzz(func(t *testing.T, id string) {
		v, err := Open(s, id)
		// A forged id would need the key: only what was sealed above opens.
		if err == nil && (v.ID != "a" || v.Subject != "alice") {
			t.Fatalf("opened a session that was never sealed: %q", id)
		}
	})
}

// TestInputStateSeparateFromSessions: a requestState never opens as a
// session id or a session, nor a session id as a requestState (the
// encoding itself is held by mrtr's TestState).
func TestInputStateSeparateFromSessions(t *testing.T) {
	s, err := seal.New([][]byte{bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	st := mrtr.State{Handle: "h", Issuer: "i", Subject: "s", Server: "ns/a", Method: "tools/call", Name: "x", Expires: 42}
	sealed, err := mrtr.Seal(s, st)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := mrtr.Open(s, sealed); err != nil || got != st {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := s.Open(sealed, aad); err == nil {
		t.Error("a requestState opened as a session id")
	}
	if _, err := Open(s, sealed); err == nil {
		t.Error("a requestState opened as a session")
	}
	sid, err := Seal(s, &Record{Issuer: "i", Subject: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mrtr.Open(s, sid); err == nil {
		t.Error("a session id opened as a requestState")
	}
}
