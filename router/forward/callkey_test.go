package forward

import (
	"encoding/json"
	"testing"

	"github.com/mcp-authz/mcp-authz/router/session"
)

// TestCallKey: a call in flight is named by its session and its id's
// value, so that notifications/cancelled finds it however the client
// spells the id, and never finds another session's call or a call whose
// id only looks alike (a string against a number, a bad id against 0).
func TestCallKey(t *testing.T) {
	alice := &session.Record{ID: "s1", Issuer: "https://idp.test", Subject: "alice"}
	bob := &session.Record{ID: "s1", Issuer: "https://idp.test", Subject: "bob"}
	key := func(s *session.Record, id string) callKey { return inflightKey(s, json.RawMessage(id)) }
	for _, tc := range []struct{ a, b string }{
		{"7", "7.0"}, {"7", "7e0"}, {"-3", "-3"}, {"0", "-0"},
		{"9007199254740993", "9007199254740993"}, {`"a"`, `"\u0061"`},
	} {
		if key(alice, tc.a) != key(alice, tc.b) {
			t.Errorf("ids %s and %s name different calls", tc.a, tc.b)
		}
	}
	for _, tc := range []struct{ a, b string }{
		{"7", `"7"`}, {"7", "-7"}, {"7", "8"}, {"0", "null"}, {"0", `"n0"`}, {`""`, "null"}, {"12", "21"},
	} {
		if key(alice, tc.a) == key(alice, tc.b) {
			t.Errorf("ids %s and %s name the same call", tc.a, tc.b)
		}
	}
	if key(alice, "7") == key(bob, "7") {
		t.Error("two callers' calls with one id share a name")
	}
}
