package relay

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// FuzzUnwrapID: ids relayed to clients round-trip, and anything else a
// client sends back is refused without a panic.
func FuzzUnwrapID(f *testing.F) {
	opts := mcpparse.Options{MaxBytes: 4 << 20, AnyNumberID: true} // as the router reads a client's message
	f.Add("ns/a", []byte(`7`), []byte(`"mcpr.e30"`))
	f.Add("x", []byte(`"abc"`), []byte(`"mcpr.!!"`))
	f.Fuzz(func(t *testing.T, server string, id, client []byte) {
		UnwrapID(client, opts)
		if server == "" || !utf8.ValidString(server) || !valid(id) {
			return
		}
		s, got, ok := UnwrapID(WrapID(server, id), opts)
		if !ok || s != server || !upstream.SameID(compact(t, got), compact(t, id)) {
			t.Fatalf("round trip of %q %q: %q %q %v", server, id, s, got, ok)
		}
	})
}

func compact(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// valid accepts the ids the router accepts from a client: a JSON string or
// an integer within ±(2^53-1).
func valid(id []byte) bool {
	_, ok := mcpparse.AppendIDKey(nil, id)
	return ok
}

// TestWriter: the stream is announced, every event is one data line (a
// message spread over lines is compacted, so it cannot end its event or
// inject another), and a comment is an SSE comment.
func TestWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	w := Start(rec, "sid")
	if err := w.Event([]byte("{\"a\":\n1}")); err != nil {
		t.Fatal(err)
	}
	if err := w.Event([]byte("{\"a\":1}\n\ndata: injected")); err == nil {
		t.Error("an event that is not JSON and spans lines was written")
	}
	if err := w.Comment("keep-alive"); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Body.String(), "event: message\ndata: {\"a\":1}\n\n: keep-alive\n\n"; got != want {
		t.Errorf("stream %q, want %q", got, want)
	}
	if rec.Header().Get("Content-Type") != "text/event-stream" || rec.Header().Get("Mcp-Session-Id") != "sid" || !rec.Flushed {
		t.Errorf("headers %v, flushed %v", rec.Header(), rec.Flushed)
	}
}
