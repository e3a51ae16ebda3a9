package envoy

import (
	"net"
	"net/http"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/internal/authztest"
	"github.com/mcp-authz/mcp-authz/policy"
)

// codeForbidden is authz's JSON-RPC error code of a 403.
const codeForbidden = -32003

// newTestServer builds the ext_authz server of an authz.Server over
// authztest.Servers with the given policies (none: allow all).
func newTestServer(t testing.TB, c authz.Config, policies ...policy.Policy) *Server {
	t.Helper()
	return newServer(t, c, authz.Deps{Policy: authztest.Engine(t, policies...)})
}

// newServer is the ext_authz server of authz.New(c, d), d's Registry
// authztest.Registry.
func newServer(t testing.TB, c authz.Config, d authz.Deps) *Server {
	t.Helper()
	d.Registry = authztest.Registry(t)
	s, err := authz.New(c, d)
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{}, s)
}

// dial serves s over real gRPC on a loopback port and returns a client.
func dial(t *testing.T, s *Server) authv3.AuthorizationClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	s.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// checkRequest is a CheckRequest as Envoy's ext_authz filter builds it with
// with_request_body: lower-cased headers, pseudo-headers, the body.
func checkRequest(method, body string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method:   method,
			Path:     "/mcp",
			Host:     "mcp.example.com",
			Scheme:   "http",
			Protocol: "HTTP/1.1",
			Headers:  authztest.EnvoyHeaders(method, body, headers),
			Body:     body,
		}},
	}}
}

func toolCall(name string) string { return authztest.ToolCall(name) }

// denial asserts resp is a denial and returns its status and decoded body.
func denial(t *testing.T, resp *authv3.CheckResponse) (int, authztest.RPCError, http.Header) {
	t.Helper()
	if resp.GetStatus().GetCode() == int32(code.Code_OK) || resp.GetOkResponse() != nil {
		t.Fatalf("got OK, want a denial: %v", resp)
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("no denied_response: %v", resp)
	}
	h := http.Header{}
	for _, o := range d.GetHeaders() {
		h.Add(o.GetHeader().GetKey(), o.GetHeader().GetValue())
	}
	if got := h.Get("content-type"); got != "application/json" {
		t.Errorf("content-type = %q, want application/json", got)
	}
	return int(d.GetStatus().GetCode()), authztest.DecodeDenial(t, []byte(d.GetBody())), h
}

// okHeaders asserts resp is OK and returns the headers it sets and removes.
func okHeaders(t *testing.T, resp *authv3.CheckResponse) (map[string]string, []string) {
	t.Helper()
	ok := resp.GetOkResponse()
	if resp.GetStatus().GetCode() != int32(code.Code_OK) || ok == nil {
		t.Fatalf("got a denial, want OK: status %d body %s", resp.GetDeniedResponse().GetStatus().GetCode(), resp.GetDeniedResponse().GetBody())
	}
	set := map[string]string{}
	for _, o := range ok.GetHeaders() {
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append_action %v, want OVERWRITE_IF_EXISTS_OR_ADD", o.GetHeader().GetKey(), o.GetAppendAction())
		}
		set[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return set, ok.GetHeadersToRemove()
}

func TestCheckAllows(t *testing.T) {
	tests := []struct {
		name       string
		req        *authv3.CheckRequest
		wantSet    map[string]string
		wantRemove []string
	}{
		{
			name: "tool call by prefix",
			req:  checkRequest("POST", toolCall("kube_pods_list"), nil),
			wantSet: map[string]string{
				authz.HeaderMethod:     "tools/call",
				authz.HeaderServerName: "mcp-test/kubernetes-mcp",
				authz.HeaderToolName:   "pods_list",
			},
		},
		{
			name: "forged x-mcp headers are overwritten or removed",
			req: checkRequest("POST", toolCall("kube_pods_list"), map[string]string{
				"x-mcp-toolname":   "pods_delete",
				"x-mcp-servername": "mcp-test/other",
				"x-mcp-promptname": "evil",
				"x-mcp-authz":      "forged",
			}),
			wantSet: map[string]string{
				authz.HeaderMethod:     "tools/call",
				authz.HeaderServerName: "mcp-test/kubernetes-mcp",
				authz.HeaderToolName:   "pods_list",
			},
			wantRemove: []string{"x-mcp-authz", "x-mcp-promptname"},
		},
		{
			name:    "initialize targets no server",
			req:     checkRequest("POST", `{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, nil),
			wantSet: map[string]string{authz.HeaderMethod: "initialize"},
		},
		{
			name:       "tools/list targets no server and loses a forged server header",
			req:        checkRequest("POST", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"x-mcp-servername": "mcp-test/kubernetes-mcp"}),
			wantSet:    map[string]string{authz.HeaderMethod: "tools/list"},
			wantRemove: []string{"x-mcp-servername"},
		},
		{
			name:    "notification",
			req:     checkRequest("POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil),
			wantSet: map[string]string{authz.HeaderMethod: "notifications/initialized"},
		},
		{
			name:    "client answer to a server request",
			req:     checkRequest("POST", `{"jsonrpc":"2.0","id":7,"result":{"action":"accept"}}`, nil),
			wantSet: map[string]string{},
		},
		{
			name:    "prompt by prefix",
			req:     checkRequest("POST", `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"ev_simple_prompt"}}`, nil),
			wantSet: map[string]string{authz.HeaderMethod: "prompts/get", authz.HeaderServerName: "mcp-test/everything", authz.HeaderPromptName: "simple_prompt"},
		},
		{
			name:    "resource by URI",
			req:     checkRequest("POST", `{"jsonrpc":"2.0","id":4,"method":"resources/read","params":{"uri":"test://static/resource/1"}}`, nil),
			wantSet: map[string]string{authz.HeaderMethod: "resources/read", authz.HeaderServerName: "mcp-test/everything", authz.HeaderResourceURI: "test://static/resource/1"},
		},
		{
			name:    "mirror headers that agree",
			req:     checkRequest("POST", toolCall("kube_pods_list"), map[string]string{"mcp-method": "tools/call", "mcp-name": "kube_pods_list"}),
			wantSet: map[string]string{authz.HeaderMethod: "tools/call", authz.HeaderServerName: "mcp-test/kubernetes-mcp", authz.HeaderToolName: "pods_list"},
		},
		{
			name: "per route by context extension: the name is unprefixed",
			req: func() *authv3.CheckRequest {
				r := checkRequest("POST", toolCall("pods_list"), nil)
				r.Attributes.ContextExtensions = map[string]string{authz.ContextExtensionServer: "mcp-test/kubernetes-mcp"}
				return r
			}(),
			wantSet: map[string]string{authz.HeaderMethod: "tools/call", authz.HeaderServerName: "mcp-test/kubernetes-mcp", authz.HeaderToolName: "pods_list"},
			// Identity off: no client credential goes on to the server.
			wantRemove: []string{"authorization"},
		},
		{
			name: "per route by host",
			req: func() *authv3.CheckRequest {
				r := checkRequest("POST", toolCall("convert_to_markdown"), nil)
				r.Attributes.Request.Http.Host = "tool.example.com:8080"
				return r
			}(),
			wantSet:    map[string]string{authz.HeaderMethod: "tools/call", authz.HeaderServerName: "default/mcp-tool", authz.HeaderToolName: "convert_to_markdown"},
			wantRemove: []string{"authorization"},
		},
		{
			name:    "GET opens the SSE stream",
			req:     checkRequest("GET", "", nil),
			wantSet: map[string]string{},
		},
	}
	client := dial(t, newTestServer(t, authz.Config{}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(t.Context(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			set, remove := okHeaders(t, resp)
			if diff := cmp.Diff(tt.wantSet, set); diff != "" {
				t.Errorf("headers set (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRemove, sorted(remove)); diff != "" {
				t.Errorf("headers_to_remove (-want +got):\n%s", diff)
			}
		})
	}
}

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestCheckBadInput covers every bad input of issue 2: each is a clear
// denial with a status, a JSON-RPC code and a reason, and never an OK.
func TestCheckBadInput(t *testing.T) {
	long := strings.Repeat("a", 129)
	tests := []struct {
		name       string
		req        *authv3.CheckRequest
		wantStatus int
		wantCode   int
		wantReason string
		wantID     string
	}{
		{"empty body", checkRequest("POST", "", nil), 400, -32700, authz.ReasonBodyMissing, "null"},
		{"not JSON", checkRequest("POST", "hello", nil), 400, -32700, authz.ReasonParseError, "null"},
		{"batch while batches are off", checkRequest("POST", `[`+toolCall("kube_pods_list")+`]`, nil), 400, -32600, authz.ReasonBatchRejected, "null"},
		{"jsonrpc 1.0", checkRequest("POST", `{"jsonrpc":"1.0","id":1,"method":"tools/list"}`, nil), 400, -32600, authz.ReasonInvalidRequest, "null"},
		{"id that is an object", checkRequest("POST", `{"jsonrpc":"2.0","id":{"a":1},"method":"tools/list"}`, nil), 400, -32600, authz.ReasonInvalidRequest, "null"},
		{"no method", checkRequest("POST", `{"jsonrpc":"2.0","id":1,"params":{}}`, nil), 400, -32600, authz.ReasonInvalidRequest, "null"},
		{"tools/call without params.name", checkRequest("POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}`, nil), 400, -32602, authz.ReasonInvalidRequest, "null"},
		{"name with a bad character", checkRequest("POST", toolCall("kube_pods list"), nil), 400, -32602, authz.ReasonInvalidRequest, "null"},
		{"name longer than 128", checkRequest("POST", toolCall(long), nil), 400, -32602, authz.ReasonInvalidRequest, "null"},
		{"duplicate name keys", checkRequest("POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_pods_list","name":"kube_pods_delete"}}`, nil), 400, -32600, authz.ReasonInvalidRequest, "null"},
		{"Name instead of name", checkRequest("POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"Name":"kube_pods_list"}}`, nil), 400, -32602, authz.ReasonInvalidRequest, "null"},
		{"body over the limit", checkRequest("POST", toolCall("kube_pods_list")+strings.Repeat(" ", 300), nil), 413, -32600, authz.ReasonBodyTooLarge, "null"},
		{"body cut by Envoy", checkRequest("POST", toolCall("kube_pods_list")[:40], map[string]string{"x-envoy-auth-partial-body": "true"}), 413, -32600, authz.ReasonBodyTruncated, "null"},
		{"body shorter than content-length", checkRequest("POST", toolCall("kube_pods_list"), map[string]string{"content-length": "5000"}), 413, -32600, authz.ReasonBodyTruncated, "null"},
		{"Mcp-Name mismatch", checkRequest("POST", toolCall("kube_pods_list"), map[string]string{"mcp-name": "kube_pods_delete"}), 400, -32020, authz.ReasonHeaderMismatch, "1"},
		{"Mcp-Method mismatch", checkRequest("POST", toolCall("kube_pods_list"), map[string]string{"mcp-method": "tools/list"}), 400, -32020, authz.ReasonHeaderMismatch, "1"},
		{"prefix of no registered server", checkRequest("POST", toolCall("nope_pods_list"), nil), 403, codeForbidden, authz.ReasonToolDenied, "1"},
		{"per-route server that is not registered", func() *authv3.CheckRequest {
			r := checkRequest("POST", toolCall("pods_list"), nil)
			r.Attributes.ContextExtensions = map[string]string{authz.ContextExtensionServer: "mcp-test/gone"}
			return r
		}(), 403, codeForbidden, authz.ReasonToolDenied, "1"},
		{"method PUT", checkRequest("PUT", toolCall("kube_pods_list"), nil), 405, -32600, authz.ReasonInvalidRequest, "null"},
		{"no http attributes", &authv3.CheckRequest{}, 400, -32600, authz.ReasonInvalidRequest, "null"},
	}
	client := dial(t, newTestServer(t, authz.Config{MaxBodyBytes: 256}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Check(t.Context(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			status, body, _ := denial(t, resp)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d", status, tt.wantStatus)
			}
			if body.Error.Code != tt.wantCode {
				t.Errorf("JSON-RPC code = %d, want %d", body.Error.Code, tt.wantCode)
			}
			if body.Error.Data.Reason != tt.wantReason {
				t.Errorf("reason = %q, want %q", body.Error.Data.Reason, tt.wantReason)
			}
			if string(body.ID) != tt.wantID {
				t.Errorf("id = %s, want %s", body.ID, tt.wantID)
			}
		})
	}
}

// TestCheckSameDenial: an unknown tool and a forbidden one get byte-for-byte
// the same answer, so denials cannot be used to enumerate tools.
func TestCheckSameDenial(t *testing.T) {
	client := dial(t, newTestServer(t, authz.Config{}, policy.Policy{Name: "no-delete", CEL: `mcp.tool.name != "pods_delete"`}))
	var bodies []string
	for _, name := range []string{"kube_pods_delete", "nope_pods_list", "kube_"} {
		resp, err := client.Check(t.Context(), checkRequest("POST", toolCall(name), nil))
		if err != nil {
			t.Fatal(err)
		}
		status, body, _ := denial(t, resp)
		if status != http.StatusForbidden || body.Error.Data.Reason != authz.ReasonToolDenied {
			t.Errorf("%s: status %d reason %q, want 403 %s", name, status, body.Error.Data.Reason, authz.ReasonToolDenied)
		}
		bodies = append(bodies, resp.GetDeniedResponse().GetBody())
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("denial bodies differ:\n%s\n%s", bodies[0], b)
		}
	}
	resp, err := client.Check(t.Context(), checkRequest("POST", toolCall("kube_pods_list"), nil))
	if err != nil {
		t.Fatal(err)
	}
	okHeaders(t, resp)

	// A server no policy names, under the default deny: the same body again.
	scoped := dial(t, newTestServer(t, authz.Config{}, policy.Policy{Name: "everything-only", Servers: []string{"mcp-test/everything"}, CEL: "true"}))
	resp, err = scoped.Check(t.Context(), checkRequest("POST", toolCall("kube_pods_delete"), nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetDeniedResponse().GetBody(); got != bodies[0] {
		t.Errorf("no policy for the server: body %s, want %s", got, bodies[0])
	}
}

func TestCheckBatch(t *testing.T) {
	client := dial(t, newTestServer(t, authz.Config{AllowBatch: true}, policy.Policy{Name: "no-delete", CEL: `mcp.tool.name != "pods_delete"`}))
	batch := func(msgs ...string) string { return "[" + strings.Join(msgs, ",") + "]" }
	t.Run("all allowed, one server", func(t *testing.T) {
		resp, err := client.Check(t.Context(), checkRequest("POST", batch(toolCall("kube_pods_list"), `{"jsonrpc":"2.0","method":"notifications/initialized"}`), nil))
		if err != nil {
			t.Fatal(err)
		}
		set, _ := okHeaders(t, resp)
		if set[authz.HeaderServerName] != "mcp-test/kubernetes-mcp" {
			t.Errorf("servername = %q", set[authz.HeaderServerName])
		}
	})
	t.Run("one element denied denies the batch", func(t *testing.T) {
		resp, err := client.Check(t.Context(), checkRequest("POST", batch(toolCall("kube_pods_list"), toolCall("kube_pods_delete")), nil))
		if err != nil {
			t.Fatal(err)
		}
		if status, _, _ := denial(t, resp); status != http.StatusForbidden {
			t.Errorf("status %d, want 403", status)
		}
	})
	t.Run("two servers", func(t *testing.T) {
		resp, err := client.Check(t.Context(), checkRequest("POST", batch(toolCall("kube_pods_list"), toolCall("ev_echo")), nil))
		if err != nil {
			t.Fatal(err)
		}
		if status, body, _ := denial(t, resp); status != http.StatusBadRequest || body.Error.Data.Reason != authz.ReasonBatchRejected {
			t.Errorf("status %d reason %s, want 400 %s", status, body.Error.Data.Reason, authz.ReasonBatchRejected)
		}
	})
	t.Run("malformed element", func(t *testing.T) {
		resp, err := client.Check(t.Context(), checkRequest("POST", batch(toolCall("kube_pods_list"), `{"jsonrpc":"1.0"}`), nil))
		if err != nil {
			t.Fatal(err)
		}
		if status, _, _ := denial(t, resp); status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", status)
		}
	})
}

// TestCheckHeaderMap: Envoy with encode_raw_headers sends header_map, where a
// repeated header appears twice; both forms are read alike.
func TestCheckHeaderMap(t *testing.T) {
	client := dial(t, newTestServer(t, authz.Config{}))
	req := checkRequest("POST", toolCall("kube_pods_list"), nil)
	hm := &corev3.HeaderMap{}
	for k, v := range req.Attributes.Request.Http.Headers {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
	}
	hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: "x-mcp-toolname", RawValue: []byte("pods_delete")})
	req.Attributes.Request.Http.Headers = nil
	req.Attributes.Request.Http.HeaderMap = hm
	resp, err := client.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := okHeaders(t, resp)
	if set[authz.HeaderToolName] != "pods_list" {
		t.Errorf("toolname = %q, want pods_list", set[authz.HeaderToolName])
	}
}
