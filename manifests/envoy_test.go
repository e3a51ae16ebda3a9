package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// envoyConfigs lists every Envoy bootstrap shipped in this folder.
func envoyConfigs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("envoy", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The cluster's bootstrap, which envoy/cluster mounts from a ConfigMap.
	files = append(files, filepath.Join("envoy", "cluster", "envoy.yaml"))
	if len(files) == 0 {
		t.Fatal("no Envoy configuration found under envoy/")
	}
	return files
}

// decodeBootstrap reads an Envoy YAML bootstrap into go-control-plane's types,
// strictly: unknown fields and unresolvable typed_config types are errors.
func decodeBootstrap(data []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

func TestEnvoyConfigsValidate(t *testing.T) {
	for _, file := range envoyConfigs(t) {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b, err := decodeBootstrap(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if err := validateDeep(b); err != nil {
				t.Fatalf("validate: %v", err)
			}
			checkExtAuthz(t, b)
		})
	}
}

// validateDeep runs ValidateAll on m and on every message packed in an Any
// inside it (typed_config), which ValidateAll alone treats as opaque.
func validateDeep(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return err
		}
	}
	var err error
	walk(m.ProtoReflect(), func(a *anypb.Any) bool {
		inner, uerr := a.UnmarshalNew()
		if uerr != nil {
			err = fmt.Errorf("%s: %w", a.GetTypeUrl(), uerr)
			return false
		}
		if verr := validateDeep(inner); verr != nil {
			err = fmt.Errorf("%s: %w", a.GetTypeUrl(), verr)
			return false
		}
		return true
	})
	return err
}

// walk calls fn for every Any directly or indirectly inside m (not inside
// other Anys: validateDeep recurses into those), until fn returns false.
func walk(m protoreflect.Message, fn func(*anypb.Any) bool) bool {
	ok := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		visit := func(v protoreflect.Value) bool {
			msg := v.Message()
			if a, isAny := msg.Interface().(*anypb.Any); isAny {
				return fn(a)
			}
			return walk(msg, fn)
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && ok; i++ {
				ok = visit(v.List().Get(i))
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				ok = visit(mv)
				return ok
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			ok = visit(v)
		}
		return ok
	})
	return ok
}

// checkExtAuthz finds every ext_authz filter and checks the settings mcp-authz
// relies on: gRPC v3, the body sent whole, no failing open, route cache cleared,
// and the filter placed before the router.
func checkExtAuthz(t *testing.T, b *bootstrapv3.Bootstrap) {
	t.Helper()
	found := 0
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hcm := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig() == nil || f.GetTypedConfig().UnmarshalTo(hcm) != nil {
					continue
				}
				filters := hcm.GetHttpFilters()
				for i, hf := range filters {
					ea := &extauthzv3.ExtAuthz{}
					if hf.GetTypedConfig().UnmarshalTo(ea) != nil {
						continue
					}
					found++
					checkOne(t, l, ea)
					if i == len(filters)-1 || !strings.HasSuffix(filters[len(filters)-1].GetName(), "router") {
						t.Errorf("listener %s: ext_authz must come before the router, last", l.GetName())
					}
				}
			}
		}
	}
	if found == 0 {
		t.Error("no ext_authz filter found")
	}
}

func checkOne(t *testing.T, l *listenerv3.Listener, ea *extauthzv3.ExtAuthz) {
	t.Helper()
	name := l.GetName()
	if ea.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		t.Errorf("listener %s: transport_api_version %v, want V3", name, ea.GetTransportApiVersion())
	}
	if ea.GetGrpcService() == nil || ea.GetGrpcService().GetTimeout() == nil {
		t.Errorf("listener %s: ext_authz needs a grpc_service with a timeout", name)
	}
	if ea.GetFailureModeAllow() {
		t.Errorf("listener %s: failure_mode_allow must be false", name)
	}
	wb := ea.GetWithRequestBody()
	if wb == nil || wb.GetAllowPartialMessage() || wb.GetMaxRequestBytes() == 0 {
		t.Errorf("listener %s: with_request_body must be set, whole (allow_partial_message false), with a limit", name)
	}
	if !ea.GetClearRouteCache() {
		t.Errorf("listener %s: clear_route_cache must be true", name)
	}
}

// TestEnvoyDecodeFails shows the check can fail: configurations that Envoy
// would refuse are refused here too.
func TestEnvoyDecodeFails(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string
	}{
		{name: "unknown field", old: "failure_mode_allow: false", new: "failure_mode_alow: false"},
		{name: "unknown filter type", old: "ext_authz.v3.ExtAuthz\n", new: "ext_authz.v3.NoSuchThing\n"},
		{name: "invalid value", old: "connect_timeout: 1s", new: "connect_timeout: -1s"},
		{name: "no cluster name", old: "cluster_name: mcp-authz\n                        timeout", new: "cluster_name: \"\"\n                        timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(data), tt.old) {
				t.Fatalf("envoy.yaml no longer contains %q", tt.old)
			}
			bad := strings.Replace(string(data), tt.old, tt.new, 1)
			b, err := decodeBootstrap([]byte(bad))
			if err == nil {
				err = validateDeep(b)
			}
			if err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestEnvoyClusterBootstrap: the cluster's bootstrap is the loopback one with
// the mcp-authz Service as both upstreams, nothing else changed.
func TestEnvoyClusterBootstrap(t *testing.T) {
	read := func(path string) *bootstrapv3.Bootstrap {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := decodeBootstrap(data)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	loopback := read(filepath.Join("envoy", "envoy.yaml"))
	cluster := read(filepath.Join("envoy", "cluster", "envoy.yaml"))
	const svc = "mcp-authz.mcp-authz.svc.cluster.local"
	want := map[string]uint32{"mcp-authz": 9001, "mcp-router": 8081}
	for _, c := range cluster.GetStaticResources().GetClusters() {
		port, ok := want[c.GetName()]
		if !ok {
			t.Errorf("unexpected cluster %s", c.GetName())
			continue
		}
		delete(want, c.GetName())
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range e.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				if sa.GetAddress() != svc || sa.GetPortValue() != port {
					t.Errorf("cluster %s points at %s:%d, want %s:%d", c.GetName(), sa.GetAddress(), sa.GetPortValue(), svc, port)
				}
				sa.Address = "127.0.0.1"
			}
		}
	}
	if len(want) != 0 {
		t.Errorf("clusters missing: %v", want)
	}
	if !proto.Equal(loopback, cluster) {
		t.Error("envoy/cluster/envoy.yaml differs from envoy/envoy.yaml in more than the upstream addresses")
	}
}
