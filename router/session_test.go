package router

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/router/session"
)

const listBody = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

func TestSessionRefused(t *testing.T) {
	now := time.Now()
	e, _, _ := twoServers(t, func(c *Config) { c.SessionTTL = time.Hour })
	url := e.front.URL
	sid := initRaw(t, url, e.key, "alice")

	// A router with another session key seals a session this one must refuse.
	other := newRouter(t, Config{SessionKeyFiles: []string{writeSessionKey(t, "k2")}}, Deps{Registry: e.reg, Authorizer: e.auth, AssertionKey: e.key})
	foreign, err := session.Seal(other.sealer, &session.Record{ID: "x", Issuer: testIssuer, Subject: "alice", Version: "2025-06-18", Issued: now.Unix()})
	if err != nil {
		t.Fatal(err)
	}
	ended := initRaw(t, url, e.key, "alice")
	if r := do(t, url, e.key, http.MethodDelete, ended, "alice", "", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	expired, err := session.Seal(e.router.sealer, &session.Record{ID: "old", Issuer: testIssuer, Subject: "alice", Version: "2025-06-18", Issued: now.Add(-2 * time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	tampered := []byte(sid)
	tampered[len(tampered)/2] ^= 1

	for _, tc := range []struct {
		name    string
		sid     string
		subject string
		body    string
		mod     func(*http.Request)
		want    int
	}{
		{name: "valid", sid: sid, subject: "alice", want: http.StatusOK},
		{name: "no session id", sid: "", subject: "alice", want: http.StatusBadRequest},
		{name: "unknown session", sid: "bm90LWEtc2Vzc2lvbg", subject: "alice", want: http.StatusNotFound},
		{name: "not base64", sid: "!!!", subject: "alice", want: http.StatusNotFound},
		{name: "tampered", sid: string(tampered), subject: "alice", want: http.StatusNotFound},
		{name: "sealed with another key", sid: foreign, subject: "alice", want: http.StatusNotFound},
		{name: "another caller", sid: sid, subject: "bob", want: http.StatusNotFound},
		{name: "ended", sid: ended, subject: "alice", want: http.StatusNotFound},
		{name: "expired", sid: expired, subject: "alice", want: http.StatusNotFound},
		{name: "missing assertion", sid: sid, subject: "alice", want: http.StatusUnauthorized,
			mod: func(r *http.Request) { r.Header.Del(assertion.Header) }},
		{name: "assertion for another body", sid: sid, subject: "alice", want: http.StatusUnauthorized,
			mod: func(r *http.Request) {
				v, _ := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "tools/list", Issuer: testIssuer, Subject: "alice", BodyHash: assertion.BodyHash([]byte(`{}`))})
				r.Header.Set(assertion.Header, v)
			}},
		{name: "assertion for another method", sid: sid, subject: "alice", want: http.StatusUnauthorized,
			mod: func(r *http.Request) {
				v, _ := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "tools/call", Issuer: testIssuer, Subject: "alice", BodyHash: assertion.BodyHash([]byte(listBody))})
				r.Header.Set(assertion.Header, v)
			}},
		{name: "assertion with another key", sid: sid, subject: "alice", want: http.StatusUnauthorized,
			mod: func(r *http.Request) {
				k, _ := assertion.GenerateKey()
				v, _ := assertion.NewSigner(k).Sign(assertion.Claims{Method: "tools/list", Issuer: testIssuer, Subject: "alice", BodyHash: assertion.BodyHash([]byte(listBody))})
				r.Header.Set(assertion.Header, v)
			}},
		{name: "Mcp-Method mismatch", sid: sid, subject: "alice", want: http.StatusBadRequest,
			mod: func(r *http.Request) { r.Header.Set("Mcp-Method", "tools/call") }},
		{name: "Mcp-Name mismatch", sid: sid, subject: "alice", want: http.StatusBadRequest,
			body: `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"alpha_echo","arguments":{"text":"x"}}}`,
			mod:  func(r *http.Request) { r.Header.Set("Mcp-Name", "beta_add") }},
		{name: "unsupported protocol version header", sid: sid, subject: "alice", want: http.StatusBadRequest,
			mod: func(r *http.Request) { r.Header.Set("MCP-Protocol-Version", "1999-01-01") }},
		{name: "batch", sid: sid, subject: "alice", body: "[" + listBody + "]", want: http.StatusBadRequest},
		{name: "not json-rpc", sid: sid, subject: "alice", body: `{"id":1}`, want: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == "" {
				body = listBody
			}
			r := do(t, url, e.key, http.MethodPost, tc.sid, tc.subject, body, tc.mod)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.body)
			}
			if tc.want == http.StatusOK && !strings.Contains(r.body, `"alpha_echo"`) {
				t.Errorf("body %s", r.body)
			}
		})
	}
	t.Run("GET and DELETE refuse the same", func(t *testing.T) {
		for _, m := range []string{http.MethodGet, http.MethodDelete} {
			if r := do(t, url, e.key, m, string(tampered), "alice", "", nil); r.status != http.StatusNotFound {
				t.Errorf("%s tampered: %d", m, r.status)
			}
			if r := do(t, url, e.key, m, sid, "alice", "", func(r *http.Request) { r.Header.Del(assertion.Header) }); r.status != http.StatusUnauthorized {
				t.Errorf("%s without assertion: %d", m, r.status)
			}
			postAssertion := func(r *http.Request) {
				v, _ := assertion.NewSigner(e.key).Sign(assertion.Claims{Method: "tools/list", Issuer: testIssuer, Subject: "alice", BodyHash: assertion.BodyHash(nil)})
				r.Header.Set(assertion.Header, v)
			}
			if r := do(t, url, e.key, m, sid, "alice", "", postAssertion); r.status != http.StatusUnauthorized {
				t.Errorf("%s with an assertion for a POST: %d", m, r.status)
			}
		}
		if r := do(t, url, e.key, http.MethodPut, sid, "alice", "", nil); r.status != http.StatusMethodNotAllowed {
			t.Errorf("PUT: %d", r.status)
		}
	})
}

// TestTwoReplicas serves one session from two routers alternately; the
// second still opens sessions sealed with a retired key (rotation).
func TestTwoReplicas(t *testing.T) {
	e, _, _ := twoServers(t, nil)
	retired := writeSessionKey(t, "k0")
	r2 := newRouter(t, Config{SessionKeyFiles: []string{e.keyFile, retired}}, Deps{Registry: e.reg, Authorizer: e.auth, AssertionKey: e.key})
	old := newRouter(t, Config{SessionKeyFiles: []string{retired}}, Deps{Registry: e.reg, Authorizer: e.auth, AssertionKey: e.key})
	oldSID := initRaw(t, newServer(t, old), e.key, "alice")
	front2 := newServer(t, r2)
	fronts := []string{e.front.URL, front2}
	sg := &signer{base: &alternate{urls: fronts}, s: assertion.NewSigner(e.key), subject: "alice"}
	c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: e.front.URL + "/mcp", HTTPClient: &http.Client{Transport: sg}, MaxRetries: -1, DisableStandaloneSSE: true,
	}, &mcp.ClientSessionOptions{ProtocolVersion: connectVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	for i := range 4 {
		if n := len(toolNames(t, cs)); n != 5 {
			t.Errorf("round %d: %d tools", i, n)
		}
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "beta_add", Arguments: map[string]any{"a": i, "b": 1}})
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if got := resultText(t, res); got != strings.TrimSpace(string(rune('0'+i+1))) {
			t.Errorf("round %d: %q", i, got)
		}
	}
	alt := sg.base.(*alternate)
	if alt.hits[e.front.URL] < 4 || alt.hits[front2] < 4 {
		t.Errorf("requests per replica: %v", alt.hits)
	}
	if r := do(t, front2, e.key, http.MethodPost, oldSID, "alice", listBody, nil); r.status != http.StatusOK {
		t.Errorf("session sealed with the retired key: %d %s", r.status, r.body)
	}
	if r := do(t, e.front.URL, e.key, http.MethodPost, oldSID, "alice", listBody, nil); r.status != http.StatusNotFound {
		t.Errorf("session sealed with a key this replica lacks: %d", r.status)
	}
}
