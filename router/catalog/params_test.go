package catalog

import (
	"errors"
	"net/http"
	"testing"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// TestCheckParams: every argument a tool marks x-mcp-header needs its one
// header, equal to it; an undeclared or repeated header is refused, and
// the argument is the member of exactly the schema's name.
func TestCheckParams(t *testing.T) {
	tool := []byte(`{"name":"regional","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer"}}}}`)
	tests := []struct {
		name    string
		args    string
		headers http.Header
		tool    []byte
		ok      bool
	}{
		{name: "matching", args: `{"region":"us"}`, headers: http.Header{"Mcp-Param-Region": {"us"}}, ok: true},
		{name: "base64", args: `{"region":"us"}`, headers: http.Header{"Mcp-Param-Region": {"=?base64?dXM=?="}}, ok: true},
		{name: "no marked argument, no header", args: `{"n":1}`, ok: true},
		{name: "different", args: `{"region":"us"}`, headers: http.Header{"Mcp-Param-Region": {"eu"}}},
		{name: "missing header", args: `{"region":"us"}`},
		{name: "header without its argument", args: `{"n":1}`, headers: http.Header{"Mcp-Param-Region": {"us"}}},
		{name: "repeated", args: `{"region":"us"}`, headers: http.Header{"Mcp-Param-Region": {"us", "us"}}},
		{name: "undeclared", args: `{"region":"us"}`, headers: http.Header{"Mcp-Param-Region": {"us"}, "Mcp-Param-Other": {"x"}}},
		{name: "argument of another case", args: `{"Region":"us"}`, headers: http.Header{"Mcp-Param-Region": {"us"}}},
		{name: "a tool that declares none", args: `{"region":"us"}`, headers: http.Header{"Mcp-Param-Region": {"us"}}, tool: []byte(`{}`)},
		{name: "an unreadable tool", args: `{}`, tool: []byte(`[`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := tool
			if tt.tool != nil {
				def = tt.tool
			}
			err := CheckParams(tt.headers, []byte(tt.args), def)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckParams = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, mcpparse.ErrHeaderMismatch) {
				t.Errorf("%v does not wrap ErrHeaderMismatch", err)
			}
		})
	}
}
