package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/front"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router"
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

const fullYAML = `authz:
  listen: 127.0.0.1:19001
  maxBodyBytes: 2048
  allowBatch: true
  decisionLogEvery: 10
gateway:
  listen: 127.0.0.1:18080
  upstream: http://127.0.0.1:18081
  authz: 127.0.0.1:19001
  timeout: 2s
  contextExtensions: {mcp-server: mcp-test/kubernetes-mcp}
  resourceMetadata:
    resource: http://127.0.0.1:18080/mcp
    authorizationServers: [http://idp.example/realms/mcp]
router:
  listen: 127.0.0.1:18081
  sessionKeyFiles: [keys/session]
  listRefresh: 1m
metrics:
  listen: 127.0.0.1:19090
log:
  level: debug
  format: text
identity:
  issuers:
    - issuerURL: http://idp.example/realms/mcp
      audiences: [mcp-gateway]
      algorithms: [RS256]
  leeway: 10s
exchange:
  tokenURL: http://idp.example/realms/mcp/protocol/openid-connect/token
  clientID: mcp-gateway
  clientSecretFile: secret
  scopes: [openid]
servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: http://127.0.0.1:8089/mcp
  - name: mcp-test/everything
    prefix: ev_
    url: http://127.0.0.1:8090/mcp
    audience: everything
    resourcePrefixes: ["test://"]
policies:
  - name: tool-roles
    servers: ["*"]
    cel: 'mcp.tool.name in token.resource_access[mcp.server].roles'
  - name: from-file
    servers: [mcp-test/everything]
    file: policies/allow.rego
defaultPolicy: allow
`

const allowRego = "package mcp.authz\n\nallow := true\n"

func TestLoadFull(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "mcp-authz.yaml", fullYAML)
	write(t, dir, "policies/allow.rego", allowRego)
	write(t, dir, "keys/session", strings.Repeat("s", 32))
	write(t, dir, "secret", "s3cret\n")

	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Authz: &authz.Config{Listen: "127.0.0.1:19001", MaxBodyBytes: 2048, AllowBatch: true, DecisionLogEvery: 10},
		Gateway: &front.Config{
			Listen:            "127.0.0.1:18080",
			Upstream:          "http://127.0.0.1:18081",
			Authz:             "127.0.0.1:19001",
			Timeout:           2 * time.Second,
			ContextExtensions: map[string]string{"mcp-server": "mcp-test/kubernetes-mcp"},
			ResourceMetadata: &front.ResourceMetadata{
				Resource:             "http://127.0.0.1:18080/mcp",
				AuthorizationServers: []string{"http://idp.example/realms/mcp"},
			},
		},
		Router:  &router.Config{Listen: "127.0.0.1:18081", SessionKeyFiles: []string{filepath.Join(dir, "keys/session")}, ListRefresh: time.Minute},
		Metrics: &Metrics{Listen: "127.0.0.1:19090"},
		Log:     Log{Level: "debug", Format: "text"},
		Identity: &identity.Config{
			Issuers: []identity.Issuer{{
				IssuerURL:  "http://idp.example/realms/mcp",
				Audiences:  []string{"mcp-gateway"},
				Algorithms: []string{"RS256"},
			}},
			Leeway: 10 * time.Second,
		},
		Exchange: &exchange.Config{
			TokenURL:         "http://idp.example/realms/mcp/protocol/openid-connect/token",
			ClientID:         "mcp-gateway",
			ClientSecretFile: filepath.Join(dir, "secret"),
			Scopes:           []string{"openid"},
		},
		Servers: []registry.Server{
			{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:8089/mcp"},
			{Name: "mcp-test/everything", Prefix: "ev_", URL: "http://127.0.0.1:8090/mcp", Audience: "everything", ResourcePrefixes: []string{"test://"}},
		},
		Policies: []policy.Policy{
			{Name: "tool-roles", Servers: []string{"*"}, CEL: "mcp.tool.name in token.resource_access[mcp.server].roles"},
			{Name: "from-file", Servers: []string{"mcp-test/everything"}, File: "policies/allow.rego"},
		},
		DefaultPolicy: "allow",
		Dir:           dir,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(File{})); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}
	snap, err := got.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if srv, name, ok := snap.Resolve("kube_pods_list"); !ok || srv.Name != "mcp-test/kubernetes-mcp" || name != "pods_list" {
		t.Errorf("Resolve(kube_pods_list) = %v, %q, %v", srv, name, ok)
	}
	if _, err := got.PolicySet(); err != nil {
		t.Errorf("PolicySet: %v", err)
	}
}

// TestParseErrors checks that each problem names its line, and that every
// problem of a file is reported at once.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// want are regular expressions, each matching one line of the error.
		want []string
	}{
		{
			name: "unknown top-level key",
			yaml: "authz: {}\nservres: []\n",
			want: []string{`line 2: field servres not found`},
		},
		{
			name: "unknown key in a section",
			yaml: "authz:\n  listen: 127.0.0.1:9001\n  maxBodyByte: 10\n",
			want: []string{`line 3: field maxBodyByte not found`},
		},
		{
			name: "unknown key in a list item",
			yaml: "servers:\n  - name: a/b\n    prefix: b_\n    url: http://127.0.0.1:1/mcp\n    urll: x\n",
			want: []string{`line 5: field urll not found`},
		},
		{
			name: "wrong type",
			yaml: "authz:\n  maxBodyBytes: lots\n",
			want: []string{`line 2: cannot unmarshal !!str .lots. into int`},
		},
		{
			name: "unknown key and a semantic error at once",
			yaml: "bogus: 1\ndefaultPolicy: maybe\n",
			want: []string{`line 1: field bogus not found`, `line 2: defaultPolicy "maybe"`},
		},
		{
			name: "bad server",
			yaml: "servers:\n  - name: a/b\n    prefix: b_\n    url: http://127.0.0.1:1/mcp\n  - name: nonamespace\n    prefix: c_\n    url: ftp://x\n",
			want: []string{`^line 5: registry: servers\[1\] "nonamespace": name`, `^line 5: registry: servers\[1\] "nonamespace": url`},
		},
		{
			name: "ambiguous prefixes",
			yaml: "servers:\n  - name: a/b\n    prefix: kube_\n    url: http://127.0.0.1:1/mcp\n  - name: a/c\n    prefix: kube_x_\n    url: http://127.0.0.1:2/mcp\n",
			want: []string{`^line 5: registry: servers\[1\] "a/c": prefix "kube_x_" is ambiguous`},
		},
		{
			name: "policy that does not compile",
			yaml: "servers: []\npolicies:\n  - name: ok\n    cel: 'true'\n  - name: broken\n    cel: 'mcp.tool.name =='\n",
			want: []string{`^line 6: policies\[1\]: .*"broken"`, `^\s+\| mcp.tool.name ==`},
		},
		{
			name: "error inside a literal Rego block",
			yaml: "policies:\n  - name: r\n    rego: |\n      package mcp.authz\n\n      allow if {\n        input.x ==\n      }\n",
			want: []string{`^line 8: policies\[0\]: .*r.rego:5: rego_parse_error`},
		},
		{
			name: "error inside a literal CEL block",
			yaml: "policies:\n  - name: c\n    cel: |\n      true &&\n        mcp.x(\n",
			want: []string{`^line 6: policies\[0\]: .*c.cel:3:1: Syntax error`},
		},
		{
			name: "error in a folded CEL block: the policy's line",
			yaml: "policies:\n  - name: c\n    cel: >\n      true &&\n      (\n",
			want: []string{`^line 2: policies\[0\]: .*c.cel:`},
		},
		{
			name: "policy file missing",
			yaml: "policies:\n  - name: gone\n    file: nowhere.rego\n",
			want: []string{`line 2: policies\[0\]: .*nowhere.rego`},
		},
		{
			name: "two policies of one name",
			yaml: "policies:\n  - name: p\n    cel: 'true'\n  - name: p\n    cel: 'false'\n",
			want: []string{`^line 1: policies: .*"p"`},
		},
		{
			name: "exchange without identity",
			yaml: "servers: []\nexchange:\n  tokenURL: http://idp/token\n  clientID: gw\n",
			want: []string{`^line 2: exchange needs identity`},
		},
		{
			name: "a second document",
			yaml: "servers: []\n---\npolicies: []\n",
			want: []string{`^line 2: a second document`},
		},
		{
			name: "not YAML",
			yaml: "servers: []\nauthz: {listen: [\n",
			want: []string{`line \d+: did not find expected`},
		},
		{
			name: "authz negative body limit and missing key file",
			yaml: "authz:\n  maxBodyBytes: -1\n  assertionKeyFile: keys/none\n",
			want: []string{`^line 1: authz: maxBodyBytes -1 is negative`, `^line 3: authz: assertion: .*keys/none`},
		},
		{
			name: "gateway without upstream",
			yaml: "servers: []\ngateway:\n  listen: 127.0.0.1:8080\n",
			want: []string{`^line 2: front: .*upstream`},
		},
		{
			name: "router without key nor authz",
			yaml: "router:\n  listen: 127.0.0.1:8081\n",
			want: []string{`^line 1: router: an assertion key is required`},
		},
		{
			name: "router session key file missing",
			yaml: "authz: {}\nrouter:\n  sessionKeyFiles: [keys/none]\n",
			want: []string{`^line 2: router: session key: .*keys/none`},
		},
		{
			name: "identity issuer without audience",
			yaml: "identity:\n  issuers:\n    - issuerURL: http://a.example\n      audiences: [x]\n    - issuerURL: http://b.example\n",
			want: []string{`^line 5: identity: config: issuers\[1\]`},
		},
		{
			name: "identity without issuers",
			yaml: "identity: {}\n",
			want: []string{`^line 1: identity: config: no issuers`},
		},
		{
			name: "exchange secret file missing",
			yaml: "identity:\n  issuers: [{issuerURL: http://a.example, audiences: [x]}]\nexchange:\n  tokenURL: http://a.example/token\n  clientID: gw\n  clientSecretFile: none\n",
			want: []string{`^line 3: exchange: config: clientSecretFile`},
		},
		{
			name: "bad defaultPolicy",
			yaml: "defaultPolicy: permit\n",
			want: []string{`line 1: defaultPolicy "permit": want deny or allow`},
		},
		{
			name: "bad log level and format",
			yaml: "log:\n  level: loud\n  format: xml\n",
			want: []string{`line 2: log.level "loud"`, `line 3: log.format "xml"`},
		},
		{
			name: "every semantic error at once",
			yaml: "log:\n  level: loud\nservers:\n  - name: x\n    prefix: x_\n    url: nope\npolicies:\n  - name: p\n    cel: '1'\ndefaultPolicy: sometimes\n",
			want: []string{`line 10: defaultPolicy`, `line 4: registry: servers\[0\]`, `line 8: policies\[0\]`, `line 2: log.level`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), t.TempDir())
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", f)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !regexp.MustCompile(`(?m)` + w).MatchString(msg) {
					t.Errorf("error does not match %q:\n%s", w, msg)
				}
			}
			// Problems come in the order of the file.
			var lines []int
			for _, m := range regexp.MustCompile(`(?m)^line (\d+): `).FindAllStringSubmatch(msg, -1) {
				n, _ := strconv.Atoi(m[1])
				lines = append(lines, n)
			}
			if !slices.IsSorted(lines) {
				t.Errorf("problems not in the order of the file: lines %v", lines)
			}
			// Every problem starts with its location; its further lines
			// are indented.
			for _, l := range strings.Split(msg, "\n") {
				if !regexp.MustCompile(`^((yaml: )?line \d+: |\s)`).MatchString(l) {
					t.Errorf("error line without a location: %q", l)
				}
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want *File
	}{
		{name: "empty file", yaml: "", want: &File{}},
		{name: "only a comment", yaml: "# nothing yet\n", want: &File{}},
		{name: "empty document", yaml: "---\n", want: &File{}},
		{
			name: "default deny, no policies",
			yaml: "servers:\n  - name: a/b\n    prefix: b_\n    url: http://127.0.0.1:1/mcp\n",
			want: &File{Servers: []registry.Server{{Name: "a/b", Prefix: "b_", URL: "http://127.0.0.1:1/mcp"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(File{})); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
			set, err := got.PolicySet()
			if err != nil {
				t.Fatal(err)
			}
			if d := set.Decide(t.Context(), &policy.Input{}); d.Allow {
				t.Errorf("Decide with no policy = %+v, want deny", d)
			}
		})
	}
}

// TestRelativePaths checks that files the configuration names are taken
// from its directory, not from the working directory.
func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "conf/mcp-authz.yaml", `identity:
  issuers: [{issuerURL: http://idp.example, audiences: [gw]}]
exchange:
  tokenURL: http://idp.example/token
  clientID: gw
  clientSecretFile: secrets/gw
policies:
  - name: p
    file: policies/deny.cel
`)
	write(t, dir, "conf/policies/deny.cel", "mcp.tool.name == 'nothing'\n")
	write(t, dir, "conf/secrets/gw", "s3cret\n")
	// A decoy in the working directory's place must not be read.
	t.Chdir(t.TempDir())

	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Exchange.ClientSecretFile, filepath.Join(dir, "conf/secrets/gw"); got != want {
		t.Errorf("clientSecretFile = %q, want %q", got, want)
	}
	set, err := f.PolicySet()
	if err != nil {
		t.Fatalf("PolicySet from another working directory: %v", err)
	}
	in := &policy.Input{MCP: policy.MCP{Method: "tools/call", Tool: &policy.Tool{Name: "nothing"}}}
	if d := set.Decide(t.Context(), in); !d.Allow || d.Policy != "p" {
		t.Errorf("Decide = %+v, want allowed by p", d)
	}

	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"/abs/key", "/abs/key"},
		{"rel/key", filepath.Join(dir, "conf/rel/key")},
	} {
		if got := f.Path(tt.in); got != tt.want {
			t.Errorf("Path(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if err == nil || !strings.HasPrefix(err.Error(), "config: ") {
		t.Errorf("Load of a missing file = %v, want a config: error", err)
	}
}

// TestDevConfig loads the configuration that make run ships.
func TestDevConfig(t *testing.T) {
	f, err := Load("../dev/mcp-authz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if f.Authz == nil || f.Gateway == nil || f.Router == nil || f.Identity == nil || f.Exchange == nil || len(f.Servers) == 0 || len(f.Policies) == 0 {
		t.Errorf("dev config lacks a section: %+v", f)
	}
	if got, want := f.Exchange.ClientSecretFile, filepath.Join("../dev", "gateway-secret"); got != want {
		t.Errorf("dev clientSecretFile = %q, want %q", got, want)
	}
}

func TestUnreloaded(t *testing.T) {
	const base = "authz: {listen: 127.0.0.1:9001}\nlog: {level: info}\nservers: []\n"
	tests := []struct {
		name, next string
		want       []string
	}{
		{name: "same", next: base},
		{name: "policies only", next: base + "policies: [{name: p, cel: 'true'}]\ndefaultPolicy: allow\n"},
		{name: "authz listen", next: "authz: {listen: 127.0.0.1:9002}\nlog: {level: info}\n", want: []string{"authz"}},
		{name: "log and metrics", next: "authz: {listen: 127.0.0.1:9001}\nlog: {level: debug}\nmetrics: {}\n", want: []string{"metrics", "log"}},
		{name: "authz removed", next: "log: {level: info}\n", want: []string{"authz"}},
	}
	was, err := Parse([]byte(base), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, err := Parse([]byte(tt.next), "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, was.Unreloaded(next)); diff != "" {
				t.Errorf("Unreloaded (-want +got):\n%s", diff)
			}
		})
	}
}
