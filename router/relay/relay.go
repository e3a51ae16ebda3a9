// Package relay carries what servers send on to clients: the GET streams
// open on this replica, by client session (Hub), served to the clients with
// the servers' GET streams relayed into them (Watcher, asking the router
// what it decides through Session), events of a server-sent-events stream
// (Writer), and the ids of the servers' own requests, wrapped with the
// server's name so that the client's answer finds its way back (WrapID).
package relay

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// Writer writes events to a client and flushes each.
type Writer struct {
	w http.ResponseWriter
	f *http.ResponseController
}

// Start answers 200 with an event stream (naming sessionID in
// Mcp-Session-Id unless empty) and returns its writer.
func Start(w http.ResponseWriter, sessionID string) *Writer {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	if sessionID != "" {
		w.Header().Set("Mcp-Session-Id", sessionID)
	}
	w.WriteHeader(http.StatusOK)
	s := &Writer{w: w, f: http.NewResponseController(w)}
	s.f.Flush()
	return s
}

// Event writes one message event, data compacted onto one line.
func (s *Writer) Event(data []byte) error {
	if bytes.ContainsAny(data, "\r\n") {
		var c bytes.Buffer
		if err := json.Compact(&c, data); err != nil {
			return err
		}
		data = c.Bytes()
	}
	if _, err := fmt.Fprintf(s.w, "event: message\ndata: %s\n\n", data); err != nil {
		return err
	}
	return s.f.Flush()
}

// Comment writes an SSE comment (a keep-alive).
func (s *Writer) Comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.f.Flush()
}

// wrappedPrefix marks the ids of server requests relayed to the client.
const wrappedPrefix = "mcpr."

// WrapID names the server a server-to-client request came from in its id:
// "mcpr." and the base64url of {"s":server,"i":id}, the id as sent.
func WrapID(server string, id json.RawMessage) json.RawMessage {
	w := make([]byte, 0, 16+len(server)+len(id))
	w = append(w, `{"s":`...)
	w = mcpparse.AppendString(w, server)
	w = append(w, `,"i":`...)
	w = append(append(w, id...), '}')
	out := make([]byte, 0, 2+len(wrappedPrefix)+base64.RawURLEncoding.EncodedLen(len(w)))
	out = append(append(out, '"'), wrappedPrefix...)
	out = base64.RawURLEncoding.AppendEncode(out, w)
	return append(out, '"')
}

// UnwrapID reads what WrapID wrote (the inner object read with opts, as
// the client's message is), strictly: anything else is refused.
func UnwrapID(id json.RawMessage, opts mcpparse.Options) (string, json.RawMessage, bool) {
	s, err := mcpparse.String(id)
	if err != nil || !strings.HasPrefix(s, wrappedPrefix) {
		return "", nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(wrappedPrefix):])
	if err != nil {
		return "", nil, false
	}
	f, err := mcpparse.Fields(b, opts, "s", "i")
	if err != nil || f[0].Raw == nil {
		return "", nil, false
	}
	server, err := mcpparse.String(f[0].Raw)
	if err != nil || server == "" || !wrappableID(f[1].Raw) {
		return "", nil, false
	}
	return server, f[1].Raw, true
}

// wrappableID reports whether id is what a server may name its request
// with: a JSON string or an integer.
func wrappableID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	if id[0] == '"' {
		_, err := mcpparse.String(id)
		return err == nil
	}
	_, err := mcpparse.Int(id)
	return err == nil
}
