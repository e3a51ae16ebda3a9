package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http/httpguts"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/router/upstream"
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
		{name: "region header", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":"Region"}}}}`, want: map[string]string{"region": "Mcp-Param-Region"}},
		{name: "same name, other header", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":"Zone"}}}}`, want: map[string]string{"region": "Mcp-Param-Zone"}},
		{name: "same name, none", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string"}}}}`, want: map[string]string{}},
		{name: "unreadable", tool: `{"name":"t","inputSchema":[]}`, err: true},
		// Keys are the server's, exactly: a key spelled in another case is
		// another key (encoding/json would have read both as these).
		{name: "keys in another case", tool: `{"name":"t","InputSchema":{"properties":{"region":{"x-mcp-header":"Region"}}},"inputSchema":{"properties":{"zone":{"X-MCP-Header":"Zone"}}}}`, want: map[string]string{}},
		{name: "a duplicate key", tool: `{"name":"t","inputSchema":{"properties":{"region":{"x-mcp-header":"Region","x-mcp-header":"Zone"}}}}`, err: true},
		{name: "a header that is no string", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":7}}}}`, err: true},
		{name: "null schema", tool: `{"name":"t","inputSchema":null}`, want: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // computed, then remembered
				b, err := p.bindings(json.RawMessage(tc.tool))
				got := bindingMap(b)
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
		if _, err := p.bindings(json.RawMessage(fmt.Sprintf(`{"name":"t%d","inputSchema":{}}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(p.m); n > paramMemoEntries {
		t.Errorf("memo holds %d entries, bound %d", n, paramMemoEntries)
	}
	big := fmt.Sprintf(`{"name":"big","description":"%s","inputSchema":{}}`, strings.Repeat("a", paramMemoTool))
	before := len(p.m)
	if _, err := p.bindings(json.RawMessage(big)); err != nil {
		t.Fatal(err)
	}
	if len(p.m) != before {
		t.Errorf("a tool over %d bytes was remembered", paramMemoTool)
	}
}

// bindingMap is bindings as path (joined with dots) -> header.
func bindingMap(bindings []paramBinding) map[string]string {
	m := map[string]string{}
	for _, b := range bindings {
		m[strings.Join(b.path, ".")] = b.header
	}
	return m
}

// TestParamBindings: what a definition marks, at any depth of properties,
// and the definitions refused (ErrToolDefinition) because a mark could not
// be honoured safely: a header name that is not a token (a space, CR/LF, a
// colon), empty, named twice in any case, too many, or too deep.
func TestParamBindings(t *testing.T) {
	prop := func(name, header string) string {
		return fmt.Sprintf(`%q:{"type":"string","x-mcp-header":%q}`, name, header)
	}
	many := func(n int) string {
		var ps []string
		for i := range n {
			ps = append(ps, prop(fmt.Sprintf("a%d", i), fmt.Sprintf("H%d", i)))
		}
		return `{"name":"t","inputSchema":{"type":"object","properties":{` + strings.Join(ps, ",") + `}}}`
	}
	deep := func(levels int) string {
		s := `{"type":"string","x-mcp-header":"Deep"}`
		for range levels {
			s = `{"type":"object","properties":{"o":` + s + `}}`
		}
		return `{"name":"t","inputSchema":` + s + `}`
	}
	tests := []struct {
		name string
		tool string
		want map[string]string // path -> header; nil: refused
	}{
		{name: "top level", tool: `{"name":"t","inputSchema":{"properties":{` + prop("region", "Region") + `,"n":{"type":"integer"}}}}`, want: map[string]string{"region": "Mcp-Param-Region"}},
		{name: "nested", tool: `{"name":"t","inputSchema":{"properties":{"loc":{"type":"object","properties":{` + prop("zone", "zone") + `}}}}}`, want: map[string]string{"loc.zone": "Mcp-Param-Zone"}},
		{name: "escaped key", tool: `{"name":"t","inputSchema":{"properties":{"r":{"type":"string","x-mcp-head\u0065r":"R"}}}}`, want: map[string]string{"r": "Mcp-Param-R"}},
		{name: "integer and boolean", tool: `{"name":"t","inputSchema":{"properties":{"n":{"type":"integer","x-mcp-header":"N"},"b":{"type":"boolean","x-mcp-header":"B"}}}}`, want: map[string]string{"n": "Mcp-Param-N", "b": "Mcp-Param-B"}},
		{name: "a property named x-mcp-header", tool: `{"name":"t","inputSchema":{"properties":{"x-mcp-header":{"type":"string"}}}}`, want: map[string]string{}},
		{name: "the key in data, not a schema", tool: `{"name":"t","inputSchema":{"properties":{"r":{"type":"object","default":{"x-mcp-header":"v"},"examples":[{"x-mcp-header":"v"}],"const":{"x-mcp-header":"v"},"enum":[{"x-mcp-header":"v"}]}}}}`, want: map[string]string{}},
		// Only string, integer and boolean may be marked (SEP-2243).
		{name: "a mark on an object property", tool: `{"name":"t","inputSchema":{"properties":{"a":{"type":"object","x-mcp-header":"A","properties":{` + prop("b", "B") + `}}}}}`},
		{name: "a mark on a number", tool: `{"name":"t","inputSchema":{"properties":{"r":{"type":"number","x-mcp-header":"R"}}}}`},
		{name: "a mark on an untyped property", tool: `{"name":"t","inputSchema":{"properties":{"r":{"x-mcp-header":"R"}}}}`},
		{name: "a mark on several types", tool: `{"name":"t","inputSchema":{"properties":{"r":{"type":["string","null"],"x-mcp-header":"R"}}}}`},
		// Only a chain of properties from the root may reach a mark.
		{name: "under items", tool: `{"name":"t","inputSchema":{"properties":{"l":{"type":"array","items":{"type":"string","x-mcp-header":"L"}}}}}`},
		{name: "under the properties of items", tool: `{"name":"t","inputSchema":{"properties":{"l":{"type":"array","items":{"type":"object","properties":{` + prop("r", "R") + `}}}}}}`},
		{name: "under prefixItems", tool: `{"name":"t","inputSchema":{"properties":{"l":{"type":"array","prefixItems":[{"type":"string","x-mcp-header":"L"}]}}}}`},
		{name: "under oneOf", tool: `{"name":"t","inputSchema":{"properties":{"r":{"oneOf":[{"type":"string","x-mcp-header":"R"},{"type":"integer"}]}}}}`},
		{name: "under allOf at the root", tool: `{"name":"t","inputSchema":{"allOf":[{"properties":{` + prop("r", "R") + `}}]}}`},
		{name: "under if", tool: `{"name":"t","inputSchema":{"if":{"properties":{` + prop("r", "R") + `}}}}`},
		{name: "in $defs, reached by $ref", tool: `{"name":"t","inputSchema":{"$defs":{"R":{"type":"string","x-mcp-header":"R"}},"properties":{"r":{"$ref":"#/$defs/R"}}}}`},
		{name: "under patternProperties", tool: `{"name":"t","inputSchema":{"patternProperties":{"^r":{"type":"string","x-mcp-header":"R"}}}}`},
		{name: "under additionalProperties", tool: `{"name":"t","inputSchema":{"properties":{"o":{"type":"object","additionalProperties":{"type":"string","x-mcp-header":"R"}}}}}`},
		{name: "on the root schema", tool: `{"name":"t","inputSchema":{"type":"object","x-mcp-header":"Root","properties":{}}}`},
		{name: "a valid mark and a stray one", tool: `{"name":"t","inputSchema":{"properties":{` + prop("r", "R") + `,"l":{"type":"array","items":{"type":"string","x-mcp-header":"L"}}}}}`},
		{name: "escaped, under items", tool: `{"name":"t","inputSchema":{"properties":{"l":{"type":"array","items":{"type":"string","x-mcp-head\u0065r":"L"}}}}}`},
		{name: "boolean subschema", tool: `{"name":"t","inputSchema":{"properties":{"any":true,` + prop("r", "R") + `}}}`, want: map[string]string{"r": "Mcp-Param-R"}},
		{name: "token characters", tool: `{"name":"t","inputSchema":{"properties":{` + prop("r", "x_y.z!#$%&'*+^`|~9") + `}}}`, want: map[string]string{"r": "Mcp-Param-X_y.z!#$%&'*+^`|~9"}},
		{name: "as many as allowed", tool: many(32), want: func() map[string]string {
			m := map[string]string{}
			for i := range 32 {
				m[fmt.Sprintf("a%d", i)] = fmt.Sprintf("Mcp-Param-H%d", i)
			}
			return m
		}()},
		{name: "as deep as allowed", tool: deep(maxParamDepth), want: map[string]string{strings.TrimSuffix(strings.Repeat("o.", maxParamDepth), "."): "Mcp-Param-Deep"}},
		{name: "deep without a mark", tool: strings.Replace(deep(3*maxParamDepth), `"x-mcp-header":"Deep"`, `"description":"a\nb"`, 1), want: map[string]string{}},
		{name: "space", tool: `{"name":"t","inputSchema":{"properties":{` + prop("r", "Re gion") + `}}}`},
		{name: "CRLF", tool: `{"name":"t","inputSchema":{"properties":{"r":{"type":"string","x-mcp-header":"R\r\nX-Evil: 1"}}}}`},
		{name: "colon", tool: `{"name":"t","inputSchema":{"properties":{` + prop("r", "R:x") + `}}}`},
		{name: "non-ASCII", tool: `{"name":"t","inputSchema":{"properties":{` + prop("r", "Régión") + `}}}`},
		{name: "empty", tool: `{"name":"t","inputSchema":{"properties":{` + prop("r", "") + `}}}`},
		{name: "two in another case", tool: `{"name":"t","inputSchema":{"properties":{` + prop("a", "Region") + `,` + prop("b", "REGION") + `}}}`},
		{name: "nested twice", tool: `{"name":"t","inputSchema":{"properties":{` + prop("a", "R") + `,"o":{"properties":{` + prop("b", "r") + `}}}}}`},
		{name: "too many", tool: many(33)},
		{name: "too deep", tool: deep(maxParamDepth + 1)},
		{name: "properties not an object", tool: `{"name":"t","inputSchema":{"properties":[]}}`},
		{name: "a mark on a property that is no object", tool: `{"name":"t","inputSchema":{"properties":{"r":"x-mcp-header"}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := paramBindings([]byte(tc.tool))
			if tc.want == nil {
				if !errors.Is(err, ErrToolDefinition) {
					t.Fatalf("paramBindings = %v, %v; want an ErrToolDefinition", bindingMap(b), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, bindingMap(b)); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckNestedParams: a mark nested in properties is checked as a top-level one is,
// against the argument at its path.
func TestCheckNestedParams(t *testing.T) {
	tool := []byte(`{"name":"t","inputSchema":{"properties":{"loc":{"type":"object","properties":{"zone":{"type":"string","x-mcp-header":"Zone"}}}}}}`)
	for _, tc := range []struct {
		name    string
		args    string
		headers http.Header
		ok      bool
	}{
		{name: "matching", args: `{"loc":{"zone":"eu-1"}}`, headers: http.Header{"Mcp-Param-Zone": {"eu-1"}}, ok: true},
		{name: "absent", args: `{"loc":{}}`, ok: true},
		{name: "parent not an object", args: `{"loc":"eu-1"}`, ok: true},
		{name: "missing header", args: `{"loc":{"zone":"eu-1"}}`},
		{name: "different", args: `{"loc":{"zone":"eu-1"}}`, headers: http.Header{"Mcp-Param-Zone": {"eu-2"}}},
		{name: "top-level argument of the name", args: `{"zone":"eu-1"}`, headers: http.Header{"Mcp-Param-Zone": {"eu-1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Params
			if err := p.Check(tc.headers, []byte(tc.args), tool); (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestMirror: (Params.Mirror) the headers made for a call are the arguments of the body
// sent, at each mark's path, encoded; an absent or null argument gets
// none, one that cannot be mirrored and a definition that cannot be
// honoured refuse the call; and every set it makes passes Check.
func TestMirror(t *testing.T) {
	tool := `{"name":"t","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":"Region"},"n":{"type":"integer","x-mcp-header":"n"},"loc":{"properties":{"zone":{"type":"string","x-mcp-header":"Zone"}}},"q":{"type":"string"}}}}`
	body := func(args string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":` + args + `}}`
	}
	tests := []struct {
		name, tool, body string
		want             []upstream.Param
		err              error
	}{
		{name: "all", body: body(`{"region":"us","n":42,"loc":{"zone":"eu-1"},"q":"select"}`),
			want: []upstream.Param{{Name: "Mcp-Param-Region", Value: "us"}, {Name: "Mcp-Param-N", Value: "42"}, {Name: "Mcp-Param-Zone", Value: "eu-1"}}},
		{name: "non-ASCII", body: body(`{"region":"Hello, 世界"}`), want: []upstream.Param{{Name: "Mcp-Param-Region", Value: "=?base64?SGVsbG8sIOS4lueVjA==?="}}},
		{name: "CRLF in a value", body: body(`{"region":"us\r\nX-Evil: 1"}`), want: []upstream.Param{{Name: "Mcp-Param-Region", Value: "=?base64?dXMNClgtRXZpbDogMQ==?="}}},
		{name: "absent and null", body: body(`{"region":null,"q":"x"}`), want: []upstream.Param{}},
		{name: "no arguments", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`, want: []upstream.Param{}},
		{name: "a key of another case is another argument", body: body(`{"Region":"us"}`), want: []upstream.Param{}},
		{name: "a tool that marks none", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string"}}}}`, body: body(`{"region":"us"}`)},
		{name: "a fraction", body: body(`{"n":1.5}`), err: mcpparse.ErrInvalidParams},
		{name: "an object", body: body(`{"region":{"a":1}}`), err: mcpparse.ErrInvalidParams},
		{name: "a hostile header name", tool: `{"name":"t","inputSchema":{"properties":{"r":{"type":"string","x-mcp-header":"R\r\nX-Evil: 1"}}}}`, body: body(`{"r":"us"}`), err: ErrToolDefinition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			def := tool
			if tc.tool != "" {
				def = tc.tool
			}
			var p Params
			got, err := p.Mirror([]byte(tc.body), []byte(def))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Mirror = %v, %v; want %v", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			h := http.Header{}
			for _, p := range got {
				h.Add(p.Name, p.Value)
			}
			m, err := mcpparse.Parse([]byte(tc.body), mcpparse.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Check(h, m.Arguments, []byte(def)); err != nil {
				t.Errorf("Check of what Mirror made: %v", err)
			}
		})
	}
}

// FuzzMirror: whatever the tool definition and the arguments, every header
// Mirror makes has a token for a name and a value of visible ASCII and
// inner spaces only (no CR, LF or other control: nothing can be smuggled
// into the request), at most upstream.MaxParams of them, and Check accepts
// them for the same arguments.
func FuzzMirror(f *testing.F) {
	f.Add(`{"properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`, `{"region":"us"}`)
	f.Add(`{"properties":{"loc":{"properties":{"z":{"type":"string","x-mcp-header":"Zone"}}}}}`, `{"loc":{"z":"a\r\nb"}}`)
	f.Add(`{"properties":{"n":{"type":"integer","x-mcp-header":"N"},"b":{"type":"boolean","x-mcp-header":"B"}}}`, `{"n":-7,"b":true}`)
	f.Add(`{"properties":{"r":{"x-mcp-head\u0065r":"R\r\nX: 1"}}}`, `{"r":" padded "}`)
	f.Fuzz(func(t *testing.T, schema, args string) {
		tool := []byte(`{"name":"t","inputSchema":` + schema + `}`)
		body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":` + args + `}}`)
		m, err := mcpparse.Parse(body, mcpparse.Options{})
		if err != nil {
			return // the router never forwards it
		}
		var p Params
		got, err := p.Mirror(body, tool)
		if err != nil {
			return
		}
		if len(got) > upstream.MaxParams {
			t.Fatalf("%d headers", len(got))
		}
		h := http.Header{}
		for _, hp := range got {
			if !strings.HasPrefix(hp.Name, mcpparse.ParamHeaderPrefix) || !httpguts.ValidHeaderFieldName(hp.Name) {
				t.Fatalf("header name %q", hp.Name)
			}
			for i := range len(hp.Value) {
				if c := hp.Value[i]; c < 0x20 || c > 0x7e {
					t.Fatalf("header %s value %q holds %#x", hp.Name, hp.Value, c)
				}
			}
			h.Add(hp.Name, hp.Value)
		}
		if err := p.Check(h, m.Arguments, tool); err != nil {
			t.Fatalf("Check of what Mirror made (%v): %v", got, err)
		}
	})
}
