package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// FuzzFoldAgreement holds that no message is accepted whose reading by a
// lenient decoder differs from the policy's: for every body mcpparse
// accepts, Go's encoding/json (which matches struct fields ignoring case
// and Unicode simple folding, as mcp-go and servers decoding into structs
// do) reads the same method, name, uri and arguments as Parse returned, the
// arguments the policy sees are encoding/json's with their keys folded, a
// struct field path reads what the policy sees as mcp.arguments.path, and a
// rule denying a path under /etc denies exactly when that field does.
// Seeds are in testdata/fuzz/FuzzFoldAgreement.
func FuzzFoldAgreement(f *testing.F) {
	etc := map[string]*Set{}
	for _, engine := range []struct{ name, cel, rego string }{
		{name: "cel", cel: `!(has(mcp.arguments) && has(mcp.arguments.path) && type(mcp.arguments.path) == string && mcp.arguments.path.startsWith("/etc"))`},
		{name: "rego", rego: "package mcp.authz\n\nallow if not etc\n\netc if startswith(input.mcp.arguments.path, \"/etc\")\n"},
	} {
		etc[engine.name] = mustCompile(f, Config{Policies: []Policy{{Name: "etc", CEL: engine.cel, Rego: engine.rego}}})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := mcpparse.Parse(body, mcpparse.Options{MaxBytes: 64 << 10, MaxDepth: 16})
		if err != nil {
			return
		}
		var lenient struct {
			Method string
			Params struct {
				Name      string
				URI       string
				Arguments map[string]any
			}
		}
		var named bool
		switch m.Method {
		case "tools/call", "prompts/get":
			named = true
		case "resources/read", "resources/subscribe", "resources/unsubscribe":
		default:
			return
		}
		if named {
			if err := json.Unmarshal(body, &lenient); err != nil {
				t.Fatalf("accepted what encoding/json cannot read: %v", err)
			}
		} else {
			var r struct {
				Method string
				Params struct{ URI string }
			}
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("accepted what encoding/json cannot read: %v", err)
			}
			lenient.Method, lenient.Params.URI = r.Method, r.Params.URI
		}
		if lenient.Method != m.Method || lenient.Params.Name != m.Name || lenient.Params.URI != m.URI {
			t.Fatalf("encoding/json reads method %q name %q uri %q, Parse %q %q %q",
				lenient.Method, lenient.Params.Name, lenient.Params.URI, m.Method, m.Name, m.URI)
		}
		if !named {
			return
		}
		if (lenient.Params.Arguments != nil) != (m.Arguments != nil) {
			t.Fatalf("encoding/json reads arguments %v, Parse %q", lenient.Params.Arguments, m.Arguments)
		}

		d := newDoc(&Input{MCP: MCP{Method: m.Method, Arguments: m.Arguments}})
		d.decodeArguments()
		if d.argsErr != nil {
			if len(m.Arguments) <= MaxArgumentBytes {
				t.Fatalf("policy cannot read accepted arguments %q: %v", m.Arguments, d.argsErr)
			}
			return
		}
		var want any
		if lenient.Params.Arguments != nil {
			if want, err = foldKeys(lenient.Params.Arguments); err != nil {
				t.Fatalf("accepted arguments whose keys fold onto one another: %v", err)
			}
		}
		if !reflect.DeepEqual(d.args, want) {
			t.Fatalf("policy sees arguments %v, encoding/json reads (folded) %v", d.args, want)
		}

		var field struct {
			Params struct {
				Arguments struct{ Path json.RawMessage }
			}
		}
		if err := json.Unmarshal(body, &field); err != nil {
			t.Fatalf("encoding/json cannot read arguments.path: %v", err)
		}
		seen, has := any(nil), false
		if a, ok := d.args.(map[string]any); ok {
			seen, has = a["path"]
		}
		var path any
		if field.Params.Arguments.Path != nil {
			if err := json.Unmarshal(field.Params.Arguments.Path, &path); err != nil {
				t.Fatal(err)
			}
		}
		if has != (field.Params.Arguments.Path != nil) || !reflect.DeepEqual(seen, path) {
			t.Fatalf("a struct field path reads %s, the policy sees %v (present %v)", field.Params.Arguments.Path, seen, has)
		}
		s, _ := path.(string)
		denied := strings.HasPrefix(s, "/etc")
		for name, set := range etc {
			in := &Input{MCP: MCP{Method: m.Method, Server: "s", Arguments: m.Arguments}}
			if dec := set.Decide(t.Context(), in); dec.Allow == denied {
				t.Fatalf("%s: path %v read by encoding/json, decision %+v", name, path, dec)
			}
		}
	})
}
