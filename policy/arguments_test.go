package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

// pathUnderEtc is one rule, in both engines: deny a path under /etc, at the
// top of the arguments or in opts.
var pathUnderEtc = []struct {
	name   string
	policy Policy
}{
	{name: "cel", policy: Policy{Name: "etc", CEL: `!(has(mcp.arguments.path) && mcp.arguments.path.startsWith("/etc")) &&
!(has(mcp.arguments.opts) && has(mcp.arguments.opts.path) && mcp.arguments.opts.path.startsWith("/etc")) &&
!("dir" in mcp.arguments && mcp.arguments["dir"].startsWith("/etc"))`}},
	{name: "rego", policy: Policy{Name: "etc", Rego: `package mcp.authz

default allow := false

allow if not denied

denied if startswith(input.mcp.arguments.path, "/etc")

denied if startswith(input.mcp.arguments.opts.path, "/etc")

denied if startswith(object.get(input.mcp.arguments, "dir", ""), "/etc")
`}},
}

// TestArgumentKeysFolded holds that a rule on a key sees every spelling a
// lenient decoder (encoding/json) reads as that key, at every depth.
func TestArgumentKeysFolded(t *testing.T) {
	tests := []struct {
		name  string
		args  string
		allow bool
	}{
		{name: "path", args: `{"path":"/etc/passwd"}`},
		{name: "PATH", args: `{"PATH":"/etc/passwd"}`},
		{name: "Path", args: `{"Path":"/etc/passwd"}`},
		{name: "pAth", args: `{"pAth":"/etc/passwd"}`},
		{name: "escaped p\\u0061th", args: `{"p\u0061th":"/etc/passwd"}`},
		{name: "escaped \\u0050ATH", args: `{"\u0050ATH":"/etc/passwd"}`},
		{name: "nested Opts.PATH", args: `{"Opts":{"PATH":"/etc/shadow"}}`},
		{name: "DIR with object.get and in", args: `{"DIR":"/etc"}`},
		{name: "in a list, nested", args: `{"path":"/tmp","list":[{"Path":"/x"}],"opts":{"pAtH":"/etc"}}`},
		{name: "allowed path", args: `{"PATH":"/tmp/x","Opts":{"Path":"/home"}}`, allow: true},
	}
	for _, engine := range pathUnderEtc {
		s := mustCompile(t, Config{Policies: []Policy{engine.policy}})
		for _, tc := range tests {
			t.Run(engine.name+"/"+tc.name, func(t *testing.T) {
				in := toolCall("read_file")
				in.MCP.Arguments = json.RawMessage(tc.args)
				d := s.Decide(t.Context(), in)
				if d.Allow != tc.allow {
					t.Errorf("Decide = %+v, want allow %v", d, tc.allow)
				}
			})
		}
	}
}

// TestArgumentKeysPresented holds the exact document a policy sees.
func TestArgumentKeysPresented(t *testing.T) {
	in := toolCall("read_file")
	in.MCP.Arguments = json.RawMessage(`{"PATH":"/a","Opts":{"ReCursive":true,"L":[{"K\u212a":1}]},"\u212aind":"k","argument\u017f":"s"}`)
	const want = `{"arguments":"s","kind":"k","opts":{"l":[{"kk":1}],"recursive":true},"path":"/a"}`
	for _, tc := range []struct {
		name   string
		policy Policy
	}{
		{name: "cel", policy: Policy{Name: "p", CEL: `mcp.arguments == {"path": "/a", "opts": {"recursive": true, "l": [{"kk": 1}]}, "kind": "k", "arguments": "s"}`}},
		{name: "rego", policy: Policy{Name: "p", Rego: "package mcp.authz\n\nallow if input.mcp.arguments == {\"path\": \"/a\", \"opts\": {\"recursive\": true, \"l\": [{\"kk\": 1}]}, \"kind\": \"k\", \"arguments\": \"s\"}\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustCompile(t, Config{Policies: []Policy{tc.policy}})
			if d := s.Decide(t.Context(), in); !d.Allow {
				t.Errorf("Decide = %+v; want the arguments seen as %s", d, want)
			}
		})
	}
}

// TestArgumentKeysColliding: keys that fold onto one another (refused by
// mcpparse, so they reach a policy only through another caller of Decide)
// deny with policy_error, whatever the rule.
func TestArgumentKeysColliding(t *testing.T) {
	for _, args := range []string{
		`{"path":"/tmp","PATH":"/etc"}`,
		`{"a":[{"b":{"Kind":1,"\u212aind":2}}]}`,
	} {
		for _, tc := range []struct {
			name   string
			policy Policy
		}{
			{name: "cel", policy: Policy{Name: "p", CEL: `has(mcp.arguments.a) || true`}},
			{name: "rego", policy: Policy{Name: "p", Rego: "package mcp.authz\n\nallow if input.mcp.arguments\n"}},
		} {
			t.Run(tc.name+"/"+args, func(t *testing.T) {
				s := mustCompile(t, Config{Policies: []Policy{tc.policy}})
				in := toolCall("t")
				in.MCP.Arguments = json.RawMessage(args)
				if d := s.Decide(t.Context(), in); d.Allow || d.Reason != ReasonPolicyError {
					t.Errorf("Decide = %+v, want a policy_error denial", d)
				}
			})
		}
	}
}

// TestArgumentKeysCompile: a policy naming an argument key not in folded
// form would never match (a deny rule that silently never denies): refused.
func TestArgumentKeysCompile(t *testing.T) {
	rego := func(body string) Policy {
		return Policy{Name: "p", Rego: "package mcp.authz\n\n" + body + "\n"}
	}
	tests := []struct {
		name   string
		policy Policy
		want   string // substring of the error; "" compiles
	}{
		{name: "cel field", policy: Policy{Name: "p", CEL: `mcp.arguments.namespaceName != "kube-system"`}, want: `p.cel:1:14: argument key "namespaceName" never matches`},
		{name: "cel has", policy: Policy{Name: "p", CEL: `!has(mcp.arguments.Path)`}, want: `write "path"`},
		{name: "cel index", policy: Policy{Name: "p", CEL: `mcp.arguments["Path"] == "x"`}, want: `"Path"`},
		{name: "cel nested", policy: Policy{Name: "p", CEL: `mcp.arguments.opts.Recursive == true`}, want: `"Recursive"`},
		{name: "cel under an index", policy: Policy{Name: "p", CEL: `mcp.arguments.items[0].Name == "x"`}, want: `"Name"`},
		{name: "cel optional", policy: Policy{Name: "p", CEL: `mcp.arguments.?Path.orValue("") == ""`}, want: `"Path"`},
		{name: "cel optional index", policy: Policy{Name: "p", CEL: `mcp.?arguments[?"Path"].orValue("") == ""`}, want: `"Path"`},
		{name: "cel in", policy: Policy{Name: "p", CEL: `!("Path" in mcp.arguments)`}, want: `"Path"`},
		{name: "cel long s", policy: Policy{Name: "p", CEL: "mcp.arguments[\"pathſ\"] == \"\""}, want: `write "paths"`},
		{name: "cel folded keys", policy: Policy{Name: "p", CEL: `mcp.arguments.namespacename != "kube-system" && !has(mcp.arguments.opts.recursive) && !("path" in mcp.arguments)`}},
		{name: "cel other documents keep their case", policy: Policy{Name: "p", CEL: `mcp.tool.name == "getMe" && token.resource_access["Srv"].roles.size() > 0 && jwt.preferredUserName == "x"`}},
		{name: "cel values keep their case", policy: Policy{Name: "p", CEL: `mcp.arguments.path == "/ETC"`}},
		{name: "rego field", policy: rego(`allow if input.mcp.arguments.namespaceName != "kube-system"`), want: `p.rego:3: argument key "namespaceName" never matches`},
		{name: "rego index", policy: rego(`allow if input.mcp.arguments["Path"] == "x"`), want: `"Path"`},
		{name: "rego nested under a variable", policy: rego(`allow if input.mcp.arguments.items[_].Name == "x"`), want: `"Name"`},
		{name: "rego import", policy: Policy{Name: "p", Rego: "package mcp.authz\n\nimport input.mcp.arguments as args\n\nallow if args.Path == \"x\"\n"}, want: `"Path"`},
		{name: "rego object.get", policy: rego(`allow if object.get(input.mcp.arguments, "Path", "") == ""`), want: `"Path"`},
		{name: "rego object.get path", policy: rego(`allow if object.get(input.mcp.arguments, ["opts", "Recursive"], false) == false`), want: `"Recursive"`},
		{name: "rego folded keys", policy: rego(`allow if {
	input.mcp.arguments.namespacename != "kube-system"
	object.get(input.mcp.arguments, ["opts", "recursive"], false) == false
	input.mcp.tool.name == "getMe"
	input.token.resource_access.Srv
}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(Config{Policies: []Policy{tc.policy}})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Compile: %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("Compile: want an error with %q", tc.want)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

// TestHeadersHidden: headers a client chooses and that carry what the
// policy reads trusted under mcp never reach request.headers.
func TestHeadersHidden(t *testing.T) {
	in := toolCall("t")
	for k, v := range map[string]string{
		"x-mcp-toolname": "pods_list", "X-MCP-Servername": "mcp-test/kubernetes-mcp", "x-mcp-method": "tools/list",
		"x-mcp-promptname": "p", "x-mcp-resourceuri": "u", "x-mcp-anything": "a",
		"mcp-method": "tools/call", "Mcp-Name": "kube_pods_list", "mcp-param-region": "eu", "MCP-PARAM-Path": "/tmp",
		"mcp-protocol-version": "2025-06-18", "x-request-id": "r1", "x-mcp": "kept", "mcp-names": "kept",
	} {
		in.Request.Headers[k] = v
	}
	want := `{"mcp-session-id": "s1", "mcp-protocol-version": "2025-06-18", "x-request-id": "r1", "x-mcp": "kept", "mcp-names": "kept"}`
	for _, tc := range []struct {
		name   string
		policy Policy
	}{
		{name: "cel", policy: Policy{Name: "p", CEL: `request.headers == ` + want}},
		{name: "rego", policy: Policy{Name: "p", Rego: "package mcp.authz\n\nallow if input.request.headers == " + want + "\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustCompile(t, Config{Policies: []Policy{tc.policy}})
			if d := s.Decide(t.Context(), in); !d.Allow {
				t.Errorf("Decide = %+v: request.headers is not %s", d, want)
			}
			if d := s.Filter(t.Context(), in, []Target{{Server: kube, Tool: "t"}}); !d[0] {
				t.Errorf("Filter: request.headers is not %s", want)
			}
		})
	}
}
