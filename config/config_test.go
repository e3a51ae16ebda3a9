package config

import (
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/front"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/tracing"
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

// TestParseErrors checks that each problem names its line and the path of
// its field in YAML keys, that every problem of a file is reported at once,
// in the order of the file, and that messages name no Go type.
func TestParseErrors(t *testing.T) {
	type want struct {
		line int
		path string
		msg  string // a regular expression the message matches
	}
	tests := []struct {
		name string
		yaml string
		want []want
	}{
		{
			name: "unknown top-level key",
			yaml: "authz: {}\nservres: []\n",
			want: []want{{2, "servres", `^unknown key$`}},
		},
		{
			name: "unknown key in a section",
			yaml: "authz:\n  listen: 127.0.0.1:9001\n  maxBodyByte: 10\n",
			want: []want{{3, "authz.maxBodyByte", `^unknown key$`}},
		},
		{
			name: "unknown key in a list item",
			yaml: "servers:\n  - name: a/b\n    prefix: b_\n    url: http://127.0.0.1:1/mcp\n    urll: x\n",
			want: []want{{5, "servers[0].urll", `^unknown key$`}},
		},
		{
			name: "unknown key inlined from kube",
			yaml: "kubernetes:\n  gatewayPort: 8443\n  clusterDomian: x\n",
			want: []want{{3, "kubernetes.clusterDomian", `^unknown key$`}},
		},
		{
			name: "tracing without TLS beyond loopback",
			yaml: "tracing:\n  endpoint: collector.observability:4317\n  insecureLoopback: true\n",
			want: []want{{3, "tracing.insecureLoopback", `not a loopback address`}},
		},
		{
			name: "tracing ratio out of range",
			yaml: "tracing:\n  endpoint: collector:4317\n  samplingRatio: 2\n",
			want: []want{{3, "tracing.samplingRatio", `not between 0 and 1`}},
		},
		{
			name: "tracing unknown key",
			yaml: "tracing:\n  endpoint: collector:4317\n  sampling: 0.5\n",
			want: []want{{3, "tracing.sampling", `^unknown key$`}},
		},
		{
			name: "a key given twice",
			yaml: "authz:\n  listen: a:1\n  listen: a:2\n",
			want: []want{{3, "authz.listen", `^given twice \(also line 2\)$`}},
		},
		{
			name: "wrong type",
			yaml: "authz:\n  maxBodyBytes: lots\n",
			want: []want{{2, "authz.maxBodyBytes", `^want an integer, not "lots"$`}},
		},
		{
			name: "wrong types of every kind",
			yaml: "authz: [1]\nrouter:\n  listRefresh: soon\n  sessionKeyFiles: k\nidentity:\n  issuers:\n    - issuerURL: http://a\n      audiences: [x]\n  leeway: {a: 1}\n",
			want: []want{
				{1, "authz", `^want a mapping of keys$`},
				{3, "router.listRefresh", `^want a duration such as 30s or 5m, not "soon"$`},
				{4, "router.sessionKeyFiles", `^want a list$`},
				{9, "identity.leeway", `^want a duration`},
			},
		},
		{
			name: "unknown key and a semantic error at once",
			yaml: "bogus: 1\ndefaultPolicy: maybe\n",
			want: []want{{1, "bogus", `^unknown key$`}, {2, "defaultPolicy", `^"maybe": want deny or allow$`}},
		},
		{
			name: "bad server",
			yaml: "servers:\n  - name: a/b\n    prefix: b_\n    url: http://127.0.0.1:1/mcp\n  - name: nonamespace\n    prefix: c_\n    url: ftp://x\n",
			want: []want{{5, "servers[1].name", `"nonamespace" must be namespace/name`}, {7, "servers[1].url", `must be an absolute http or https URL`}},
		},
		{
			name: "shared prefix",
			yaml: "servers:\n  - name: a/b\n    prefix: kube_\n    url: http://127.0.0.1:1/mcp\n  - name: a/c\n    prefix: kube_\n    url: http://127.0.0.1:2/mcp\n",
			want: []want{{6, "servers[1].prefix", `^"kube_" is also the prefix of servers\[0\] "a/b"`}},
		},
		{
			name: "policy that does not compile",
			yaml: "servers: []\npolicies:\n  - name: ok\n    cel: 'true'\n  - name: broken\n    cel: 'mcp.tool.name =='\n",
			want: []want{{6, "policies[1].cel", `broken.cel:1:17: Syntax error(?s:.*)\| mcp.tool.name ==`}},
		},
		{
			name: "error inside a literal Rego block",
			yaml: "policies:\n  - name: r\n    rego: |\n      package mcp.authz\n\n      allow if {\n        input.x ==\n      }\n",
			want: []want{{8, "policies[0].rego", `r.rego:5: rego_parse_error`}},
		},
		{
			name: "error inside a literal CEL block",
			yaml: "policies:\n  - name: c\n    cel: |\n      true &&\n        mcp.x(\n",
			want: []want{{6, "policies[0].cel", `c.cel:3:1: Syntax error`}},
		},
		{
			name: "error in a folded CEL block: the line of its key",
			yaml: "policies:\n  - name: c\n    cel: >\n      true &&\n      (\n",
			want: []want{{3, "policies[0].cel", `c.cel:`}},
		},
		{
			name: "policy file missing",
			yaml: "policies:\n  - name: gone\n    file: nowhere.rego\n",
			want: []want{{3, "policies[0].file", `nowhere.rego: no such file`}},
		},
		{
			name: "two policies of one name",
			yaml: "policies:\n  - name: p\n    cel: 'true'\n  - name: p\n    cel: 'false'\n",
			want: []want{{4, "policies[1].name", `^"p" is also policies\[0\]$`}},
		},
		{
			name: "exchange without identity",
			yaml: "servers: []\nexchange:\n  tokenURL: http://idp/token\n  clientID: gw\n  clientSecretEnv: HOME\n",
			want: []want{{2, "exchange", `^needs identity`}},
		},
		{
			name: "a second document",
			yaml: "servers: []\n---\npolicies: []\n",
			want: []want{{2, "", `^a second document`}},
		},
		{
			name: "not YAML",
			yaml: "servers: []\nauthz: {listen: [\n",
			want: []want{{2, "", `did not find expected`}},
		},
		{
			name: "authz negative body limit and missing key file",
			yaml: "authz:\n  maxBodyBytes: -1\n  assertionKeyFile: keys/none\n",
			want: []want{{2, "authz.maxBodyBytes", `^must not be negative, is -1$`}, {3, "authz.assertionKeyFile", `keys/none`}},
		},
		{
			name: "gateway without upstream",
			yaml: "servers: []\ngateway:\n  listen: 127.0.0.1:8080\n",
			want: []want{{2, "gateway.upstream", `^required$`}},
		},
		{
			name: "gateway resource metadata",
			yaml: "gateway:\n  upstream: http://127.0.0.1:8081\n  resourceMetadata:\n    resource: http://a/mcp#x\n",
			want: []want{{4, "gateway.resourceMetadata.resource", `want an absolute http\(s\) URL`}},
		},
		{
			name: "router without key nor authz",
			yaml: "router:\n  listen: 127.0.0.1:8081\n",
			want: []want{{1, "router.assertionKeyFile", `^required when authz does not run in this process`}},
		},
		{
			name: "router session key file missing",
			yaml: "authz: {}\nrouter:\n  sessionKeyFiles: [keys/none]\n",
			want: []want{{3, "router.sessionKeyFiles[0]", `keys/none`}},
		},
		{
			name: "identity issuer without audience",
			yaml: "identity:\n  issuers:\n    - issuerURL: http://a.example\n      audiences: [x]\n    - issuerURL: http://b.example\n",
			want: []want{{5, "identity.issuers[1].audiences", `^at least one non-empty audience is required$`}},
		},
		{
			name: "identity issuer URL and algorithm",
			yaml: "identity:\n  issuers:\n    - issuerURL: a.example\n      audiences: [x]\n      algorithms: [RS256, HS256]\n",
			want: []want{{3, "identity.issuers[0].issuerURL", `not an absolute http\(s\) URL`}, {5, "identity.issuers[0].algorithms[1]", `^"HS256" is not allowed$`}},
		},
		{
			name: "identity without issuers",
			yaml: "identity: {}\n",
			want: []want{{1, "identity.issuers", `^at least one issuer is required$`}},
		},
		{
			name: "exchange secret file missing",
			yaml: "identity:\n  issuers: [{issuerURL: http://a.example, audiences: [x]}]\nexchange:\n  tokenURL: http://a.example/token\n  clientID: gw\n  clientSecretFile: none\n",
			want: []want{{6, "exchange.clientSecretFile", `none: no such file`}},
		},
		{
			name: "kubernetes gateway port",
			yaml: "kubernetes:\n  gatewayPort: 70000\n",
			want: []want{{2, "kubernetes.gatewayPort", `^70000: want 1-65535`}},
		},
		{
			name: "bad defaultPolicy",
			yaml: "defaultPolicy: permit\n",
			want: []want{{1, "defaultPolicy", `^"permit": want deny or allow$`}},
		},
		{
			name: "bad log level and format",
			yaml: "log:\n  level: loud\n  format: xml\n",
			want: []want{{2, "log.level", `^"loud"`}, {3, "log.format", `^"xml"`}},
		},
		{
			name: "every semantic error at once",
			yaml: "log:\n  level: loud\nservers:\n  - name: x\n    prefix: x_\n    url: nope\npolicies:\n  - name: p\n    cel: '1'\ndefaultPolicy: sometimes\n",
			want: []want{{2, "log.level", ``}, {4, "servers[0].name", ``}, {6, "servers[0].url", ``}, {9, "policies[0].cel", `want bool`}, {10, "defaultPolicy", ``}},
		},
	}
	goType := regexp.MustCompile(`\b(int|int64|string|bool|time\.Duration|config\.File|\w+\.Config)\b`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), t.TempDir())
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", f)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error %T %v, want *config.Error", err, err)
			}
			if len(e.Problems) != len(tt.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(e.Problems), len(tt.want), err)
			}
			for i, w := range tt.want {
				p := e.Problems[i]
				if p.Line != w.line || p.Path != w.path {
					t.Errorf("problem %d at line %d, %q; want line %d, %q (%v)", i, p.Line, p.Path, w.line, w.path, p.Err)
				}
				if !regexp.MustCompile(w.msg).MatchString(p.Err.Error()) {
					t.Errorf("problem %d message %q does not match %q", i, p.Err, w.msg)
				}
				if m := goType.FindString(p.Err.Error()); m != "" && !strings.Contains(p.Err.Error(), "cel:") {
					t.Errorf("problem %d message %q names the Go type %s", i, p.Err, m)
				}
			}
			// The whole error: a count, then each problem on a line of
			// its own that starts with its location; further lines of a
			// problem are indented.
			lines := strings.Split(err.Error(), "\n")
			if want := "config: " + Count(len(tt.want)); lines[0] != want {
				t.Errorf("first line %q, want %q", lines[0], want)
			}
			for _, l := range lines[1:] {
				if !regexp.MustCompile(`^(line \d+: |\s)`).MatchString(l) {
					t.Errorf("error line without a location: %q", l)
				}
			}
		})
	}
}

// TestLoadError checks that a loaded file's problems name the file, in the
// FILE:LINE: path: message form config check prints.
func TestLoadError(t *testing.T) {
	dir := t.TempDir()
	path := write(t, dir, "mcp-authz.yaml", "authz:\n  maxBodyBytes: -1\nidentity:\n  issuers: [{issuerURL: https://a.example}]\n")
	_, err := Load(path)
	want := "config: " + path + ": 2 problems\n" +
		path + ":2: authz.maxBodyBytes: must not be negative, is -1\n" +
		path + ":4: identity.issuers[0].audiences: at least one non-empty audience is required"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

func ptr[T any](v T) *T { return &v }

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
		{
			name: "tracing",
			yaml: "tracing:\n  endpoint: https://collector:4318\n  protocol: http/protobuf\n  samplingRatio: 0.25\n",
			want: &File{Tracing: &tracing.Config{Endpoint: "https://collector:4318", Protocol: tracing.ProtocolHTTP, SamplingRatio: ptr(0.25)}},
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
  issuers: [{issuerURL: https://idp.example, audiences: [gw], caFile: tls/ca.pem}]
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
	ca := httptest.NewTLSServer(http.NotFoundHandler())
	ca.Close()
	write(t, dir, "conf/tls/ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Certificate().Raw})))
	// A decoy in the working directory's place must not be read.
	t.Chdir(t.TempDir())

	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Exchange.ClientSecretFile, filepath.Join(dir, "conf/secrets/gw"); got != want {
		t.Errorf("clientSecretFile = %q, want %q", got, want)
	}
	if got, want := f.Identity.Issuers[0].CAFile, filepath.Join(dir, "conf/tls/ca.pem"); got != want {
		t.Errorf("identity caFile = %q, want %q", got, want)
	}
	if err := f.Validate(); err != nil {
		t.Errorf("Validate() from another working directory: %v", err)
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
