package mcpparse

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestFoldKey(t *testing.T) {
	tests := []struct {
		name, key, want string
	}{
		{name: "folded already", key: "path", want: "path"},
		{name: "upper case", key: "PATH", want: "path"},
		{name: "mixed case", key: "pAth", want: "path"},
		{name: "camel case", key: "namespaceName", want: "namespacename"},
		{name: "long s", key: "argument\u017f", want: "arguments"},
		{name: "Kelvin sign", key: "\u212aIND", want: "kind"},
		{name: "not a letter", key: "_meta-1", want: "_meta-1"},
		{name: "empty", key: "", want: ""},
		{name: "accented capital", key: "CAF\u00c9", want: "caf\u00e9"},
		{name: "Greek sigmas", key: "\u03a3\u03c2\u03c3", want: "\u03c3\u03c3\u03c3"},
		// U+0130 and U+0131 are alone in their orbits: encoding/json does
		// not read them as i, and neither does FoldKey.
		{name: "dotted capital I", key: "ur\u0130", want: "ur\u0130"},
		{name: "dotless i", key: "ur\u0131", want: "ur\u0131"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FoldKey(tc.key); got != tc.want {
				t.Errorf("FoldKey(%q) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

// TestFoldedMembers holds the rule on member names that differ from another,
// or from one MCP defines, only by case or Unicode simple folding: Go's
// encoding/json (and so mcp-go and any server decoding into Go structs)
// reads such a member as the other, and this package would not.
func TestFoldedMembers(t *testing.T) {
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":`
	tests := []struct {
		name string
		body string
		want *Error // nil: accepted
	}{
		// The message: only the six members, spelt exactly.
		{name: "JSONRPC", body: `{"JSONRPC":"2.0","id":1,"method":"ping"}`, want: ErrInvalidRequest},
		{name: "jsonrpc with a long s", body: `{"j\u017fonrpc":"2.0","id":1,"method":"ping"}`, want: ErrInvalidRequest},
		{name: "Method beside method", body: `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, want: ErrInvalidRequest},
		{name: "PARAMS", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","PARAMS":{"name":"t"}}`, want: ErrInvalidRequest},
		{name: "params with a long s", body: `{"jsonrpc":"2.0","id":1,"method":"ping","param\u017f":{}}`, want: ErrInvalidRequest},
		{name: "escaped Id", body: `{"jsonrpc":"2.0","\u0049d":1,"method":"ping"}`, want: ErrInvalidRequest},

		// params: a member MCP defines, in another spelling.
		{name: "ARGUMENTS", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","ARGUMENTS":{"path":"/etc"}}}`, want: ErrInvalidParams},
		{name: "Arguments", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","Arguments":{"path":"/etc"}}}`, want: ErrInvalidParams},
		{name: "arguments with a long s", body: "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"t\",\"argument\u017f\":{\"path\":\"/etc\"}}}", want: ErrInvalidParams},
		{name: "arguments with an escaped long s", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","argument\u017f":{"path":"/etc"}}}`, want: ErrInvalidParams},
		{name: "escaped ARGUMENTS", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","\u0041RGUMENTS":{}}}`, want: ErrInvalidParams},
		{name: "arguments and ARGUMENTS", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{},"ARGUMENTS":{"path":"/etc"}}}`, want: ErrInvalidRequest},
		{name: "NAME alone", body: `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"NAME":"t"}}`, want: ErrInvalidParams},
		{name: "URI alone", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"a:b","URI":"file:///etc/passwd"}}`, want: ErrInvalidRequest},
		{name: "Uri after uri on subscribe", body: `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"Uri":"file:///etc/passwd","uri":"a:b"}}`, want: ErrInvalidParams},
		{name: "_META", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","_META":{}}}`, want: ErrInvalidParams},
		{name: "Cursor on a list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"Cursor":"x"}}`, want: ErrInvalidParams},
		{name: "protocolversion in one case", body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolversion":"2025-06-18"}}`, want: ErrInvalidParams},
		{name: "task with a Kelvin sign", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","tas\u212a":{}}}`, want: ErrInvalidParams},
		{name: "a member MCP does not define, in any case", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","Vendor":1,"ARGS":2}}`},
		{name: "members MCP defines, spelt exactly", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{},"_meta":{"progressToken":1},"task":{"ttl":1}}}`},

		// arguments: any two keys of one object, at any depth.
		{name: "path and PATH", body: call + `{"path":"/tmp","PATH":"/etc"}}}`, want: ErrInvalidRequest},
		{name: "path and Path", body: call + `{"path":"/tmp","Path":"/etc"}}}`, want: ErrInvalidRequest},
		{name: "pAth and path", body: call + `{"pAth":"/etc","path":"/tmp"}}}`, want: ErrInvalidRequest},
		{name: "path and escaped p\\u0061th", body: call + `{"path":"/tmp","p\u0061th":"/etc"}}}`, want: ErrInvalidRequest},
		{name: "path and escaped \\u0050ATH", body: call + `{"path":"/tmp","\u0050ATH":"/etc"}}}`, want: ErrInvalidRequest},
		{name: "kind and Kelvin-sign KIND", body: call + `{"kind":"file","\u212aIND":"dir"}}}`, want: ErrInvalidRequest},
		{name: "kind and raw Kelvin-sign kind", body: call + "{\"kind\":\"file\",\"\u212aind\":\"dir\"}}}", want: ErrInvalidRequest},
		{name: "sort and long-s sort", body: call + `{"sort":"a","\u017fort":"b"}}}`, want: ErrInvalidRequest},
		{name: "nested path and PATH", body: call + `{"opts":{"dir":{"path":"/tmp","PATH":"/etc"}}}}}`, want: ErrInvalidRequest},
		{name: "in an array element", body: call + `{"files":[{"path":"/tmp"},{"path":"/tmp","Path":"/etc"}]}}}`, want: ErrInvalidRequest},
		{name: "in a large object", body: call + `{` + manyKeys(20, false) + `,"path":"/tmp","PATH":"/etc"}}}`, want: ErrInvalidRequest},
		{name: "escaped, in a large object", body: call + `{"\u0050ath":"/etc",` + manyKeys(20, false) + `,"path":"/tmp"}}}`, want: ErrInvalidRequest},
		{name: "one key in any spelling", body: call + `{"PATH":"/etc","Opts":{"ReCursive":true}}}}`},
		{name: "the same key in two objects", body: call + `{"path":"/tmp","opts":{"Path":"/etc"}}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.body), Options{})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				checkAccepted(t, []byte(tc.body), m)
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse error %v, want %v", err, tc.want)
			}
			if !json.Valid([]byte(tc.body)) {
				t.Fatal("test body is not JSON")
			}
		})
	}
}
