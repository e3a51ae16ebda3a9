// Package authztest holds what the tests of authz and authz/envoy share:
// the registry of the tests, requests as Envoy sends them and the JSON-RPC
// body of a denial. It does not import authz, so that authz's own tests can
// use it.
package authztest

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// Servers is the registry of the tests: Kuadrant's Kubernetes MCP server
// guide, plus a server attached per route by host.
var Servers = []registry.Server{
	{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:8089/mcp"},
	{Name: "mcp-test/everything", Prefix: "ev_", URL: "http://127.0.0.1:8090/mcp", ResourcePrefixes: []string{"test://"}},
	{Name: "default/mcp-tool", Prefix: "tool_", URL: "http://127.0.0.1:8091/mcp", Hostname: "tool.example.com"},
}

// Registry is a registry holding Servers.
func Registry(t testing.TB) *registry.Registry {
	t.Helper()
	snap, err := registry.NewSnapshot(Servers)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	return reg
}

// Engine is the policy engine of policies (none: allow all).
func Engine(t testing.TB, policies ...policy.Policy) *policy.Engine {
	t.Helper()
	pc := policy.Config{Policies: policies}
	if len(policies) == 0 {
		pc.Default = "allow"
	}
	set, err := policy.Compile(pc)
	if err != nil {
		t.Fatal(err)
	}
	return policy.NewEngine(set)
}

// ToolCall is the body of a tools/call of name, without arguments.
func ToolCall(name string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":{}}}`
}

// EnvoyHeaders are the headers of a request to http://mcp.example.com/mcp
// as Envoy's ext_authz filter sends them with with_request_body:
// lower-cased, pseudo-headers included, changed by headers (an empty value
// deletes the header).
func EnvoyHeaders(method, body string, headers map[string]string) map[string]string {
	h := map[string]string{
		":authority":   "mcp.example.com",
		":method":      method,
		":path":        "/mcp",
		":scheme":      "http",
		"content-type": "application/json",
		"accept":       "application/json, text/event-stream",
	}
	if body != "" {
		h["content-length"] = strconv.Itoa(len(body))
	}
	for k, v := range headers {
		if v == "" {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	return h
}

// RPCError is the JSON-RPC error body of a denial.
type RPCError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			Reason string `json:"reason"`
		} `json:"data"`
	} `json:"error"`
}

// DecodeDenial decodes the body of a denial and checks that it is JSON-RPC
// 2.0.
func DecodeDenial(t testing.TB, body []byte) RPCError {
	t.Helper()
	var e RPCError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("denial body is not JSON: %v: %q", err, body)
	}
	if e.JSONRPC != "2.0" {
		t.Errorf("body jsonrpc = %q", e.JSONRPC)
	}
	return e
}
