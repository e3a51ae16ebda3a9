package mcpparse

import (
	"errors"
	"testing"
)

func TestParseCompletion(t *testing.T) {
	tests := []struct {
		name, body    string
		wantName, uri string
		ref           string
		err           error
	}{
		{name: "prompt", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"ev_greet"},"argument":{"name":"a","value":"x"}}}`, wantName: "ev_greet", ref: "ref/prompt"},
		{name: "resource", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"test://t/{id}"},"argument":{"name":"id","value":"1"}}}`, uri: "test://t/{id}", ref: "ref/resource"},
		{name: "ref after argument", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"argument":{"name":"a","value":"x"},"ref":{"name":"p","title":"P","type":"ref/prompt"}}}`, wantName: "p", ref: "ref/prompt"},
		{name: "no ref", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"argument":{"name":"a","value":"x"}}}`, err: ErrInvalidParams},
		{name: "no params", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete"}`, err: ErrInvalidParams},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}}`, err: ErrInvalidRequest},
		{name: "ref not object", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":"ref/prompt"}}`, err: ErrInvalidParams},
		{name: "unknown type", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/tool","name":"p"}}}`, err: ErrInvalidParams},
		{name: "type not string", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":1,"name":"p"}}}`, err: ErrInvalidParams},
		{name: "prompt bad name", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a b"}}}`, err: ErrInvalidParams},
		{name: "prompt with uri", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p","uri":"x://y"}}}`, err: ErrInvalidParams},
		{name: "resource with name", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"x://y","name":"p"}}}`, err: ErrInvalidParams},
		{name: "resource empty uri", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":""}}}`, err: ErrInvalidParams},
		{name: "resource control char", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"x://\u0001"}}}`, err: ErrInvalidParams},
		{name: "name in another case", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p","NAME":"q"}}}`, err: ErrInvalidRequest},
		{name: "type in another case", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","Type":"ref/resource","name":"p"}}}`, err: ErrInvalidRequest},
		{name: "duplicate name", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p","name":"q"}}}`, err: ErrInvalidRequest},
		{name: "ref in another case", body: `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"Ref":{}}}`, err: ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.body), Options{})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse: %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Name != tt.wantName || m.URI != tt.uri || m.Ref != tt.ref {
				t.Fatalf("name %q uri %q ref %q, want %q %q %q", m.Name, m.URI, m.Ref, tt.wantName, tt.uri, tt.ref)
			}
			if m.Name != "" {
				spliced := Splice([]byte(tt.body), m.NameSpan, []byte(`"greet"`))
				m2, err := Parse(spliced, Options{})
				if err != nil || m2.Name != "greet" {
					t.Fatalf("spliced: %v %q", err, m2.Name)
				}
			}
		})
	}
}

func TestCheckMirror(t *testing.T) {
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ev_echo","arguments":{}}}`
	call26 := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ev_echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	read := `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"test://ü"}}`
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	badMeta := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":7}}}`
	tests := []struct {
		name, body string
		h          Mirror
		err        error
	}{
		{name: "2025 no headers", body: call, h: Mirror{Version: "2025-11-25"}},
		{name: "no version no headers", body: call},
		{name: "2025 matching", body: call, h: Mirror{Version: "2025-11-25", Method: "tools/call", HasMethod: true, Name: "ev_echo", HasName: true}},
		{name: "2025 method mismatch", body: call, h: Mirror{Version: "2025-11-25", Method: "tools/list", HasMethod: true}, err: ErrHeaderMismatch},
		{name: "2025 name mismatch", body: call, h: Mirror{Name: "ev_other", HasName: true}, err: ErrHeaderMismatch},
		{name: "2026 both", body: call, h: Mirror{Version: "2026-07-28", Method: "tools/call", HasMethod: true, Name: "ev_echo", HasName: true}},
		{name: "2026 no method", body: call, h: Mirror{Version: "2026-07-28", Name: "ev_echo", HasName: true}, err: ErrHeaderMismatch},
		{name: "2026 no name", body: call, h: Mirror{Version: "2026-07-28", Method: "tools/call", HasMethod: true}, err: ErrHeaderMismatch},
		{name: "2026 empty name", body: call, h: Mirror{Version: "2026-07-28", Method: "tools/call", HasMethod: true, HasName: true}, err: ErrHeaderMismatch},
		{name: "2026 list needs no name", body: list, h: Mirror{Version: "2026-07-28", Method: "tools/list", HasMethod: true}},
		{name: "2026 by meta", body: call26, h: Mirror{Method: "tools/call", HasMethod: true}, err: ErrHeaderMismatch},
		{name: "2026 by meta ok", body: call26, h: Mirror{Version: "2026-07-28", Method: "tools/call", HasMethod: true, Name: "ev_echo", HasName: true}},
		{name: "version disagrees with meta", body: call26, h: Mirror{Version: "2025-11-25", Method: "tools/call", HasMethod: true, Name: "ev_echo", HasName: true}, err: ErrHeaderMismatch},
		{name: "meta version not string", body: badMeta, err: ErrInvalidParams},
		{name: "base64 name", body: read, h: Mirror{Version: "2026-07-28", Method: "resources/read", HasMethod: true, Name: "=?base64?dGVzdDovL8O8?=", HasName: true}},
		{name: "base64 method", body: list, h: Mirror{Version: "2026-07-28", Method: "=?base64?dG9vbHMvbGlzdA==?=", HasMethod: true}},
		{name: "bad base64", body: read, h: Mirror{Version: "2026-07-28", Method: "resources/read", HasMethod: true, Name: "=?base64?***?=", HasName: true}, err: ErrHeaderMismatch},
		{name: "base64 other name", body: read, h: Mirror{Version: "2026-07-28", Method: "resources/read", HasMethod: true, Name: "=?base64?dGVzdDovL3g=?=", HasName: true}, err: ErrHeaderMismatch},
		{name: "raw non-base64 form compared as is", body: read, h: Mirror{Version: "2026-07-28", Method: "resources/read", HasMethod: true, Name: "test://ü", HasName: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = CheckMirror(tt.h, &m)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("CheckMirror: %v, want %v", err, tt.err)
			}
			if errors.Is(tt.err, ErrHeaderMismatch) && Code(err) != CodeHeaderMismatch {
				t.Fatalf("code %d", Code(err))
			}
		})
	}
}

func TestCheckParam(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		present bool
		arg     string
		ok      bool
	}{
		{name: "string", header: "us-west", present: true, arg: `"us-west"`, ok: true},
		{name: "string differs", header: "eu", present: true, arg: `"us-west"`},
		{name: "escaped string", header: "a/b", present: true, arg: `"a\/b"`, ok: true},
		{name: "base64 string", header: "=?base64?w7xiZXI=?=", present: true, arg: `"über"`, ok: true},
		{name: "bad base64", header: "=?base64?w7xiZXI?=", present: true, arg: `"über"`},
		{name: "bool", header: "true", present: true, arg: `true`, ok: true},
		{name: "bool differs", header: "TRUE", present: true, arg: `true`},
		{name: "integer", header: "42", present: true, arg: `42`, ok: true},
		{name: "negative integer", header: "-7", present: true, arg: `-7`, ok: true},
		{name: "integer differs", header: "43", present: true, arg: `42`},
		{name: "integer as float header", header: "42.0", present: true, arg: `42`},
		// The header spells the integer as ParamValue does, exactly: what a
		// gateway's policy reads is what the server is sent.
		{name: "integer with plus sign", header: "+42", present: true, arg: `42`},
		{name: "integer with leading zero", header: "042", present: true, arg: `42`},
		{name: "float argument", header: "1.5", present: true, arg: `1.5`},
		{name: "unsafe integer", header: "9007199254740993", present: true, arg: `9007199254740993`},
		{name: "object argument", header: "{}", present: true, arg: `{}`},
		{name: "header without argument", header: "x", present: true},
		{name: "header with null argument", header: "null", present: true, arg: `null`},
		{name: "argument without header", arg: `"x"`},
		{name: "neither", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var arg []byte
			if tt.arg != "" {
				arg = []byte(tt.arg)
			}
			err := CheckParam(tt.header, tt.present, arg)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckParam: %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrHeaderMismatch) {
				t.Fatalf("error %v does not wrap ErrHeaderMismatch", err)
			}
		})
	}
}

func TestArgument(t *testing.T) {
	args := []byte(`{"region":"us","Count":3,"nested":{"zone":"a"}}`)
	tests := []struct {
		name, header, want string
		ok                 bool
	}{
		{name: "same case", header: "region", want: `"us"`, ok: true},
		{name: "header case", header: "Region", want: `"us"`, ok: true},
		{name: "integer", header: "count", want: `3`, ok: true},
		{name: "nested is not top level", header: "zone"},
		{name: "absent", header: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, ok := Argument(args, tt.header)
			if ok != tt.ok || string(raw) != tt.want {
				t.Fatalf("Argument(%q) = %s %v, want %s %v", tt.header, raw, ok, tt.want, tt.ok)
			}
		})
	}
	if _, ok := Argument(nil, "x"); ok {
		t.Fatal("Argument(nil) found something")
	}
}

// TestCheckMirrorEscapedMeta: a _meta key spelt with escapes is still read.
func TestCheckMirrorEscapedMeta(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocol\u0056ersion":"2026-07-28"}}}`
	m, err := Parse([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckMirror(Mirror{}, &m); !errors.Is(err, ErrHeaderMismatch) {
		t.Fatalf("CheckMirror: %v, want a missing Mcp-Method", err)
	}
}

// TestParamValue: (ParamValue, EncodeHeader) an argument becomes its header
// value as SEP-2243 encodes it (the spec's own examples), anything that is
// not plain visible ASCII in base64 so that no CR, LF or control character
// reaches a header, and every value it makes is one CheckParam accepts for
// that argument.
func TestParamValue(t *testing.T) {
	tests := []struct {
		name, arg, want string
		err             bool
	}{
		{name: "plain", arg: `"us-west1"`, want: "us-west1"},
		{name: "inner space", arg: `"a b"`, want: "a b"},
		{name: "non-ASCII", arg: `"Hello, 世界"`, want: "=?base64?SGVsbG8sIOS4lueVjA==?="},
		{name: "padded", arg: `" padded "`, want: "=?base64?IHBhZGRlZCA=?="},
		{name: "newline", arg: `"line1\nline2"`, want: "=?base64?bGluZTEKbGluZTI=?="},
		{name: "CRLF injection", arg: `"us\r\nX-Evil: 1"`, want: "=?base64?dXMNClgtRXZpbDogMQ==?="},
		{name: "tab", arg: `"a\tb"`, want: "=?base64?YQli?="},
		{name: "DEL", arg: `"a\u007f"`, want: "=?base64?YX8=?="},
		{name: "NUL", arg: `"a\u0000"`, want: "=?base64?YQA=?="},
		{name: "sentinel", arg: `"=?base64?literal?="`, want: "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="},
		{name: "empty", arg: `""`, want: "=?base64??="},
		{name: "escaped", arg: `"\u0075s"`, want: "us"},
		{name: "true", arg: `true`, want: "true"},
		{name: "false", arg: `false`, want: "false"},
		{name: "integer", arg: `-7`, want: "-7"},
		{name: "largest safe", arg: `9007199254740991`, want: "9007199254740991"},
		{name: "beyond safe", arg: `9007199254740992`, err: true},
		{name: "fraction", arg: `1.5`, err: true},
		{name: "exponent", arg: `1e2`, err: true},
		{name: "null", arg: `null`, err: true},
		{name: "object", arg: `{"a":1}`, err: true},
		{name: "array", arg: `["us"]`, err: true},
		{name: "lone surrogate", arg: `"\ud800"`, err: true},
		{name: "nothing", arg: ``, err: true},
		{name: "not JSON", arg: `tru`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParamValue([]byte(tt.arg))
			if tt.err {
				if !errors.Is(err, ErrInvalidParams) {
					t.Fatalf("ParamValue = %q, %v; want an ErrInvalidParams", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParamValue = %q, %v; want %q", got, err, tt.want)
			}
			for i := range len(got) {
				if got[i] < 0x20 || got[i] > 0x7e {
					t.Fatalf("header value %q holds byte %#x", got, got[i])
				}
			}
			if err := CheckParam(got, true, []byte(tt.arg)); err != nil {
				t.Errorf("CheckParam(%q, %s) = %v", got, tt.arg, err)
			}
		})
	}
}
