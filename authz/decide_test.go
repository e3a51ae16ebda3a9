package authz

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/policy"
)

// post is a POST of body to https://mcp.example.com/mcp, as the core sees
// it, changed by each of mods.
func post(body string, mods ...func(*Request)) *Request {
	r := &Request{
		Method: "POST",
		Path:   "/mcp",
		Host:   "mcp.example.com",
		Scheme: "https",
		Headers: map[string]string{
			"content-type":   "application/json",
			"content-length": strconv.Itoa(len(body)),
		},
		Body: []byte(body),
	}
	for _, m := range mods {
		m(r)
	}
	return r
}

func header(k, v string) func(*Request) { return func(r *Request) { r.Headers[k] = v } }

// TestDecide holds the main paths of the core over plain Go types, with no
// Envoy type in sight: what is allowed with which headers, and each denial
// with its status, JSON-RPC code, id, challenge and body, byte for byte.
func TestDecide(t *testing.T) {
	noDelete := policy.Policy{Name: "no-delete", CEL: `mcp.tool.name != "pods_delete"`}
	anonymous := newTestServer(t, Config{MaxBodyBytes: 256}, noDelete)
	identified := newTokenServer(t, true, &recordingExchanger{}, Deps{}, noDelete)
	refused := newTokenServer(t, true, refusingExchanger{allowed: "mcp-test/everything"}, Deps{})
	const bearer = "Bearer " + callerToken

	tests := []struct {
		name      string
		s         *Server
		req       *Request
		want      Decision
		wantBody  string // of a denial
		wantCause string // the metric label, when it is not the reason
	}{
		{
			name: "tool call by prefix: forged x-mcp headers overwritten or removed",
			s:    anonymous,
			req:  post(toolCall("kube_pods_list"), header(HeaderToolName, "pods_delete"), header(HeaderPromptName, "evil")),
			want: Decision{Allow: true, Reason: ReasonAllowed, Headers: []Header{
				{HeaderMethod, "tools/call"},
				{HeaderServerName, "mcp-test/kubernetes-mcp"},
				{HeaderToolName, "pods_list"},
			}, Remove: []string{HeaderPromptName}},
		},
		{
			name: "tools/list targets no server",
			s:    anonymous,
			req:  post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`),
			want: Decision{Allow: true, Reason: ReasonAllowed, Headers: []Header{{HeaderMethod, "tools/list"}}},
		},
		{
			name: "per route by context extension: unprefixed, no client credential goes on",
			s:    anonymous,
			req: post(toolCall("pods_list"), func(r *Request) {
				r.ContextExtensions = map[string]string{ContextExtensionServer: "mcp-test/kubernetes-mcp"}
			}),
			want: Decision{Allow: true, Reason: ReasonAllowed, Headers: []Header{
				{HeaderMethod, "tools/call"},
				{HeaderServerName, "mcp-test/kubernetes-mcp"},
				{HeaderToolName, "pods_list"},
			}, Remove: []string{"authorization"}},
		},
		{
			name: "per route by host",
			s:    anonymous,
			req:  post(toolCall("convert_to_markdown"), func(r *Request) { r.Host = "Tool.Example.com:443" }),
			want: Decision{Allow: true, Reason: ReasonAllowed, Headers: []Header{
				{HeaderMethod, "tools/call"},
				{HeaderServerName, "default/mcp-tool"},
				{HeaderToolName, "convert_to_markdown"},
			}, Remove: []string{"authorization"}},
		},
		{
			name: "GET opens the SSE stream",
			s:    anonymous,
			req:  &Request{Method: "GET", Path: "/mcp", Host: "mcp.example.com"},
			want: Decision{Allow: true, Reason: ReasonAllowed},
		},
		{
			name:     "policy denies",
			s:        anonymous,
			req:      post(toolCall("kube_pods_delete")),
			want:     Decision{Status: 403, Reason: ReasonToolDenied, Code: codeForbidden, ID: []byte("1")},
			wantBody: `{"jsonrpc":"2.0","id":1,"error":{"code":-32003,"message":"forbidden","data":{"reason":"tool_denied"}}}`,
		},
		{
			name:     "no such server: the same answer",
			s:        anonymous,
			req:      post(toolCall("nope_pods_list")),
			want:     Decision{Status: 403, Reason: ReasonToolDenied, Code: codeForbidden, ID: []byte("1")},
			wantBody: `{"jsonrpc":"2.0","id":1,"error":{"code":-32003,"message":"forbidden","data":{"reason":"tool_denied"}}}`,
		},
		{
			name:     "body cut before authz",
			s:        anonymous,
			req:      post(toolCall("kube_pods_list"), func(r *Request) { r.BodyTruncated = true }),
			want:     Decision{Status: 413, Reason: ReasonBodyTruncated, Code: -32600},
			wantBody: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request too large","data":{"reason":"body_truncated"}}}`,
		},
		{
			name:     "body shorter than content-length",
			s:        anonymous,
			req:      post(toolCall("kube_pods_list"), header("content-length", "5000")),
			want:     Decision{Status: 413, Reason: ReasonBodyTruncated, Code: -32600},
			wantBody: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"request too large","data":{"reason":"body_truncated"}}}`,
		},
		{
			name:     "not JSON",
			s:        anonymous,
			req:      post("hello"),
			want:     Decision{Status: 400, Reason: ReasonParseError, Code: -32700},
			wantBody: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"invalid request","data":{"reason":"parse_error"}}}`,
		},
		{
			name:     "Mcp-Name disagrees with the body",
			s:        anonymous,
			req:      post(`{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"kube_pods_list"}}`, header("mcp-name", "kube_pods_delete")),
			want:     Decision{Status: 400, Reason: ReasonHeaderMismatch, Code: -32020, ID: []byte(`"a-1"`)},
			wantBody: `{"jsonrpc":"2.0","id":"a-1","error":{"code":-32020,"message":"invalid request","data":{"reason":"header_mismatch"}}}`,
		},
		{
			name:     "method PUT",
			s:        anonymous,
			req:      post(toolCall("kube_pods_list"), func(r *Request) { r.Method = "PUT" }),
			want:     Decision{Status: 405, Reason: ReasonInvalidRequest, Code: -32600},
			wantBody: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request","data":{"reason":"invalid_request"}}}`,
		},
		{
			name:     "no request",
			s:        anonymous,
			want:     Decision{Status: 400, Reason: ReasonInvalidRequest, Code: -32600},
			wantBody: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid request","data":{"reason":"invalid_request"}}}`,
		},
		{
			name: "no token: 401 with the challenge of the resource and the request's id",
			s:    identified,
			req:  post(toolCall("kube_pods_list")),
			want: Decision{Status: 401, Reason: ReasonTokenMissing, Code: codeUnauthorized, ID: []byte("1"),
				Challenge: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
			wantBody: `{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"unauthorized","data":{"reason":"token_missing"}}}`,
		},
		{
			name: "token in the query",
			s:    identified,
			req:  post(toolCall("kube_pods_list"), header("authorization", bearer), func(r *Request) { r.Path = "/mcp?access_token=x" }),
			want: Decision{Status: 401, Reason: ReasonTokenInQuery, Code: codeUnauthorized, ID: []byte("1"),
				Challenge: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token"`},
			wantBody: `{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"unauthorized","data":{"reason":"token_in_query"}}}`,
		},
		{
			name: "identified caller: the exchanged token goes first",
			s:    identified,
			req:  post(toolCall("kube_pods_list"), header("authorization", bearer)),
			want: Decision{Allow: true, Reason: ReasonAllowed, Headers: []Header{
				{"authorization", "Bearer exchanged-for-mcp-test/kubernetes-mcp"},
				{HeaderMethod, "tools/call"},
				{HeaderServerName, "mcp-test/kubernetes-mcp"},
				{HeaderToolName, "pods_list"},
			}},
		},
		{
			name:      "exchange refused: answered as an unknown tool",
			s:         refused,
			req:       post(toolCall("kube_pods_list"), header("authorization", bearer)),
			want:      Decision{Status: 403, Reason: ReasonToolDenied, Code: codeForbidden, ID: []byte("1")},
			wantBody:  `{"jsonrpc":"2.0","id":1,"error":{"code":-32003,"message":"forbidden","data":{"reason":"tool_denied"}}}`,
			wantCause: ReasonExchangeDenied,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.s.Decide(t.Context(), tt.req)
			if diff := cmp.Diff(tt.want, *got, cmpopts.IgnoreUnexported(Decision{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decision (-want +got):\n%s", diff)
			}
			if b := string(got.Body()); b != tt.wantBody {
				t.Errorf("Body() =\n%s\nwant\n%s", b, tt.wantBody)
			}
			if got.cause != tt.wantCause {
				t.Errorf("cause = %q, want %q", got.cause, tt.wantCause)
			}
		})
	}
}

// TestDecideAssertion: with a signer, an allowed request carries the signed
// assertion of what was decided, bound to the body, and a client-sent
// x-mcp-authz is replaced by it, not removed after it is set.
func TestDecideAssertion(t *testing.T) {
	key, err := assertion.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s := newTokenServer(t, true, &recordingExchanger{}, Deps{Signer: assertion.NewSigner(key)})
	body := toolCall("ev_echo")
	d := s.Decide(t.Context(), post(body, header("authorization", "Bearer "+callerToken), header(assertion.Header, "forged"), header(HeaderMethod, "ping")))
	if !d.Allow {
		t.Fatalf("denied: %d %s", d.Status, d.Body())
	}
	if len(d.Remove) != 0 {
		t.Errorf("Remove = %q, want none: authz sets every x-mcp-* header the client sent", d.Remove)
	}
	c, err := assertion.NewVerifier(key).Verify(d.Assertion, []byte(body), time.Now())
	if err != nil {
		t.Fatalf("assertion %q: %v", d.Assertion, err)
	}
	want := assertion.Claims{Method: "tools/call", Server: "mcp-test/everything", Tool: "echo", Subject: "alice",
		Credential: assertion.CredentialHash("Bearer exchanged-for-mcp-test/everything")}
	if diff := cmp.Diff(want, c, cmpopts.IgnoreFields(assertion.Claims{}, "CallerExpiry", "BodyHash", "IssuedAt", "Expiry")); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if _, err := assertion.NewVerifier(key).Verify(d.Assertion, []byte(toolCall("ev_other")), time.Now()); err == nil {
		t.Error("the assertion verifies for another body")
	}
}
