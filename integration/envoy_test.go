//go:build integration

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// envoyPorts are the loopback ports a rendered Envoy bootstrap uses.
type envoyPorts struct {
	listener, admin int // Envoy's own
	authz, router   int // the mcp-authz and mcp-router clusters
}

// renderEnvoy turns the shipped bootstrap (manifests/envoy/envoy.yaml) into
// one for this machine: the listener and the admin interface on 127.0.0.1 at
// the given ports, the mcp-authz cluster at authz, the mcp-router cluster at
// router. Everything else stays as shipped. It fails when the bootstrap no
// longer has the one listener and the two clusters it expects.
func renderEnvoy(shipped []byte, p envoyPorts) (*bootstrapv3.Bootstrap, error) {
	b, err := decodeEnvoy(shipped)
	if err != nil {
		return nil, err
	}
	loopback := func(port int) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
		}}}
	}
	if b.GetAdmin() == nil {
		return nil, errors.New("render envoy: no admin section")
	}
	b.Admin.Address = loopback(p.admin)
	ls := b.GetStaticResources().GetListeners()
	if len(ls) != 1 {
		return nil, fmt.Errorf("render envoy: %d listeners, want 1", len(ls))
	}
	ls[0].Address = loopback(p.listener)
	want := map[string]int{"mcp-authz": p.authz, "mcp-router": p.router}
	for _, c := range b.GetStaticResources().GetClusters() {
		port, ok := want[c.GetName()]
		if !ok {
			return nil, fmt.Errorf("render envoy: unexpected cluster %q", c.GetName())
		}
		delete(want, c.GetName())
		n := 0
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range e.GetLbEndpoints() {
				if lb.GetEndpoint() == nil {
					return nil, fmt.Errorf("render envoy: cluster %s: an lb endpoint without an endpoint", c.GetName())
				}
				lb.GetEndpoint().Address = loopback(port)
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("render envoy: cluster %s has %d endpoints, want 1", c.GetName(), n)
		}
	}
	if len(want) != 0 {
		return nil, fmt.Errorf("render envoy: clusters missing: %v", want)
	}
	return b, nil
}

// decodeEnvoy reads an Envoy YAML or JSON bootstrap into go-control-plane's
// types, strictly (unknown fields and typed_config types are errors), and
// validates it with every message packed inside it.
func decodeEnvoy(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		return nil, err
	}
	if err := validateEnvoy(&b); err != nil {
		return nil, err
	}
	return &b, nil
}

// validateEnvoy runs ValidateAll on m and on every message packed in an Any
// inside it (typed_config), which ValidateAll alone treats as opaque.
func validateEnvoy(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return err
		}
	}
	var err error
	eachMessage(m.ProtoReflect(), func(msg protoreflect.Message) bool {
		a, ok := msg.Interface().(*anypb.Any)
		if !ok {
			return true
		}
		inner, uerr := a.UnmarshalNew()
		if uerr == nil {
			uerr = validateEnvoy(inner)
		}
		if uerr != nil {
			err = fmt.Errorf("%s: %w", a.GetTypeUrl(), uerr)
		}
		return false
	})
	return err
}

// eachMessage calls fn for every message set inside m, depth first; fn
// returns whether to look inside the message it was given.
func eachMessage(m protoreflect.Message, fn func(protoreflect.Message) bool) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		visit := func(v protoreflect.Value) {
			if fn(v.Message()) {
				eachMessage(v.Message(), fn)
			}
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				visit(v.List().Get(i))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(mv)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			visit(v)
		}
		return true
	})
}

// socketAddresses lists every socket address in b, packed ones included, as
// host:port.
func socketAddresses(t *testing.T, b *bootstrapv3.Bootstrap) []string {
	t.Helper()
	var out []string
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		eachMessage(m, func(msg protoreflect.Message) bool {
			switch v := msg.Interface().(type) {
			case *corev3.SocketAddress:
				out = append(out, net.JoinHostPort(v.GetAddress(), strconv.Itoa(int(v.GetPortValue()))))
			case *anypb.Any:
				inner, err := v.UnmarshalNew()
				if err != nil {
					t.Fatalf("%s: %v", v.GetTypeUrl(), err)
				}
				walk(inner.ProtoReflect())
				return false
			}
			return true
		})
	}
	walk(b.ProtoReflect())
	slices.Sort(out)
	return out
}

// extAuthz returns the ext_authz filter of the bootstrap's listener.
func extAuthz(t *testing.T, b *bootstrapv3.Bootstrap) *extauthzv3.ExtAuthz {
	t.Helper()
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hcm := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig().UnmarshalTo(hcm) != nil {
					continue
				}
				for _, hf := range hcm.GetHttpFilters() {
					ea := &extauthzv3.ExtAuthz{}
					if hf.GetTypedConfig().UnmarshalTo(ea) == nil {
						return ea
					}
				}
			}
		}
	}
	t.Fatal("no ext_authz filter in the bootstrap")
	return nil
}

// writeEnvoy renders the shipped bootstrap for ports, checks it and writes it
// as JSON (which envoy -c reads) into dir.
func writeEnvoy(t *testing.T, dir string, p envoyPorts) string {
	t.Helper()
	shipped, err := os.ReadFile(repoFile("manifests/envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := renderEnvoy(shipped, p)
	if err != nil {
		t.Fatal(err)
	}
	js, err := protojson.MarshalOptions{Multiline: true}.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	// What Envoy reads is the file: decode and validate that.
	back, err := decodeEnvoy(js)
	if err != nil {
		t.Fatalf("the rendered bootstrap does not validate: %v\n%s", err, js)
	}
	addr := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	want := []string{addr(p.listener), addr(p.admin), addr(p.authz), addr(p.router)}
	slices.Sort(want)
	if diff := cmp.Diff(want, socketAddresses(t, back)); diff != "" {
		t.Errorf("socket addresses of the rendered bootstrap (-want +got):\n%s", diff)
	}
	// Rendering keeps what mcp-authz relies on.
	ea := extAuthz(t, back)
	if ea.GetFailureModeAllow() || !ea.GetClearRouteCache() || ea.GetWithRequestBody() == nil ||
		ea.GetWithRequestBody().GetAllowPartialMessage() || ea.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "mcp-authz" {
		t.Errorf("the rendered ext_authz filter lost a setting: %v", ea)
	}
	return writeFile(t, dir, "envoy.json", string(js))
}

// TestEnvoyRender renders manifests/envoy/envoy.yaml for loopback ports and
// validates the result with go-control-plane, where Envoy runs or not; and
// a shipped bootstrap whose shape changed is refused rather than rendered
// with an address left over.
func TestEnvoyRender(t *testing.T) {
	p := envoyPorts{listener: 18080, admin: 19901, authz: 19001, router: 18081}
	path := writeEnvoy(t, t.TempDir(), p)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("rendered bootstrap: %v", err)
	}

	shipped, err := os.ReadFile(repoFile("manifests/envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string
	}{
		{name: "router cluster renamed", old: "- name: mcp-router\n", new: "- name: mcp-router-v2\n"},
		{name: "invalid value", old: "connect_timeout: 1s", new: "connect_timeout: -1s"},
		{name: "unknown field", old: "failure_mode_allow: false", new: "failure_mode_alow: false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(shipped), tt.old) {
				t.Fatalf("envoy.yaml no longer contains %q", tt.old)
			}
			if _, err := renderEnvoy([]byte(strings.Replace(string(shipped), tt.old, tt.new, 1)), p); err == nil {
				t.Error("rendered")
			}
		})
	}
}

// forge adds x-mcp-* headers a client should not be able to set to every
// request.
type forge struct{}

func (forge) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Mcp-Toolname", "pods_delete")
	req.Header.Set("X-Mcp-Servername", "forged")
	req.Header.Set("X-Mcp-Authz", "forged")
	return http.DefaultTransport.RoundTrip(req)
}

// portOf is the port of a loopback address.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// envoyBackend is what stands behind the proxy in TestEnvoyEndToEnd:
// mcp-authz (authz, and the router behind a recording proxy) and a go-sdk
// upstream registered with prefix kube_, under a policy that denies
// pods_delete.
type envoyBackend struct {
	authz string // authz's gRPC address
	rec   *recordingProxy
	up    *goServer
	proc  *proc
	cfg   string // the configuration file
}

// startEnvoyBackend runs the backend; extra is YAML added to the
// configuration (a gateway section, for the stand-in).
func startEnvoyBackend(t *testing.T, extra func(recorder string) string) *envoyBackend {
	t.Helper()
	b := &envoyBackend{up: startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list", "pods_delete")}
	b.authz = freePort(t)
	routerAddr := freePort(t)
	b.rec = startRecordingProxy(t, "http://"+routerAddr)
	b.cfg = writeFile(t, t.TempDir(), "mcp-authz.yaml", fmt.Sprintf(`authz:
  listen: %s
router:
  listen: %s
servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s
policies:
  - name: no-delete
    cel: 'mcp.tool.name != "pods_delete"'
log:
  level: debug
%s`, b.authz, routerAddr, b.up.url, extra(b.rec.addr)))
	b.proc = start(t, b.authz, nil, filepath.Join(bin, "mcp-authz"), "serve", "--config", b.cfg)
	waitPort(t, routerAddr, b.proc)
	return b
}

// TestEnvoyEndToEnd runs the shipped Envoy bootstrap, rendered for loopback,
// in front of mcp-authz (authz as Envoy's ext_authz gRPC service, then the
// router) and a go-sdk upstream: a go-sdk client's tools/call through Envoy
// is answered by the upstream, reaches the router with the x-mcp-* headers
// authz set (the client's forged ones dropped), and a tool the policy denies
// is answered by Envoy with authz's 403 body and never reaches the router.
// It needs envoy on PATH and skips, saying so, without it. The same walk
// runs through mcp-authz's own front, which plays Envoy's ext_authz filter,
// wherever Envoy is missing or not: it proves the walk's assertions.
func TestEnvoyEndToEnd(t *testing.T) {
	t.Run("front", func(t *testing.T) {
		var front string
		b := startEnvoyBackend(t, func(recorder string) string {
			front = freePort(t)
			return fmt.Sprintf("gateway:\n  listen: %s\n  upstream: http://%s\n", front, recorder)
		})
		waitPort(t, front, b.proc)
		envoyWalk(t, "http://"+front+"/mcp", b)
	})
	t.Run("envoy", func(t *testing.T) {
		envoy, err := exec.LookPath("envoy")
		if err != nil {
			t.Skip("envoy not on PATH: the real-Envoy end-to-end test needs an envoy binary (none can be installed on this project's machines); TestEnvoyRender checks the rendered bootstrap and the front subtest runs the same walk")
		}
		b := startEnvoyBackend(t, func(string) string { return "" })
		listener, admin := freePort(t), freePort(t)
		bootstrap := writeEnvoy(t, t.TempDir(), envoyPorts{
			listener: portOf(t, listener), admin: portOf(t, admin),
			authz: portOf(t, b.authz), router: portOf(t, b.rec.addr),
		})
		e := start(t, listener, nil, envoy, "-c", bootstrap, "--disable-hot-restart", "--log-level", "warn")
		waitPort(t, admin, e)
		waitFor(t, "envoy /ready to say LIVE", 10*time.Second, func() bool {
			resp, body := get(t, "http://"+admin+"/ready")
			return resp.StatusCode == http.StatusOK && strings.TrimSpace(body) == "LIVE"
		})
		envoyWalk(t, "http://"+listener+"/mcp", b)
	})
}

// envoyWalk is the walk of TestEnvoyEndToEnd through the proxy at endpoint.
func envoyWalk(t *testing.T, endpoint string, b *envoyBackend) {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: endpoint, HTTPClient: &http.Client{Transport: forge{}}, MaxRetries: -1,
	}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	if got := listTools(t, cs); !slices.Equal(got, []string{"kube_pods_list"}) {
		t.Errorf("tools/list through the proxy: %q, want [kube_pods_list]", got)
	}
	got, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list"})
	if err != nil || got != "mcp-test/kubernetes-mcp:pods_list" {
		t.Fatalf("kube_pods_list through the proxy: %q, %v", got, err)
	}
	calls := b.rec.calls("kube_pods_list")
	if len(calls) != 1 {
		t.Fatalf("the router received %d tools/call kube_pods_list, want 1", len(calls))
	}
	for k, want := range map[string]string{
		"X-Mcp-Method":     "tools/call",
		"X-Mcp-Servername": "mcp-test/kubernetes-mcp",
		"X-Mcp-Toolname":   "pods_list",
	} {
		if v := calls[0].header.Values(k); len(v) != 1 || v[0] != want {
			t.Errorf("the router received %s = %q, want exactly %q", k, v, want)
		}
	}
	if v := calls[0].header.Values("X-Mcp-Authz"); len(v) != 1 || v[0] == "forged" {
		t.Errorf("the router received x-mcp-authz %q, want authz's one assertion", v)
	}

	// A denial: the proxy answers with authz's status and body; the router
	// never sees the call.
	resp, body := post(t.Context(), t, endpoint, toolCall("kube_pods_delete"), nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"reason":"tool_denied"`) {
		t.Errorf("kube_pods_delete through the proxy: %d %s, want 403 tool_denied", resp.StatusCode, body)
	}
	var rpc struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &rpc); err != nil || rpc.JSONRPC != "2.0" || string(rpc.ID) != "1" || rpc.Error == nil {
		t.Errorf("the denial's body is not authz's JSON-RPC error for id 1: %s", body)
	}
	if n := len(b.rec.calls("kube_pods_delete")); n != 0 {
		t.Errorf("a denied call reached the router %d times", n)
	}
	n := 0
	for _, r := range b.up.requests() {
		if r.method == "tools/call" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the upstream received %d tools/call, want 1 (kube_pods_list)", n)
	}
}
