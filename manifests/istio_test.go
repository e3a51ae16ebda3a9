package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

// decodeMeshPatch reads mesh-config.yaml's meshConfig strictly into Istio's
// own MeshConfig type: a misspelt or unknown field is an error, as istiod
// would refuse it.
func decodeMeshPatch(data []byte) (*meshv1alpha1.MeshConfig, error) {
	var doc map[string]any
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, err
	}
	if len(doc) != 1 || doc["meshConfig"] == nil {
		return nil, fmt.Errorf("want only the key meshConfig, have %d keys", len(doc))
	}
	js, err := yaml.Marshal(doc["meshConfig"])
	if err != nil {
		return nil, err
	}
	if js, err = yaml.YAMLToJSON(js); err != nil {
		return nil, err
	}
	var mc meshv1alpha1.MeshConfig
	if err := protojson.Unmarshal(js, &mc); err != nil {
		return nil, err
	}
	return &mc, nil
}

// shippedExtAuthz returns the ext_authz filter of the shipped Envoy bootstrap.
func shippedExtAuthz(t *testing.T) *extauthzv3.ExtAuthz {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("envoy", "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeBootstrap(data)
	if err != nil {
		t.Fatal(err)
	}
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
	t.Fatal("envoy.yaml has no ext_authz filter")
	return nil
}

// TestMeshConfigPatch checks the extension provider Istio calls mcp-authz
// through: valid for Istio, pointing at the shipped Service's ext_authz port,
// and set as the Envoy bootstrap is (body whole and as bytes, route cache
// cleared, never failing open, the same timeout and limits).
func TestMeshConfigPatch(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("istio", "mesh-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := decodeMeshPatch(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(mc.GetExtensionProviders()) != 1 {
		t.Fatalf("%d extension providers, want the one of mcp-authz", len(mc.GetExtensionProviders()))
	}
	p := mc.GetExtensionProviders()[0]
	g := p.GetEnvoyExtAuthzGrpc()
	if g == nil {
		t.Fatalf("provider %s is not envoyExtAuthzGrpc", p.GetName())
	}
	ea := shippedExtAuthz(t)

	var svc corev1.Service
	typed(t, readObject(t, filepath.Join("base", "service.yaml")), &svc)
	wantPort := -1
	for _, sp := range svc.Spec.Ports {
		if sp.Name == "grpc-authz" {
			wantPort = int(sp.Port)
		}
	}
	var ap struct {
		Spec struct {
			Provider struct{ Name string } `json:"provider"`
		} `json:"spec"`
	}
	partial(t, readObject(t, filepath.Join("istio", "authorizationpolicy.yaml")), &ap)

	tests := []struct {
		name      string
		got, want any
	}{
		{name: "provider name is the AuthorizationPolicy's", got: p.GetName(), want: ap.Spec.Provider.Name},
		{name: "service", got: g.GetService(), want: "mcp-authz.mcp-authz.svc.cluster.local"},
		{name: "port", got: int(g.GetPort()), want: wantPort},
		{name: "timeout", got: g.GetTimeout().AsDuration(), want: ea.GetGrpcService().GetTimeout().AsDuration()},
		{name: "failOpen", got: g.GetFailOpen(), want: ea.GetFailureModeAllow()},
		{name: "statusOnError", got: g.GetStatusOnError(), want: fmt.Sprint(int(ea.GetStatusOnError().GetCode()))},
		{name: "clearRouteCache", got: g.GetClearRouteCache(), want: ea.GetClearRouteCache()},
		{name: "maxRequestBytes", got: g.GetIncludeRequestBodyInCheck().GetMaxRequestBytes(), want: ea.GetWithRequestBody().GetMaxRequestBytes()},
		{name: "allowPartialMessage", got: g.GetIncludeRequestBodyInCheck().GetAllowPartialMessage(), want: ea.GetWithRequestBody().GetAllowPartialMessage()},
		{name: "packAsBytes", got: g.GetIncludeRequestBodyInCheck().GetPackAsBytes(), want: ea.GetWithRequestBody().GetPackAsBytes()},
		// And what the bootstrap has, for the record: checks above compare.
		{name: "never fails open", got: g.GetFailOpen(), want: false},
		{name: "route cache cleared", got: g.GetClearRouteCache(), want: true},
		{name: "body as bytes", got: g.GetIncludeRequestBodyInCheck().GetPackAsBytes(), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%v, want %v", tt.got, tt.want)
			}
		})
	}
}

// TestMeshConfigPatchRejects shows the decoding catches what istiod would
// refuse, and that the patch is a patch, not a ConfigMap.
func TestMeshConfigPatchRejects(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("istio", "mesh-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new string }{
		{name: "misspelt field", old: "clearRouteCache: true", new: "clearRouteCach: true"},
		{name: "wrong type", old: "maxRequestBytes: 1048576", new: "maxRequestBytes: lots"},
		{name: "a whole ConfigMap", old: "meshConfig:", new: "apiVersion: v1\nkind: ConfigMap\nmeshConfig:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(data), tt.old) {
				t.Fatalf("mesh-config.yaml no longer contains %q", tt.old)
			}
			if _, err := decodeMeshPatch([]byte(strings.Replace(string(data), tt.old, tt.new, 1))); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// readObject reads a single-object YAML file.
func readObject(t *testing.T, path string) object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var o object
	if err := yaml.Unmarshal(data, &o); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return o
}

// TestIstioRouting checks the Istio front fits together: the HTTPRoute
// attaches to the shipped Gateway's listener, sends /mcp and the
// protected-resource metadata (and nothing else) to the router's Service
// port, the ReferenceGrant admits exactly that cross-namespace reference, and
// the AuthorizationPolicy checks everything on that Gateway but the metadata.
func TestIstioRouting(t *testing.T) {
	needEnv(t)
	objs := objects(t, append(render(t, "."), append([]byte("\n---\n"), render(t, "istio")...)...))
	var (
		gw    gatewayv1.Gateway
		route gatewayv1.HTTPRoute
		grant gatewayv1beta1.ReferenceGrant
		svc   corev1.Service
		ap    struct {
			Spec struct {
				TargetRefs []struct{ Group, Kind, Name string } `json:"targetRefs"`
				Action     string                               `json:"action"`
				Rules      []struct {
					To []struct {
						Operation struct {
							Paths    []string `json:"paths"`
							NotPaths []string `json:"notPaths"`
						} `json:"operation"`
					} `json:"to"`
				} `json:"rules"`
			} `json:"spec"`
		}
	)
	partial(t, objs["AuthorizationPolicy/gateway-system/mcp-authz"], &ap)
	for key, into := range map[string]any{
		"Gateway/gateway-system/mcp-gateway":              &gw,
		"HTTPRoute/gateway-system/mcp-authz":              &route,
		"ReferenceGrant/mcp-authz/mcp-authz-from-gateway": &grant,
		"Service/mcp-authz/mcp-authz":                     &svc,
	} {
		o, ok := objs[key]
		if !ok {
			t.Fatalf("no %s", key)
		}
		typed(t, o, into)
	}

	if len(route.Spec.ParentRefs) != 1 || string(route.Spec.ParentRefs[0].Name) != gw.Name ||
		route.Spec.ParentRefs[0].SectionName == nil || string(*route.Spec.ParentRefs[0].SectionName) != string(gw.Spec.Listeners[0].Name) {
		t.Errorf("HTTPRoute parentRefs %+v do not name Gateway %s's listener", route.Spec.ParentRefs, gw.Name)
	}
	if route.Namespace != gw.Namespace {
		t.Errorf("HTTPRoute in %s, Gateway in %s (its listener admits routes of its own namespace)", route.Namespace, gw.Namespace)
	}
	routerPort := int32(-1)
	for _, p := range svc.Spec.Ports {
		if p.Name == "http-router" {
			routerPort = p.Port
		}
	}
	var prefixes []string
	for _, r := range route.Spec.Rules {
		for _, m := range r.Matches {
			if m.Path == nil || m.Path.Type == nil || *m.Path.Type != gatewayv1.PathMatchPathPrefix || len(m.Headers) > 0 || m.Method != nil {
				t.Errorf("match %+v: want a plain PathPrefix", m)
				continue
			}
			prefixes = append(prefixes, *m.Path.Value)
		}
		if len(r.BackendRefs) != 1 {
			t.Errorf("rule %+v: want one backend", r.Matches)
			continue
		}
		b := r.BackendRefs[0]
		if string(b.Name) != svc.Name || b.Namespace == nil || string(*b.Namespace) != svc.Namespace || b.Port == nil || *b.Port != routerPort {
			t.Errorf("backend %+v, want Service %s/%s port %d", b.BackendObjectReference, svc.Namespace, svc.Name, routerPort)
		}
	}
	slices.Sort(prefixes)
	if want := []string{"/.well-known/oauth-protected-resource", "/mcp"}; !slices.Equal(prefixes, want) {
		t.Errorf("routed prefixes %v, want %v", prefixes, want)
	}

	if grant.Namespace != svc.Namespace || len(grant.Spec.From) != 1 || len(grant.Spec.To) != 1 ||
		string(grant.Spec.From[0].Kind) != "HTTPRoute" || string(grant.Spec.From[0].Namespace) != route.Namespace ||
		string(grant.Spec.To[0].Kind) != "Service" || grant.Spec.To[0].Name == nil || string(*grant.Spec.To[0].Name) != svc.Name {
		t.Errorf("ReferenceGrant %+v does not admit exactly HTTPRoutes of %s to Service %s", grant.Spec, route.Namespace, svc.Name)
	}

	if ap.Spec.Action != "CUSTOM" || len(ap.Spec.TargetRefs) != 1 || ap.Spec.TargetRefs[0].Kind != "Gateway" || ap.Spec.TargetRefs[0].Name != gw.Name {
		t.Errorf("AuthorizationPolicy %+v: want CUSTOM on Gateway %s", ap.Spec, gw.Name)
	}
	if len(ap.Spec.Rules) != 1 || len(ap.Spec.Rules[0].To) != 1 || len(ap.Spec.Rules[0].To[0].Operation.Paths) != 0 {
		t.Fatalf("AuthorizationPolicy rules %+v: want one rule exempting only the metadata", ap.Spec.Rules)
	}
	exempt := ap.Spec.Rules[0].To[0].Operation.NotPaths
	for _, path := range []string{"/mcp", "/mcp/x", "/", "/admin", "/.well-known/openid-configuration"} {
		if istioPathMatches(exempt, path) {
			t.Errorf("%s is exempt from the check", path)
		}
	}
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		if !istioPathMatches(exempt, path) {
			t.Errorf("%s is checked: MCP clients fetch it without a token", path)
		}
	}
}

// istioPathMatches matches as Istio's AuthorizationPolicy paths do: exact,
// prefix with a trailing *, suffix with a leading *.
func istioPathMatches(patterns []string, path string) bool {
	for _, p := range patterns {
		switch {
		case p == "*":
			return true
		case strings.HasSuffix(p, "*") && strings.HasPrefix(path, strings.TrimSuffix(p, "*")):
			return true
		case strings.HasPrefix(p, "*") && strings.HasSuffix(path, strings.TrimPrefix(p, "*")):
			return true
		case p == path:
			return true
		}
	}
	return false
}
