package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// write creates dir/name with content and returns its path.
func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// example is the absolute path of a shipped example policy.
func example(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("../../examples/policies", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	bad := write(t, dir, "bad.yaml", `authz:
  listen: 127.0.0.1:9001
  maxBodyByte: 1
servers:
  - name: nonamespace
    prefix: x_
    url: http://127.0.0.1:1/mcp
policies:
  - name: broken
    cel: 'mcp.tool.name =='
defaultPolicy: perhaps
`)
	failing := filepath.Join(dir, "failing")
	write(t, failing, "cases_test.yaml", `cases:
  - name: true allows
    expression: 'true'
    input: {mcp: {method: tools/call, tool: {name: x}}}
    allow: true
  - name: a wrong expectation
    expression: 'false'
    input: {mcp: {method: tools/call, tool: {name: x}}}
    allow: true
`)

	tests := []struct {
		name string
		args []string
		code int
		// stdout and stderr are regular expressions the output must match,
		// each on a line of its own ((?m) mode).
		stdout, stderr []string
		// noStdout are regular expressions the output must not match.
		noStdout []string
	}{
		{name: "version", args: []string{"version"}, stdout: []string{`^mcp-authz \S+$`}},
		{name: "help", args: []string{"help"}, stdout: []string{`^Usage:`, `mcp-authz serve --config FILE`}},
		{name: "no command", args: nil, code: 2, stderr: []string{`^Usage:`}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`, `^Usage:`}},
		{name: "config without check", args: []string{"config"}, code: 2, stderr: []string{`unknown command "config"`}},
		{name: "policy without verb", args: []string{"policy", "run"}, code: 2, stderr: []string{`^Usage:`}},
		{
			name:   "config check dev config",
			args:   []string{"config", "check", "../../dev/mcp-authz.yaml"},
			stdout: []string{`^\.\./\.\./dev/mcp-authz\.yaml: ok \(2 servers, 1 policies\)$`},
		},
		{
			name: "config check reports every error with its line",
			args: []string{"config", "check", bad},
			code: 1,
			stderr: []string{
				`^\S+/bad\.yaml:3: authz\.maxBodyByte: unknown key\n` +
					`\S+/bad\.yaml:5: servers\[0\]\.name: "nonamespace" must be namespace/name\n` +
					`\S+/bad\.yaml:10: policies\[0\]\.cel: .*broken\.cel.*\n` +
					`\s+\| mcp.tool.name ==\n` +
					`\s+\| \.+\^\n` +
					`\S+/bad\.yaml:11: defaultPolicy: "perhaps": want deny or allow\n` +
					`mcp-authz: config check: \S+/bad\.yaml: 4 problems\n$`,
			},
		},
		{
			name:   "config check counts one problem",
			args:   []string{"config", "check", write(t, dir, "one.yaml", "authz:\n  maxBodyBytes: -1\n")},
			code:   1,
			stderr: []string{`^\S+/one\.yaml:2: authz\.maxBodyBytes: must not be negative, is -1\nmcp-authz: config check: \S+/one\.yaml: 1 problem\n$`},
		},
		{name: "config check missing file", args: []string{"config", "check", filepath.Join(dir, "none.yaml")}, code: 1, stderr: []string{`no such file`}},
		{name: "config check without file", args: []string{"config", "check"}, code: 1, stderr: []string{`usage: mcp-authz config check FILE`}},
		{
			name:   "policy test examples",
			args:   []string{"policy", "test", "../../examples/policies"},
			stdout: []string{`: PASS$`, `keycloak-roles`, `agentgateway`, `kgateway`},
			// Every example passes.
			noStdout: []string{`FAIL`, `ERROR`},
		},
		{
			name:   "policy test with a failing case",
			args:   []string{"policy", "test", failing},
			code:   1,
			stdout: []string{`^a wrong expectation .*: FAIL$`, `^true allows .*: PASS$`},
			stderr: []string{`policy test: 1 failed`},
		},
		{name: "policy test without dir", args: []string{"policy", "test"}, code: 1, stderr: []string{`usage: mcp-authz policy test DIR`}},
		{name: "policy test missing dir", args: []string{"policy", "test", filepath.Join(dir, "none")}, code: 1},
		{name: "serve without config", args: []string{"serve"}, code: 1, stderr: []string{`usage: mcp-authz serve --config FILE`}},
		{name: "serve bad config", args: []string{"serve", "--config", bad}, code: 1, stderr: []string{`bad\.yaml:11: defaultPolicy`}},
		{name: "serve nothing", args: []string{"serve", "--config", write(t, dir, "policies.yaml", "policies: [{name: p, cel: 'true'}]\n")}, code: 1, stderr: []string{`nothing to serve`}},
		{name: "serve bad flag", args: []string{"serve", "--confg", bad}, code: 1, stderr: []string{`flag provided but not defined: -confg`, `^\s+-config FILE`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, &stdout, &stderr)
			}
			match(t, "stdout", stdout.String(), tt.stdout, tt.noStdout)
			match(t, "stderr", stderr.String(), tt.stderr, nil)
		})
	}
}

func match(t *testing.T, what, out string, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !regexp.MustCompile(`(?m)` + w).MatchString(out) {
			t.Errorf("%s does not match %q:\n%s", what, w, out)
		}
	}
	for _, n := range not {
		if regexp.MustCompile(`(?m)` + n).MatchString(out) {
			t.Errorf("%s matches %q:\n%s", what, n, out)
		}
	}
}

func TestPolicyEval(t *testing.T) {
	dir := t.TempDir()
	config := func(name, file string) string {
		return write(t, dir, name+".yaml", "policies:\n  - name: "+name+"\n    servers: [\"*\"]\n    file: "+file+"\n")
	}
	roles := []string{
		config("roles-cel", example(t, "keycloak-roles/keycloak-roles.cel")),
		config("roles-rego", example(t, "keycloak-roles/keycloak-roles.rego")),
	}
	kgw := []string{
		config("kgw-cel", example(t, "kgateway/kgateway.cel")),
		config("kgw-rego", example(t, "kgateway/kgateway.rego")),
	}
	alice := func(tool string) string {
		return write(t, dir, "alice-"+tool+".json", `{
  "mcp": {"method": "tools/call", "server": "mcp-test/kubernetes-mcp", "tool": {"name": "`+tool+`"}},
  "identity": {"sub": "alice"},
  "token": {"aud": "mcp-test/kubernetes-mcp", "resource_access": {"mcp-test/kubernetes-mcp": {"roles": ["pods_list"]}}}
}`)
	}
	// No tool.target: it is the server, as in a request authz sees.
	me := write(t, dir, "me.json", `{"mcp": {"method": "tools/call", "server": "default/mcp-tool", "tool": {"name": "convert_to_markdown"}}, "identity": {"sub": "me"}}`)
	you := write(t, dir, "you.json", `{"mcp": {"method": "tools/call", "server": "default/mcp-tool", "tool": {"name": "convert_to_markdown"}}, "identity": {"sub": "you"}}`)
	unknownKey := write(t, dir, "unknown.json", `{"mcp": {"method": "tools/call"}, "identiti": {"sub": "me"}}`)
	notJSON := write(t, dir, "bad.json", `{"mcp":`)

	type decision struct {
		Allow  bool   `json:"allow"`
		Reason string `json:"reason"`
		Policy string `json:"policy"`
	}
	tests := []struct {
		name    string
		configs []string
		input   string
		want    decision
	}{
		{name: "alice may list pods", configs: roles, input: alice("pods_list"), want: decision{true, "allowed", ""}},
		{name: "alice may not delete pods", configs: roles, input: alice("pods_delete"), want: decision{false, "tool_denied", ""}},
		{name: "me may convert", configs: kgw, input: me, want: decision{true, "allowed", ""}},
		{name: "you may not convert", configs: kgw, input: you, want: decision{false, "tool_denied", ""}},
	}
	for _, tt := range tests {
		for _, cfg := range tt.configs {
			name := strings.TrimSuffix(filepath.Base(cfg), ".yaml")
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if code := run(t.Context(), []string{"policy", "eval", "--config", cfg, "--input", tt.input}, &stdout, &stderr); code != 0 {
					t.Fatalf("exit %d: %s", code, &stderr)
				}
				var got decision
				dec := json.NewDecoder(&stdout)
				dec.DisallowUnknownFields()
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("output %q: %v", stdout.String(), err)
				}
				want := tt.want
				want.Policy = name
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("decision (-want +got):\n%s", diff)
				}
			})
		}
	}

	for _, tt := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{name: "unknown input key", args: []string{"--config", kgw[0], "--input", unknownKey}, stderr: `policy eval: input: .*identiti`},
		{name: "input not JSON", args: []string{"--config", kgw[0], "--input", notJSON}, stderr: `policy eval: input`},
		{name: "missing input", args: []string{"--config", kgw[0], "--input", filepath.Join(dir, "none.json")}, stderr: `no such file`},
		{name: "no input flag", args: []string{"--config", kgw[0]}, stderr: `usage: mcp-authz policy eval`},
		{name: "bad config", args: []string{"--config", write(t, dir, "bad.yaml", "policies: [{name: x, cel: '1'}]\n"), "--input", me}, stderr: `bad\.yaml:1: policies\[0\]\.cel`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), append([]string{"policy", "eval"}, tt.args...), &stdout, &stderr); code != 1 {
				t.Errorf("exit %d, want 1; stdout: %s", code, &stdout)
			}
			if stdout.Len() != 0 {
				t.Errorf("a decision printed on error: %s", &stdout)
			}
			match(t, "stderr", stderr.String(), []string{tt.stderr}, nil)
		})
	}
}
