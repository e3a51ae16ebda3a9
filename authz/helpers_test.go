package authz

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz/internal/authztest"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/policy"
)

// testServers is the registry of the tests (authztest.Servers).
var testServers = authztest.Servers

// newTestServer builds a Server over testServers with the given policies
// (none: allow all).
func newTestServer(t testing.TB, c Config, policies ...policy.Policy) *Server {
	t.Helper()
	s, err := New(c, Deps{Registry: authztest.Registry(t), Policy: authztest.Engine(t, policies...)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func toolCall(name string) string { return authztest.ToolCall(name) }

// checkRequest is the Request authz/envoy makes of a CheckRequest as
// Envoy's ext_authz filter builds it with with_request_body: lower-cased
// headers, pseudo-headers, the body, a body Envoy cut marked truncated.
func checkRequest(method, body string, headers map[string]string) *Request {
	h := authztest.EnvoyHeaders(method, body, headers)
	return &Request{
		Method:        method,
		Path:          "/mcp",
		Host:          "mcp.example.com",
		Scheme:        "http",
		Headers:       h,
		Body:          []byte(body),
		BodyTruncated: h["x-envoy-auth-partial-body"] == "true",
	}
}

// denial asserts d is a denial and returns its status, decoded body and
// the headers it is answered with besides content-type (authz/envoy's
// tests hold that one).
func denial(t *testing.T, d *Decision) (int, authztest.RPCError, http.Header) {
	t.Helper()
	if d.Allow {
		t.Fatalf("got OK, want a denial: %+v", d)
	}
	h := http.Header{}
	if d.Challenge != "" {
		h.Set("www-authenticate", d.Challenge)
	}
	return d.Status, authztest.DecodeDenial(t, d.Body()), h
}

// okHeaders asserts d allows and returns the headers it sets (the
// assertion among them, as Envoy is told to set it) and removes.
func okHeaders(t *testing.T, d *Decision) (map[string]string, []string) {
	t.Helper()
	if !d.Allow {
		t.Fatalf("got a denial, want OK: status %d body %s", d.Status, d.Body())
	}
	set := map[string]string{}
	for _, h := range d.Headers {
		set[h.Key] = h.Value
	}
	if d.Assertion != "" {
		set[assertion.Header] = d.Assertion
	}
	return set, d.Remove
}

// wire is everything of d that leaves authz, which authz/envoy turns into
// a CheckResponse: nothing that only the log or the metrics see.
func wire(d *Decision) string {
	return fmt.Sprintf("allow=%t status=%d challenge=%q body=%s set=%q assertion=%q remove=%q",
		d.Allow, d.Status, d.Challenge, d.Body(), d.Headers, d.Assertion, d.Remove)
}
