package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// TestCheckParams: (Params.Check) every argument a tool marks x-mcp-header needs its one
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
			var p Params
			err := p.Check(tt.headers, []byte(tt.args), def)
			if tt.ok != (err == nil) {
				t.Fatalf("Check = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, mcpparse.ErrHeaderMismatch) {
				t.Errorf("%v does not wrap ErrHeaderMismatch", err)
			}
		})
	}
}

// TestParamMemo: the remembered answer is paramHeaders' for the very bytes
// asked about, never another tool's (two servers' tools of the same name
// with other schemas stay apart), errors included, and the memo stays
// within its bounds.
func TestParamMemo(t *testing.T) {
	var p Params
	for _, tc := range []struct {
		name string
		tool string
		want map[string]string
		err  bool
	}{
		{name: "region header", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":"Region"}}}}`, want: map[string]string{"region": "Region"}},
		{name: "same name, other header", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":"Zone"}}}}`, want: map[string]string{"region": "Zone"}},
		{name: "same name, none", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string"}}}}`, want: map[string]string{}},
		{name: "unreadable", tool: `{"name":"t","inputSchema":[]}`, err: true},
		// Keys are the server's, exactly: a key spelled in another case is
		// another key (encoding/json would have read both as these).
		{name: "keys in another case", tool: `{"name":"t","InputSchema":{"properties":{"region":{"x-mcp-header":"Region"}}},"inputSchema":{"properties":{"zone":{"X-MCP-Header":"Zone"}}}}`, want: map[string]string{}},
		{name: "a duplicate key", tool: `{"name":"t","inputSchema":{"properties":{"region":{"x-mcp-header":"Region","x-mcp-header":"Zone"}}}}`, err: true},
		{name: "a header that is no string", tool: `{"name":"t","inputSchema":{"properties":{"region":{"x-mcp-header":7}}}}`, err: true},
		{name: "null schema", tool: `{"name":"t","inputSchema":null}`, want: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // computed, then remembered
				got, err := p.headers(json.RawMessage(tc.tool))
				if (err != nil) != tc.err {
					t.Fatalf("err %v, want error %v", err, tc.err)
				}
				if diff := cmp.Diff(tc.want, got); !tc.err && diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
			}
		})
	}
	for i := range 2 * paramMemoEntries {
		if _, err := p.headers(json.RawMessage(fmt.Sprintf(`{"name":"t%d","inputSchema":{}}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(p.m); n > paramMemoEntries {
		t.Errorf("memo holds %d entries, bound %d", n, paramMemoEntries)
	}
	big := fmt.Sprintf(`{"name":"big","description":"%s","inputSchema":{}}`, strings.Repeat("a", paramMemoTool))
	before := len(p.m)
	if _, err := p.headers(json.RawMessage(big)); err != nil {
		t.Fatal(err)
	}
	if len(p.m) != before {
		t.Errorf("a tool over %d bytes was remembered", paramMemoTool)
	}
}
