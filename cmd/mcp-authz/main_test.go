package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
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
		{name: "--version", args: []string{"--version"}, stdout: []string{`^mcp-authz \S+$`}},
		{name: "-v", args: []string{"-v"}, stdout: []string{`^mcp-authz \S+$`}},
		{name: "version with an argument", args: []string{"version", "x"}, code: 2, stderr: []string{`^mcp-authz version takes no arguments`}},
		{name: "help", args: []string{"help"}, stdout: []string{`^Usage:`, `^  serve `, `^Exit codes`}},
		{name: "help of a command", args: []string{"help", "config", "check"}, stdout: []string{`^  mcp-authz config check FILE`}},
		{name: "no command", args: nil, code: 2, stderr: []string{`^Usage:`, `^  serve `}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{`^mcp-authz: unknown command "frobnicate"$`, `^Run 'mcp-authz --help' for usage\.$`}},
		{name: "misspelt command", args: []string{"conifg"}, code: 2, stderr: []string{`unknown command "conifg"; did you mean config\?`}},
		{name: "config without check", args: []string{"config"}, code: 2, stderr: []string{`^mcp-authz config: missing command \(check\)$`}},
		{name: "config with an unknown verb", args: []string{"config", "lint"}, code: 2, stderr: []string{`^mcp-authz config: unknown command "lint"$`}},
		{name: "policy with an unknown verb", args: []string{"policy", "run"}, code: 2, stderr: []string{`^mcp-authz policy: unknown command "run"`, `^Run 'mcp-authz policy --help' for usage\.$`}},
		{name: "unknown flag", args: []string{"policy", "test", "--verbose", "x"}, code: 2, stderr: []string{`^mcp-authz policy test: unknown flag: --verbose$`}},
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
		// Type errors name the YAML keys and what they want, never a Go type.
		{
			name:   "config check a string for a number",
			args:   []string{"config", "check", write(t, dir, "type.yaml", "authz:\n  maxBodyBytes: \"x\"\n")},
			code:   1,
			stderr: []string{`^\S+/type\.yaml:2: authz\.maxBodyBytes: want an integer, not "x"\nmcp-authz: config check: \S+/type\.yaml: 1 problem\n$`},
		},
		{
			name:   "config check a mapping for a list",
			args:   []string{"config", "check", write(t, dir, "list.yaml", "servers: {}\npolicies:\n  - name: p\n    servers: \"*\"\n    cel: \"true\"\n")},
			code:   1,
			stderr: []string{`^\S+/list\.yaml:1: servers: want a list\n\S+/list\.yaml:4: policies\[0\]\.servers: want a list\nmcp-authz: config check: \S+/list\.yaml: 2 problems\n$`},
		},
		{
			name:   "config check a scalar for a section",
			args:   []string{"config", "check", write(t, dir, "section.yaml", "authz: 5\nrouter:\n  listTimeout: 5\n")},
			code:   1,
			stderr: []string{`^\S+/section\.yaml:1: authz: want a mapping of keys\n`, `^\S+/section\.yaml:3: router\.listTimeout: want a duration such as 30s or 5m, not "5"$`},
		},
		{name: "config check missing file", args: []string{"config", "check", filepath.Join(dir, "none.yaml")}, code: 2, stderr: []string{`^mcp-authz: .*none\.yaml: no such file`}},
		{name: "config check without file", args: []string{"config", "check"}, code: 2, stderr: []string{`^mcp-authz config check: want FILE, got 0 arguments$`}},
		{name: "config check with two files", args: []string{"config", "check", "a", "b"}, code: 2, stderr: []string{`^mcp-authz config check: want FILE, got 2 arguments$`}},
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
			stderr: []string{`^mcp-authz: policy test: 1 failed$`},
		},
		{name: "policy test without dir", args: []string{"policy", "test"}, code: 2, stderr: []string{`^mcp-authz policy test: want DIR, got 0 arguments$`}},
		{name: "policy test missing dir", args: []string{"policy", "test", filepath.Join(dir, "none")}, code: 2, stderr: []string{`^mcp-authz: .*none`}},
		{name: "serve without config", args: []string{"serve"}, code: 2, stderr: []string{`^mcp-authz serve: --config required$`}},
		{name: "serve with an argument", args: []string{"serve", "--config", bad, "now"}, code: 2, stderr: []string{`^mcp-authz serve takes no arguments, got \["now"\]$`}},
		{name: "serve bad config", args: []string{"serve", "--config", bad}, code: 2, stderr: []string{`bad\.yaml:11: defaultPolicy`}},
		{name: "serve nothing", args: []string{"serve", "--config", write(t, dir, "policies.yaml", "policies: [{name: p, cel: 'true'}]\n")}, code: 2, stderr: []string{`nothing to serve`}},
		{name: "serve bad flag", args: []string{"serve", "--confg", bad}, code: 2, stderr: []string{`^mcp-authz serve: unknown flag: --confg$`, `^Run 'mcp-authz serve --help' for usage\.$`}},
		{name: "serve single-dash flag", args: []string{"serve", "-config", bad}, code: 2, stderr: []string{`^mcp-authz serve: unknown shorthand flag: 'c' in -config$`}},
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

// TestHelp asks every command, hidden ones included, for its help with
// -h, --help and the help command: each prints its own usage on standard
// output and exits 0, and the commands that decide document their exit codes.
func TestHelp(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(slices.Clone(path), sub.Name()))
		}
	}
	walk(newRoot(), nil)
	// The tree as shipped: a new command gets a row here and a look at its help.
	for _, want := range [][]string{{"serve"}, {"config", "check"}, {"policy", "eval"}, {"policy", "test"}, {"version"}, {"metrics"}} {
		if !slices.ContainsFunc(paths, func(p []string) bool { return slices.Equal(p, want) }) {
			t.Errorf("no command %q", want)
		}
	}
	exitCodes := map[string]string{
		"":             `^Exit codes \(every command\):\n  0  yes.*\n  1  no.*\n  2  error`,
		"serve":        `^Exit codes: 0 stopped by a signal; 2 `,
		"config check": `^Exit codes: 0 valid; 1 problems found; 2 could not check`,
		"policy eval":  `^Exit codes: 0 allowed; 1 denied; 2 no decision`,
		"policy test":  `^Exit codes: 0 every test passed; 1 a test failed; 2 could not run`,
	}
	for _, path := range paths {
		name := strings.Join(path, " ")
		for _, form := range []struct {
			name string
			args []string
		}{
			{name: "-h", args: append(slices.Clone(path), "-h")},
			{name: "--help", args: append(slices.Clone(path), "--help")},
			{name: "help", args: append([]string{"help"}, path...)},
		} {
			sub := name
			if sub == "" {
				sub = "mcp-authz"
			}
			t.Run(sub+"/"+form.name, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if code := run(t.Context(), form.args, &stdout, &stderr); code != 0 {
					t.Errorf("run(%q) = %d, want 0; stderr:\n%s", form.args, code, &stderr)
				}
				if stderr.Len() != 0 {
					t.Errorf("stderr: %s", &stderr)
				}
				want := []string{`^Usage:\n  mcp-authz \[flags\]`}
				if name != "" {
					want = []string{`^Usage:\n  mcp-authz ` + regexp.QuoteMeta(name) + `\b`}
				}
				if ec, ok := exitCodes[name]; ok {
					want = append(want, ec)
				}
				match(t, "stdout", stdout.String(), want, nil)
			})
		}
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
				// Allowed exits 0, denied 1, the decision printed either way.
				wantCode := 0
				if !tt.want.Allow {
					wantCode = 1
				}
				var stdout, stderr bytes.Buffer
				if code := run(t.Context(), []string{"policy", "eval", "--config", cfg, "--input", tt.input}, &stdout, &stderr); code != wantCode {
					t.Fatalf("exit %d, want %d: %s", code, wantCode, &stderr)
				}
				if stderr.Len() != 0 {
					t.Errorf("stderr: %s", &stderr)
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
		{name: "no flags", args: nil, stderr: `^mcp-authz policy eval: --config and --input required$`},
		{name: "an argument", args: []string{"--config", kgw[0], "--input", me, "extra"}, stderr: `^mcp-authz policy eval takes no arguments`},
		{name: "unknown input key", args: []string{"--config", kgw[0], "--input", unknownKey}, stderr: `policy eval: input: .*identiti`},
		{name: "input not JSON", args: []string{"--config", kgw[0], "--input", notJSON}, stderr: `policy eval: input`},
		{name: "missing input", args: []string{"--config", kgw[0], "--input", filepath.Join(dir, "none.json")}, stderr: `no such file`},
		{name: "no input flag", args: []string{"--config", kgw[0]}, stderr: `^mcp-authz policy eval: --input required$`},
		{name: "bad config", args: []string{"--config", write(t, dir, "bad.yaml", "policies: [{name: x, cel: '1'}]\n"), "--input", me}, stderr: `bad\.yaml:1: policies\[0\]\.cel`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), append([]string{"policy", "eval"}, tt.args...), &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2; stdout: %s", code, &stdout)
			}
			if stdout.Len() != 0 {
				t.Errorf("a decision printed on error: %s", &stdout)
			}
			match(t, "stderr", stderr.String(), []string{tt.stderr}, nil)
		})
	}
}

// TestPolicyEvalStdin reads the input document from standard input
// (--input -), as a script pipes it.
func TestPolicyEvalStdin(t *testing.T) {
	cfg := write(t, t.TempDir(), "kgw.yaml", "policies:\n  - name: kgw\n    servers: [\"*\"]\n    file: "+example(t, "kgateway/kgateway.cel")+"\n")
	doc := func(sub string) string {
		return `{"mcp": {"method": "tools/call", "server": "default/mcp-tool", "tool": {"name": "convert_to_markdown"}}, "identity": {"sub": "` + sub + `"}}`
	}
	tests := []struct {
		name   string
		stdin  string
		code   int
		stdout string
		stderr string
	}{
		{name: "allowed", stdin: doc("me"), stdout: `"allow": true`},
		{name: "denied", stdin: doc("you"), code: 1, stdout: `"reason": "tool_denied"`},
		{name: "empty", stdin: "", code: 2, stderr: `^mcp-authz: policy eval: input: `},
		{name: "not JSON", stdin: "{", code: 2, stderr: `^mcp-authz: policy eval: input: `},
		{name: "too large", stdin: `{"mcp": {"method": "tools/call"}, "identity": {"x": "` + strings.Repeat("a", maxInputBytes) + `"}}`, code: 2, stderr: `^mcp-authz: policy eval: input: larger than 16777216 bytes$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot()
			var stdout, stderr bytes.Buffer
			root.SetIn(strings.NewReader(tt.stdin))
			code := runCommand(t.Context(), root, []string{"policy", "eval", "--config", cfg, "--input", "-"}, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, &stderr)
			}
			var want []string
			if tt.stdout != "" {
				want = []string{tt.stdout}
			} else if stdout.Len() != 0 {
				t.Errorf("stdout on error: %s", &stdout)
			}
			match(t, "stdout", stdout.String(), want, nil)
			var wantErr []string
			if tt.stderr != "" {
				wantErr = []string{tt.stderr}
			} else if stderr.Len() != 0 {
				t.Errorf("stderr: %s", &stderr)
			}
			match(t, "stderr", stderr.String(), wantErr, nil)
		})
	}
}

// TestVersionStamp checks that the version make build stamps
// (-X main.version=...) is what version and --version print.
func TestVersionStamp(t *testing.T) {
	old := version
	version = "v1.2.3-4-gabcdef0-dirty"
	t.Cleanup(func() { version = old })
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, &stdout, &stderr); code != 0 || stdout.String() != "mcp-authz v1.2.3-4-gabcdef0-dirty\n" || stderr.Len() != 0 {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q", args, code, &stdout, &stderr)
		}
	}
}
