package registry

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

func srv(name, prefix string) Server {
	return Server{Name: name, Prefix: prefix, URL: "http://127.0.0.1:8089/mcp"}
}

// withTargets maps each value to a profile named after it.
func withTargets(s Server, argument, def string, values ...string) Server {
	s.Targets = &Targets{Argument: argument, Default: def, Values: map[string]Target{}}
	for _, v := range values {
		s.Targets.Values[v] = Target{Exchange: "p-" + v}
	}
	return s
}

func TestServerTarget(t *testing.T) {
	plain := srv("ns/a", "a_")
	plain.Exchange = "hub"
	multi := withTargets(srv("ns/b", "b_"), "context", "a", "a", "b")
	tests := []struct {
		name     string
		srv      Server
		value    string
		target   string
		exchange string
		ok       bool
	}{
		{"no targets", plain, "", "", "hub", true},
		{"no targets, a value", plain, "a", "", "", false},
		{"default", multi, "", "a", "p-a", true},
		{"mapped", multi, "b", "b", "p-b", true},
		{"unmapped", multi, "c", "", "", false},
		{"case differs", multi, "B", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, got, ok := tt.srv.Target(tt.value)
			if ok != tt.ok || (ok && (name != tt.target || got.Exchange != tt.exchange)) {
				t.Errorf("Target(%q) = %q, %+v, %v; want %q, %q, %v", tt.value, name, got, ok, tt.target, tt.exchange, tt.ok)
			}
		})
	}
}

func TestNewSnapshotValidation(t *testing.T) {
	withHost := func(s Server, h string) Server { s.Hostname = h; return s }
	withURL := func(s Server, u string) Server { s.URL = u; return s }
	withRes := func(s Server, r ...string) Server { s.ResourcePrefixes = r; return s }
	withCred := func(s Server, v string) Server {
		s.Credential = NewCredential("Secret "+s.Name+" key token", v)
		return s
	}
	withCA := func(s Server, pem []byte) Server { s.CACert = pem; return s }
	tests := []struct {
		name    string
		servers []Server
		want    []string // one substring per expected problem, in order
	}{
		{name: "empty", servers: nil},
		{name: "one server without prefix", servers: []Server{srv("ns/a", "")}},
		{name: "disjoint prefixes", servers: []Server{srv("ns/a", "kube_"), srv("ns/b", "git_"), srv("ns/c", "kub_")}},
		{name: "tool-name characters", servers: []Server{srv("ns/a", "A.b-c_"), srv("ns/b", "9")}},
		{name: "dotted object name", servers: []Server{srv("ns/a.b-c", "x_")}},
		{name: "resource prefixes of one server may nest", servers: []Server{withRes(srv("ns/a", "a_"), "file:///a/", "file:///a/b/", "file:///a/")}},

		{name: "targets", servers: []Server{withTargets(srv("ns/a", "a_"), "context", "a", "a", "b")}},
		{name: "targets without argument", servers: []Server{withTargets(srv("ns/a", "a_"), "", "a", "a")}, want: []string{"servers[0].targets.argument: required"}},
		{name: "targets default not a value", servers: []Server{withTargets(srv("ns/a", "a_"), "context", "c", "a", "b")}, want: []string{`servers[0].targets.default: "c" must be a key of targets.values`}},
		{name: "targets without values", servers: []Server{withTargets(srv("ns/a", "a_"), "context", "a")}, want: []string{"servers[0].targets.values: at least one", `servers[0].targets.default: "a" must be a key`}},
		{name: "targets with an empty value", servers: []Server{withTargets(srv("ns/a", "a_"), "context", "a", "a", "")}, want: []string{"servers[0].targets.values: an empty value"}},
		{name: "missing name", servers: []Server{srv("", "a_")}, want: []string{`servers[0].name: "" is required`}},
		{name: "name without namespace", servers: []Server{srv("kube", "a_")}, want: []string{"must be namespace/name"}},
		{name: "name with two slashes", servers: []Server{srv("ns/a/b", "a_")}, want: []string{"not a DNS-1123 subdomain"}},
		{name: "upper-case namespace", servers: []Server{srv("NS/a", "a_")}, want: []string{"namespace that is not a DNS-1123 label"}},
		{name: "dotted namespace", servers: []Server{srv("n.s/a", "a_")}, want: []string{"namespace that is not a DNS-1123 label"}},
		{name: "long namespace", servers: []Server{srv(strings.Repeat("n", 64)+"/a", "a_")}, want: []string{"namespace that is not"}},
		{name: "empty object name", servers: []Server{srv("ns/", "a_")}, want: []string{"name that is not a DNS-1123 subdomain"}},
		{name: "object name ends with dash", servers: []Server{srv("ns/a-", "a_")}, want: []string{"name that is not"}},
		{name: "duplicate name", servers: []Server{srv("ns/a", "a_"), srv("ns/a", "b_")}, want: []string{`servers[1].name: "ns/a" is also servers[0]`}},

		{name: "one server without prefix among many", servers: []Server{srv("ns/a", ""), srv("ns/b", "b_")}},
		{name: "two servers without prefix", servers: []Server{srv("ns/a", ""), srv("ns/b", "")}, want: []string{`servers[1].prefix: "" is also the prefix of servers[0] "ns/a"`}},
		{name: "prefix starts with separator", servers: []Server{srv("ns/a", "_a")}, want: []string{`prefix: "_a" must match`}},
		{name: "prefix with slash", servers: []Server{srv("ns/a", "a/")}, want: []string{`prefix: "a/" must match`}},
		{name: "prefix with space", servers: []Server{srv("ns/a", "a b")}, want: []string{"must match"}},
		{name: "unicode prefix", servers: []Server{srv("ns/a", "kübe_")}, want: []string{"must match"}},
		{name: "prefix too long", servers: []Server{srv("ns/a", strings.Repeat("p", 128))}, want: []string{"longer than 127"}},
		{name: "identical prefixes", servers: []Server{srv("ns/a", "kube_"), srv("ns/b", "kube_")}, want: []string{`servers[1].prefix: "kube_" is also the prefix of servers[0] "ns/a"`}},
		{name: "nested prefixes", servers: []Server{srv("ns/a", "kube_x_"), srv("ns/b", "kube_")}},
		{name: "chain of nested prefixes", servers: []Server{srv("ns/a", "k"), srv("ns/b", "ku"), srv("ns/c", "kub"), srv("ns/d", "x"), srv("ns/e", "")}},
		{name: "credential", servers: []Server{withCred(srv("ns/a", "a_"), "Bearer ghp_x")}},
		{name: "credential with a line break is not echoed", servers: []Server{withCred(srv("ns/a", "a_"), "Bearer s3cret\r\nX-Evil: 1")}, want: []string{"servers[0].credential: Secret ns/a key token is not a valid header value"}},
		{name: "empty credential", servers: []Server{withCred(srv("ns/a", "a_"), "")}, want: []string{"credential: Secret ns/a key token is not a valid"}},
		{name: "credential and a profile", servers: []Server{func() Server { s := withCred(srv("ns/a", "a_"), "Bearer x"); s.Exchange = "hub"; return s }()}, want: []string{"servers[0].credential: Secret ns/a key token and an exchange profile or targets both make the upstream's Authorization: set one"}},
		{name: "credential and targets", servers: []Server{withCred(withTargets(srv("ns/a", "a_"), "context", "a", "a"), "Bearer x")}, want: []string{"servers[0].credential: Secret ns/a key token and an exchange profile"}},
		{name: "credential with trailing newline", servers: []Server{withCred(srv("ns/a", "a_"), "Bearer x\n")}, want: []string{"not a valid header value"}},
		{name: "ca cert", servers: []Server{withCA(withURL(srv("ns/a", "a_"), "https://h/mcp"), testCA)}},
		{name: "ca cert on http", servers: []Server{withCA(srv("ns/a", "a_"), testCA)}, want: []string{"servers[0].caCert: needs an https url"}},
		{name: "ca cert that is no PEM", servers: []Server{withCA(withURL(srv("ns/a", "a_"), "https://h/mcp"), []byte("nope"))}, want: []string{"servers[0].caCert: holds no PEM certificate"}},
		{name: "empty category and tag", servers: []Server{{Name: "ns/a", URL: "http://h/", Category: []string{"x", ""}, Tags: []string{""}}}, want: []string{"servers[0].category[1]: empty", "servers[0].tags[0]: empty"}},

		{name: "missing url", servers: []Server{withURL(srv("ns/a", "a_"), "")}, want: []string{"url: is required"}},
		{name: "relative url", servers: []Server{withURL(srv("ns/a", "a_"), "/mcp")}, want: []string{"url: must be an absolute http or https URL"}},
		{name: "ftp url", servers: []Server{withURL(srv("ns/a", "a_"), "ftp://h/mcp")}, want: []string{"absolute http or https"}},
		{name: "url without host", servers: []Server{withURL(srv("ns/a", "a_"), "http:///mcp")}, want: []string{"url: must have a host"}},
		{name: "opaque url", servers: []Server{withURL(srv("ns/a", "a_"), "http:h/mcp")}, want: []string{"url: must have a host"}},
		{name: "url that does not parse", servers: []Server{withURL(srv("ns/a", "a_"), "http://h:port/")}, want: []string{"url: does not parse"}},
		{name: "url with credentials is not echoed", servers: []Server{withURL(srv("ns/a", "a_"), "http://u:s3cret@h/mcp")}, want: []string{"url: must not carry credentials"}},

		{name: "hostname with port", servers: []Server{withHost(srv("ns/a", "a_"), "mcp.example.com:443")}, want: []string{`hostname: "mcp.example.com:443" must be a DNS name`}},
		{name: "wildcard hostname", servers: []Server{withHost(srv("ns/a", "a_"), "*.example.com")}, want: []string{"must be a DNS name"}},
		{name: "duplicate hostname ignoring case", servers: []Server{withHost(srv("ns/a", "a_"), "MCP.example.com"), withHost(srv("ns/b", "b_"), "mcp.EXAMPLE.com")}, want: []string{`servers[1].hostname: "mcp.example.com" is also used by servers[0] "ns/a"`}},

		{name: "empty resource prefix", servers: []Server{withRes(srv("ns/a", "a_"), "file:///", "")}, want: []string{"resourcePrefixes[1]: empty"}},
		{name: "same resource prefix on two servers", servers: []Server{withRes(srv("ns/a", "a_"), "file:///"), withRes(srv("ns/b", "b_"), "file:///")}, want: []string{`servers[1].resourcePrefixes: "file:///" overlaps servers[0] "ns/a" resource prefix "file:///"`}},
		{name: "nested resource prefixes on two servers", servers: []Server{withRes(srv("ns/a", "a_"), "file:///data/x/"), withRes(srv("ns/b", "b_"), "file:///data/")}, want: []string{`servers[0].resourcePrefixes: "file:///data/x/" overlaps servers[1] "ns/b"`}},

		{name: "every problem at once", servers: []Server{withURL(srv("bad", "_"), ""), srv("ns/b", "")}, want: []string{
			`servers[0].name: "bad" must be namespace/name`,
			`servers[0].prefix: "_" must match`,
			`servers[0].url: is required`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap, err := NewSnapshot(tt.servers)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("NewSnapshot: %v", err)
				}
				if got := len(snap.Servers()); got != len(tt.servers) {
					t.Errorf("Servers() has %d servers, want %d", got, len(tt.servers))
				}
				return
			}
			if err == nil || snap != nil {
				t.Fatalf("NewSnapshot = %v, %v; want an error", snap, err)
			}
			var got []string
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					var fe *field.Error
					if !errors.As(e, &fe) {
						t.Errorf("problem %q is not a field.Error", e)
					}
					got = append(got, e.Error())
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], "servers[") || !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q echoes URL credentials", err)
			}
		})
	}
}

func TestNewSnapshotDoesNotAlias(t *testing.T) {
	in := []Server{{Name: "ns/b", Prefix: "b_", URL: "http://b/", Hostname: "B.example", ResourcePrefixes: []string{"b://"}}, srv("ns/a", "a_")}
	snap, err := NewSnapshot(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0].Prefix, in[0].ResourcePrefixes[0] = "x_", "x://"
	out := snap.Servers()
	out[1].Name, out[1].ResourcePrefixes[0] = "changed", "changed"

	want := []Server{
		{Name: "ns/a", Prefix: "a_", URL: "http://127.0.0.1:8089/mcp", Audience: "ns/a"},
		{Name: "ns/b", Prefix: "b_", URL: "http://b/", Audience: "ns/b", Hostname: "b.example", ResourcePrefixes: []string{"b://"}},
	}
	if diff := cmp.Diff(want, snap.Servers()); diff != "" {
		t.Errorf("Servers() (-want +got):\n%s", diff)
	}
	if s, _, ok := snap.Resolve("b_x"); !ok || s.Name != "ns/b" {
		t.Errorf("Resolve(b_x) = %v, %v after the caller changed its input", s, ok)
	}
}

func TestLookups(t *testing.T) {
	snap, err := NewSnapshot([]Server{
		srv("mcp-test/kubernetes-mcp", "kube_"),
		srv("ns/kub", "kub."),
		srv("ns/git", "git_"),
		srv("ns/gitx", "gitx_"),
		srv("ns/kube-admin", "kube_admin_"),
		srv("ns/kube-a", "kube_a"),
		{Name: "ns/files", Prefix: "fs_", URL: "https://files/mcp", Audience: "files-aud", Hostname: "Files.Example.com",
			ResourcePrefixes: []string{"file:///srv/", "file:///srv/deep/", "file:///etc/hosts"}},
		{Name: "ns/web", Prefix: "web-", URL: "https://web/mcp", ResourcePrefixes: []string{"https://"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	resolve := []struct {
		name, in, server, rest string
	}{
		{name: "prefixed tool", in: "kube_pods_list", server: "mcp-test/kubernetes-mcp", rest: "pods_list"},
		{name: "shorter sibling prefix", in: "kub.x", server: "ns/kub", rest: "x"},
		{name: "sibling is not a prefix", in: "kub_x"},
		{name: "one-character remainder", in: "git_a", server: "ns/git", rest: "a"},
		{name: "longer sibling", in: "gitx_a", server: "ns/gitx", rest: "a"},
		{name: "remainder may look prefixed", in: "git_kube_x", server: "ns/git", rest: "kube_x"},
		{name: "empty remainder", in: "kube_"},
		{name: "unknown prefix", in: "zzz_tool"},
		{name: "prefix missing its separator", in: "kube"},
		{name: "case matters", in: "KUBE_pods"},
		{name: "empty name", in: ""},
		{name: "unicode remainder", in: "web-😀é", server: "ns/web", rest: "😀é"},
		{name: "unicode before the prefix", in: "ékube_x"},
		{name: "between all prefixes", in: "h"},
		{name: "after all prefixes", in: "~"},
		{name: "nested: the longest prefix wins", in: "kube_admin_drain", server: "ns/kube-admin", rest: "drain"},
		{name: "nested: a shorter nested prefix keeps the rest", in: "kube_adminx", server: "ns/kube-a", rest: "dminx"},
		{name: "nested: the longer prefix alone falls back", in: "kube_admin_", server: "ns/kube-a", rest: "dmin_"},
		{name: "nested: back two levels", in: "kube_b", server: "mcp-test/kubernetes-mcp", rest: "b"},
		{name: "nested: the outer prefix", in: "kube_x", server: "mcp-test/kubernetes-mcp", rest: "x"},
	}
	for _, tt := range resolve {
		t.Run("Resolve/"+tt.name, func(t *testing.T) {
			s, rest, ok := snap.Resolve(tt.in)
			if ok != (tt.server != "") {
				t.Fatalf("Resolve(%q) ok = %v, want %v", tt.in, ok, !ok)
			}
			if ok && (s.Name != tt.server || rest != tt.rest) {
				t.Errorf("Resolve(%q) = %q, %q; want %q, %q", tt.in, s.Name, rest, tt.server, tt.rest)
			}
			if !ok && (s != nil || rest != "") {
				t.Errorf("Resolve(%q) = %v, %q on a miss", tt.in, s, rest)
			}
		})
	}
	uris := []struct{ in, server string }{
		{"file:///srv/a.txt", "ns/files"},
		{"file:///srv/deep/a.txt", "ns/files"},
		{"file:///srv/zzz", "ns/files"}, // sorts after the nested file:///srv/deep/
		{"file:///srv/", "ns/files"},
		{"file:///etc/hosts", "ns/files"},
		{"file:///etc/passwd", ""},
		{"file:///sr", ""},
		{"https://example.com/x", "ns/web"},
		{"http://example.com/x", ""},
		{"", ""},
	}
	for _, tt := range uris {
		s, ok := snap.ResolveURI(tt.in)
		if ok != (tt.server != "") || ok && s.Name != tt.server {
			t.Errorf("ResolveURI(%q) = %v, %v; want %q", tt.in, s, ok, tt.server)
		}
	}
	hosts := []struct{ in, server string }{
		{"files.example.com", "ns/files"},
		{"FILES.example.COM", "ns/files"},
		{"files.example.com:8443", "ns/files"},
		{"files.example.com:", ""},
		{"files.example.com:http", ""},
		{"files.example.com:123456", ""},
		{"files.example.com.", ""},
		{"example.com", ""},
		{"[::1]:443", ""},
		{"", ""},
	}
	for _, tt := range hosts {
		s, ok := snap.ByHost(tt.in)
		if ok != (tt.server != "") || ok && s.Name != tt.server {
			t.Errorf("ByHost(%q) = %v, %v; want %q", tt.in, s, ok, tt.server)
		}
	}
	if s, ok := snap.Server("ns/files"); !ok || s.Audience != "files-aud" {
		t.Errorf("Server(ns/files) = %v, %v; want audience files-aud", s, ok)
	}
	if s, ok := snap.Server("ns/git"); !ok || s.Audience != "ns/git" {
		t.Errorf("Server(ns/git) = %v, %v; want the audience to default to the name", s, ok)
	}
	if s, ok := snap.Server("NS/git"); ok {
		t.Errorf("Server(NS/git) = %v, want no match", s)
	}
}

func TestResolveSingleServerWithoutPrefix(t *testing.T) {
	snap, err := NewSnapshot([]Server{srv("ns/only", "")})
	if err != nil {
		t.Fatal(err)
	}
	if s, rest, ok := snap.Resolve("pods_list"); !ok || s.Name != "ns/only" || rest != "pods_list" {
		t.Errorf("Resolve(pods_list) = %v, %q, %v", s, rest, ok)
	}
	if s, _, ok := snap.Resolve(""); ok {
		t.Errorf("Resolve(\"\") = %v, want no match", s)
	}
}

func TestEmptySnapshot(t *testing.T) {
	for _, snap := range []*Snapshot{{}, new(Registry).Load()} {
		if s, _, ok := snap.Resolve("kube_x"); ok {
			t.Errorf("Resolve = %v", s)
		}
		if s, ok := snap.ResolveURI("file:///x"); ok {
			t.Errorf("ResolveURI = %v", s)
		}
		if s, ok := snap.ByHost("example.com"); ok {
			t.Errorf("ByHost = %v", s)
		}
		if s, ok := snap.Server("ns/a"); ok {
			t.Errorf("Server = %v", s)
		}
		if got := snap.Servers(); len(got) != 0 {
			t.Errorf("Servers = %v", got)
		}
	}
}

// many returns n servers with prefixes s0_ ... s<n-1>_, which share leading characters
// (s1_ vs s10_) so that near misses are exercised.
func many(n int) []Server {
	out := make([]Server, n)
	for i := range out {
		out[i] = Server{
			Name:             fmt.Sprintf("ns/server-%d", i),
			Prefix:           fmt.Sprintf("s%d_", i),
			URL:              fmt.Sprintf("http://127.0.0.1:%d/mcp", 10000+i),
			Hostname:         fmt.Sprintf("s%d.example.com", i),
			ResourcePrefixes: []string{fmt.Sprintf("res://%d/", i)},
		}
	}
	return out
}

func TestManyServers(t *testing.T) {
	const n = 500
	snap, err := NewSnapshot(many(n))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		want := fmt.Sprintf("ns/server-%d", i)
		if s, rest, ok := snap.Resolve(fmt.Sprintf("s%d_tool", i)); !ok || s.Name != want || rest != "tool" {
			t.Fatalf("Resolve(s%d_tool) = %v, %q, %v; want %s", i, s, rest, ok, want)
		}
		if s, ok := snap.ResolveURI(fmt.Sprintf("res://%d/x", i)); !ok || s.Name != want {
			t.Fatalf("ResolveURI(res://%d/x) = %v, %v", i, s, ok)
		}
		if s, ok := snap.ByHost(fmt.Sprintf("S%d.example.com:80", i)); !ok || s.Name != want {
			t.Fatalf("ByHost(s%d) = %v, %v", i, s, ok)
		}
		// Near misses: the prefix without its separator, and another digit appended.
		if s, _, ok := snap.Resolve(fmt.Sprintf("s%d", i)); ok {
			t.Fatalf("Resolve(s%d) = %v, want no match", i, s)
		}
		if s, _, ok := snap.Resolve(fmt.Sprintf("s%d9_x", i+n)); ok {
			t.Fatalf("Resolve(s%d9_x) = %v, want no match", i+n, s)
		}
		if s, ok := snap.ResolveURI(fmt.Sprintf("res://%d", i)); ok {
			t.Fatalf("ResolveURI(res://%d) = %v, want no match", i, s)
		}
	}
	got := snap.Servers()
	for i := 1; i < len(got); i++ {
		if got[i-1].Name >= got[i].Name {
			t.Fatalf("Servers() not sorted: %q before %q", got[i-1].Name, got[i].Name)
		}
	}
}

func TestServerYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/servers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Servers []Server `yaml:"servers"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := []Server{
		{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:8089/mcp"},
		{Name: "mcp-test/files", Prefix: "fs_", URL: "https://files.mcp-test.svc:8443/mcp", Audience: "files",
			Hostname: "files.example.com", ResourcePrefixes: []string{"file:///srv/"}},
	}
	if diff := cmp.Diff(want, doc.Servers); diff != "" {
		t.Errorf("decoded servers (-want +got):\n%s", diff)
	}
	if _, err := NewSnapshot(doc.Servers); err != nil {
		t.Errorf("NewSnapshot: %v", err)
	}

	bad := yaml.NewDecoder(strings.NewReader("servers: [{name: ns/a, prefixx: a_}]"))
	bad.KnownFields(true)
	if err := bad.Decode(&doc); err == nil {
		t.Error("unknown key prefixx decoded without error")
	}
}

// testCA is a self-signed CA certificate in PEM, made once for the tests.
var testCA = func() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}()

// TestCredentialNeverPrints shows a server's credential value reaches no printed,
// logged or marshalled form of the server, only Value.
func TestCredentialNeverPrints(t *testing.T) {
	const secret = "Bearer s3cret-value"
	s := Server{Name: "ns/a", Prefix: "a_", URL: "http://h/", Credential: NewCredential("Secret ns/a key token", secret)}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("server", "server", s, "credential", s.Credential)
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{
		fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", s.Credential),
		fmt.Sprintf("%+v", *s.Credential), logged.String(), string(j), string(y),
	} {
		if strings.Contains(form, "s3cret") {
			t.Errorf("the credential's value is in %q", form)
		}
	}
	if !strings.Contains(fmt.Sprint(s), "credential from Secret ns/a key token") {
		t.Errorf("%v does not name the credential's source", s)
	}
	if s.Credential.Value() != secret {
		t.Errorf("Value() = %q", s.Credential.Value())
	}
}
