package router

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
)

// TestRequestBody: a body up to the limit is read whole, one over it is
// refused with 413, and one shorter than its Content-Length with 400; a
// refused body opens no session.
func TestRequestBody(t *testing.T) {
	e := newEnv(t, nil, registry.Server{Name: "ns/alpha", Prefix: "alpha_", URL: alphaServer(t).URL})
	padded := func(n int) string { return initBody + strings.Repeat(" ", n-len(initBody)) }

	t.Run("at the limit", func(t *testing.T) {
		r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice", padded(forward.MaxRequestBytes), nil)
		if r.status != http.StatusOK || r.header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("status %d, session %q: %.200s", r.status, r.header.Get("Mcp-Session-Id"), r.body)
		}
	})
	t.Run("over the limit", func(t *testing.T) {
		r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice", padded(forward.MaxRequestBytes+1), nil)
		if r.status != http.StatusRequestEntityTooLarge || r.header.Get("Mcp-Session-Id") != "" {
			t.Fatalf("status %d, session %q, want 413 and none", r.status, r.header.Get("Mcp-Session-Id"))
		}
	})
	t.Run("cut short", func(t *testing.T) {
		// Said 10 bytes more than sent, then the client stops writing:
		// only a raw connection can send that.
		u, err := url.Parse(e.front.URL)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		v, err := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "initialize", Issuer: testIssuer, Subject: "alice", BodyHash: assertion.BodyHash([]byte(initBody))})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"+
			"Authorization: Bearer caller-alice\r\n%s: %s\r\nContent-Length: %d\r\n\r\n%s",
			u.Host, assertion.Header, v, len(initBody)+10, initBody)
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Mcp-Session-Id") != "" {
			t.Fatalf("status %d, session %q, want 400 and none", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"))
		}
	})
}
