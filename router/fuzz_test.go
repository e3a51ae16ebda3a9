package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// FuzzOpenSession: whatever a client sends as Mcp-Session-Id, open never
// panics and accepts only what the sealer sealed.
func FuzzOpenSession(f *testing.F) {
	s, err := newSealer([][]byte{bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.seal(&session{ID: "a", Subject: "alice", Version: "2025-06-18", Issued: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add(good[:len(good)-1])
	f.Fuzz(func(t *testing.T, id string) {
		v, err := s.open(id)
		// A forged id would need the key: only what was sealed above opens.
		if err == nil && (v.ID != "a" || v.Subject != "alice") {
			t.Fatalf("opened a session that was never sealed: %q", id)
		}
	})
}

// FuzzSSE: the event reader never panics and never returns more than its
// bound per event.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("event: message\ndata: {\"a\":1}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: comment\n\nid: 1\n"))
	f.Add([]byte("data:" + string(bytes.Repeat([]byte("x"), 100)) + "\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := upstream.NewSSEReader(bytes.NewReader(in), 64)
		for range 1000 {
			data, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, upstream.ErrEventTooLarge) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if len(data) > 64 {
				t.Fatalf("event of %d bytes over the bound", len(data))
			}
		}
	})
}

// FuzzIDKey: idKey never panics, and what it accepts keeps its value: a
// string its decoded text, a number the integer JSON reads it as.
func FuzzIDKey(f *testing.F) {
	for _, s := range []string{`"a"`, `"\u0061"`, `"a\/b"`, `1`, `-0`, `1.0`, `1e2`, `70E-1`, `1.5`, `9007199254740991`, `1e999999999`, `0e-5`, `null`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		key, ok := idKey(json.RawMessage(in))
		if !ok {
			return
		}
		var v any
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatalf("accepted %q, which is not JSON: %v", in, err)
		}
		switch v := v.(type) {
		case string:
			if key != "s"+v {
				t.Fatalf("%q: key %q, want the decoded string", in, key)
			}
		case float64:
			n, err := strconv.ParseInt(strings.TrimPrefix(key, "n"), 10, 64)
			if err != nil || !strings.HasPrefix(key, "n") || float64(n) != v || n > maxSafeID || n < -maxSafeID {
				t.Fatalf("%q: key %q, want the integer %v", in, key, v)
			}
		default:
			t.Fatalf("accepted %q, neither a string nor a number", in)
		}
	})
}
