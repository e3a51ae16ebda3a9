package envoy

import (
	"net/http"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/code"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// FuzzCheck feeds whole CheckRequests (body, mirror headers, a forged header,
// per-route extension) to Check. Whatever comes in: no panic, an answer that
// is either OK for a body mcpparse accepts or a denial with a known status,
// and never a client-chosen x-mcp-* header on an OK.
func FuzzCheck(f *testing.F) {
	f.Add(toolCall("kube_pods_list"), "", "", "", false)
	f.Add(toolCall("kube_pods_list"), "tools/call", "kube_pods_list", "pods_delete", false)
	f.Add(toolCall("pods_list"), "", "", "", true)
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://x"}}`, "", "", "", false)
	f.Add(`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, "", "", "", false)
	f.Add(`{"jsonrpc":"2.0","id":"x","result":{}}`, "", "", "", false)
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"kube_a","name":"kube_b"}}`, "", "", "", false)
	s := newTestServer(f, authz.Config{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, body, mcpMethod, mcpName, forged string, perRoute bool) {
		req := checkRequest("POST", body, map[string]string{"mcp-method": mcpMethod, "mcp-name": mcpName, "x-mcp-toolname": forged})
		if perRoute {
			req.Attributes.ContextExtensions = map[string]string{authz.ContextExtensionServer: "mcp-test/kubernetes-mcp"}
		}
		resp, err := s.Check(t.Context(), req)
		if err != nil {
			t.Fatalf("Check returned an error: %v", err)
		}
		if resp.GetStatus().GetCode() != int32(code.Code_OK) {
			switch st := resp.GetDeniedResponse().GetStatus().GetCode(); int(st) {
			case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge:
			default:
				t.Fatalf("denial with status %d", st)
			}
			return
		}
		if mcpparse.IsBatch([]byte(body)) {
			t.Fatalf("batch allowed while batches are off: %q", body)
		}
		m, err := mcpparse.Parse([]byte(body), mcpparse.Options{MaxBytes: 4096})
		if err != nil {
			t.Fatalf("OK for a body mcpparse refuses (%v): %q", err, body)
		}
		for _, h := range resp.GetOkResponse().GetHeaders() {
			if h.GetHeader().GetKey() == authz.HeaderToolName && h.GetHeader().GetValue() == forged && forged != "" && m.Method != "tools/call" {
				t.Fatalf("forged x-mcp-toolname %q kept", forged)
			}
		}
		removed := false
		set := false
		for _, k := range resp.GetOkResponse().GetHeadersToRemove() {
			removed = removed || k == authz.HeaderToolName
		}
		for _, h := range resp.GetOkResponse().GetHeaders() {
			set = set || h.GetHeader().GetKey() == authz.HeaderToolName
		}
		if forged != "" && !removed && !set {
			t.Fatalf("forged x-mcp-toolname neither overwritten nor removed")
		}
	})
}
