package authz

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/policy"
)

// TestDecideListen: subscriptions/listen is decided like the reads it leads
// to. Each resource subscription is decided as resources/read of its URI by
// the same policy (which sees mcp.method "resources/read"); one denied or
// owned by no server refuses the whole request with the read's denial; a
// filter of list changes only is let through to the router, which filters
// lists per caller; a malformed filter is a 400. An allowed listen carries
// no server token: it reaches several servers, for which the router asks
// its own.
func TestDecideListen(t *testing.T) {
	reads := policy.Policy{Name: "reads", CEL: `mcp.method == "resources/read" && mcp.resource.uri.startsWith("test://ok")`}
	s := newTokenServer(t, true, &recordingExchanger{}, Deps{}, reads)
	const bearer = "Bearer " + callerToken
	listen := func(notifications string) string {
		return `{"jsonrpc":"2.0","id":"l1","method":"subscriptions/listen","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"notifications":` + notifications + `}}`
	}
	many := make([]string, maxListenURIs+1)
	for i := range many {
		many[i] = "test://ok/x"
	}
	manyJSON, _ := json.Marshal(many)
	tests := []struct {
		name   string
		body   string
		status int    // 0: allowed
		reason string // of a denial
	}{
		{name: "list changes only", body: listen(`{"toolsListChanged":true,"resourcesListChanged":true}`)},
		{name: "empty filter", body: listen(`{}`)},
		{name: "allowed subscriptions", body: listen(`{"resourceSubscriptions":["test://ok/1","test://ok/2"]}`)},
		{name: "one denied subscription refuses all", body: listen(`{"toolsListChanged":true,"resourceSubscriptions":["test://ok/1","test://no/1"]}`), status: 403, reason: ReasonResourceDenied},
		{name: "a URI of no server: the same denial", body: listen(`{"resourceSubscriptions":["nope://ok/1"]}`), status: 403, reason: ReasonResourceDenied},
		{name: "no notifications", body: `{"jsonrpc":"2.0","id":"l1","method":"subscriptions/listen","params":{}}`, status: 400, reason: ReasonInvalidRequest},
		{name: "notifications not an object", body: listen(`[]`), status: 400, reason: ReasonInvalidRequest},
		{name: "subscriptions not an array", body: listen(`{"resourceSubscriptions":"test://ok/1"}`), status: 400, reason: ReasonInvalidRequest},
		{name: "an empty URI", body: listen(`{"resourceSubscriptions":[""]}`), status: 400, reason: ReasonInvalidRequest},
		{name: "a URI not a string", body: listen(`{"resourceSubscriptions":[1]}`), status: 400, reason: ReasonInvalidRequest},
		{name: "too many subscriptions", body: listen(`{"resourceSubscriptions":` + string(manyJSON) + `}`), status: 400, reason: ReasonInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Decide(t.Context(), post(tt.body, header("authorization", bearer), header("mcp-protocol-version", "2026-07-28"), header("mcp-method", "subscriptions/listen")))
			if tt.status == 0 {
				if !d.Allow {
					t.Fatalf("denied: %d %s", d.Status, d.Reason)
				}
				for _, h := range d.Headers {
					if strings.EqualFold(h.Key, "authorization") || h.Key == HeaderServerName {
						t.Errorf("an allowed listen carries %s: %q", h.Key, h.Value)
					}
				}
				return
			}
			if d.Allow || d.Status != tt.status || d.Reason != tt.reason || string(d.ID) != `"l1"` {
				t.Fatalf("decision %v %d %s id %s, want %d %s", d.Allow, d.Status, d.Reason, d.ID, tt.status, tt.reason)
			}
		})
	}
}
