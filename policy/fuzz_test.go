package policy

import (
	"path/filepath"
	"testing"
)

// FuzzKeycloakTwins decides arbitrary input documents with both twins of the
// Keycloak roles example: neither may panic, and they must agree on allow.
func FuzzKeycloakTwins(f *testing.F) {
	for _, seed := range []string{
		`{"mcp":{"method":"tools/call","server":"s","tool":{"name":"t"}},"token":{"aud":"s","resource_access":{"s":{"roles":["t"]}}}}`,
		`{"mcp":{"method":"tools/call","server":"s","tool":{"name":"t"}},"token":{"aud":["x","s"],"resource_access":{"s":{"roles":["tool:t"]}}}}`,
		`{"mcp":{"method":"tools/call","server":"s","tool":{"name":"t"}},"token":{"aud":"s","resource_access":{"s":{"roles":{"t":true}}}}}`,
		`{"mcp":{"method":"tools/call","server":"s","tool":{"name":"t"}},"token":{"aud":{"s":1},"resource_access":{"s":{"roles":"t"}}}}`,
		`{"mcp":{"method":"tools/call","server":"","tool":{"name":""}},"token":{"aud":"","resource_access":{"":{"roles":[""]}}}}`,
		`{"mcp":{"method":"tools/call","server":"s"},"token":{}}`,
		`{"mcp":{"method":"tools/list"},"identity":{"sub":"a"}}`,
		`{"mcp":{"method":"tasks/get","server":"s","task":{"server":"s","tool":"t","method":"tasks/get"}},"token":{"aud":"s","resource_access":{"s":{"roles":["t"]}}}}`,
		`{"mcp":{"method":"tasks/cancel","server":"s","task":{"server":"s","tool":"","method":"tasks/cancel"}},"token":{"aud":"s","resource_access":{"s":{"roles":[""]}}}}`,
		`{"mcp":{"method":"resources/read","server":"s","task":{"server":"s","tool":"t","method":"tasks/get"}},"token":{"aud":"s","resource_access":{"s":{"roles":["t"]}}}}`,
	} {
		f.Add([]byte(seed))
	}
	dir := filepath.Join("..", "examples", "policies", "keycloak-roles")
	cel := mustCompile(f, Config{BaseDir: dir, Policies: []Policy{{Name: "cel", File: "keycloak-roles.cel"}}})
	rego := mustCompile(f, Config{BaseDir: dir, Policies: []Policy{{Name: "rego", File: "keycloak-roles.rego"}}})
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput(data)
		if err != nil {
			return
		}
		c, r := cel.Decide(t.Context(), in), rego.Decide(t.Context(), in)
		if c.Allow != r.Allow {
			t.Errorf("twins disagree on %s: cel %+v, rego %+v", data, c, r)
		}
	})
}
