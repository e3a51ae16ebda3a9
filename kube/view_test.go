package kube

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	authzv1alpha1 "github.com/mcp-authz/mcp-authz/api/authz/v1alpha1"
	mcpv1 "github.com/mcp-authz/mcp-authz/api/v1"
	"github.com/mcp-authz/mcp-authz/registry"
)

// These tests exercise the view on hand-built inputs; kube_test.go runs the
// same logic against a real API server.

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func reg(ns, name, prefix, route string, age int) mcpv1.MCPServerRegistration {
	return mcpv1.MCPServerRegistration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 1,
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second))},
		Spec: mcpv1.MCPServerRegistrationSpec{Prefix: prefix, TargetRef: mcpv1.TargetReference{Name: route}},
	}
}

func rt(ns, name, svc string, hosts ...string) *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	r.Spec.ParentRefs = []gwv1.ParentReference{{Name: "gw"}}
	for _, h := range hosts {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwv1.Hostname(h))
	}
	r.Spec.Rules = []gwv1.HTTPRouteRule{{BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{
		BackendObjectReference: gwv1.BackendObjectReference{Name: gwv1.ObjectName(svc), Port: ptr.To(gwv1.PortNumber(80))}}}}}}
	// Accepted by its Gateway, as a Gateway controller would write it.
	r.Status.Parents = []gwv1.RouteParentStatus{{ParentRef: r.Spec.ParentRefs[0], ControllerName: "istio.io/gateway-controller",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted"}}}}
	return r
}

func svc(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
}

func newInputs(regs []mcpv1.MCPServerRegistration, routes []*gwv1.HTTPRoute, svcs []*corev1.Service) *inputs {
	in := &inputs{registrations: regs,
		routes:   map[types.NamespacedName]*gwv1.HTTPRoute{},
		services: map[types.NamespacedName]*corev1.Service{}}
	for _, r := range routes {
		in.routes[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}] = r
	}
	for _, s := range svcs {
		in.services[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	return in
}

func newSource(t testing.TB, c Config) *Source {
	s, err := New(c, Deps{RestConfig: &rest.Config{}, Registry: &registry.Registry{}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestComputeConflicts(t *testing.T) {
	routes := []*gwv1.HTTPRoute{rt("a", "r", "s", "one.example.com"), rt("b", "r", "s", "one.example.com")}
	svcs := []*corev1.Service{svc("a", "s"), svc("b", "s")}
	tests := []struct {
		name   string
		cfg    Config
		regs   []mcpv1.MCPServerRegistration
		ready  []string          // registrations in the registry, by name
		reason map[string]string // the others' Ready reason
	}{
		{
			name:  "same prefix: the older wins whatever the names",
			regs:  []mcpv1.MCPServerRegistration{reg("b", "newer", "kube_", "r", 2), reg("a", "older", "kube_", "r", 1)},
			ready: []string{"a/older"}, reason: map[string]string{"b/newer": ReasonPrefixConflict},
		},
		{
			name:  "same creation time: namespace/name breaks the tie",
			regs:  []mcpv1.MCPServerRegistration{reg("b", "x", "kube_", "r", 1), reg("a", "x", "kube_", "r", 1)},
			ready: []string{"a/x"}, reason: map[string]string{"b/x": ReasonPrefixConflict},
		},
		{
			name:  "nested prefixes coexist (the longest wins)",
			regs:  []mcpv1.MCPServerRegistration{reg("a", "k", "kube_", "r", 1), reg("b", "kx", "kube_x_", "r", 2)},
			ready: []string{"a/k", "b/kx"},
		},
		{
			name:  "an empty prefix beside others",
			regs:  []mcpv1.MCPServerRegistration{reg("a", "all", "", "r", 1), reg("b", "k", "kube_", "r", 2)},
			ready: []string{"a/all", "b/k"},
		},
		{
			name:  "two empty prefixes: the older wins",
			regs:  []mcpv1.MCPServerRegistration{reg("a", "all", "", "r", 1), reg("b", "all2", "", "r", 2)},
			ready: []string{"a/all"}, reason: map[string]string{"b/all2": ReasonPrefixConflict},
		},
		{
			name:  "distinct prefixes coexist",
			regs:  []mcpv1.MCPServerRegistration{reg("a", "k", "kube_", "r", 1), reg("b", "g", "git_", "r", 2)},
			ready: []string{"a/k", "b/g"},
		},
		{
			name:  "hostname conflict when attaching by host",
			cfg:   Config{AttachHostnames: true},
			regs:  []mcpv1.MCPServerRegistration{reg("a", "k", "kube_", "r", 1), reg("b", "g", "git_", "r", 2)},
			ready: []string{"a/k"}, reason: map[string]string{"b/g": ReasonHostnameConflict},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newSource(t, tt.cfg).compute(newInputs(tt.regs, routes, svcs))
			var got []string
			for _, s := range v.servers {
				got = append(got, s.Name)
			}
			if diff := cmp.Diff(tt.ready, got); diff != "" {
				t.Errorf("servers (-want +got):\n%s", diff)
			}
			if _, err := registry.NewSnapshot(v.servers); err != nil {
				t.Errorf("the view's servers do not make a snapshot: %v", err)
			}
			for name, reason := range tt.reason {
				ns, n, _ := strings.Cut(name, "/")
				c := v.regStatus[types.NamespacedName{Namespace: ns, Name: n}]
				if c.Status != metav1.ConditionFalse || c.Reason != reason || c.ObservedGeneration != 1 {
					t.Errorf("%s: condition %+v, want False/%s at generation 1", name, c, reason)
				}
			}
		})
	}
}

func TestComputeInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*mcpv1.MCPServerRegistration, *gwv1.HTTPRoute, *corev1.Service)
		reason string
	}{
		{name: "a backendRef that is not a Service", reason: ReasonInvalidBackendRef,
			mutate: func(_ *mcpv1.MCPServerRegistration, r *gwv1.HTTPRoute, _ *corev1.Service) {
				r.Spec.Rules[0].BackendRefs[0].Kind = ptr.To(gwv1.Kind("ServiceImport"))
			}},
		{name: "a backendRef without port", reason: ReasonInvalidBackendRef,
			mutate: func(_ *mcpv1.MCPServerRegistration, r *gwv1.HTTPRoute, _ *corev1.Service) {
				r.Spec.Rules[0].BackendRefs[0].Port = nil
			}},
		{name: "a target that is not an HTTPRoute", reason: ReasonInvalid,
			mutate: func(m *mcpv1.MCPServerRegistration, _ *gwv1.HTTPRoute, _ *corev1.Service) {
				m.Spec.TargetRef.Kind = "GRPCRoute"
			}},
		{name: "an ExternalName Service, not allowed by default", reason: ReasonExternalName,
			mutate: func(_ *mcpv1.MCPServerRegistration, _ *gwv1.HTTPRoute, s *corev1.Service) {
				s.Spec.Type, s.Spec.ExternalName = corev1.ServiceTypeExternalName, ""
			}},
		{name: "a backendRef to another namespace without a ReferenceGrant", reason: ReasonRefNotPermitted,
			mutate: func(_ *mcpv1.MCPServerRegistration, r *gwv1.HTTPRoute, _ *corev1.Service) {
				r.Spec.Rules[0].BackendRefs[0].Namespace = ptr.To(gwv1.Namespace("elsewhere"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, r, s := reg("a", "m", "m_", "r", 1), rt("a", "r", "s"), svc("a", "s")
			tt.mutate(&m, r, s)
			v := newSource(t, Config{}).compute(newInputs([]mcpv1.MCPServerRegistration{m}, []*gwv1.HTTPRoute{r}, []*corev1.Service{s}))
			if len(v.servers) != 0 {
				t.Errorf("servers = %v, want none", v.servers)
			}
			if c := v.regStatus[types.NamespacedName{Namespace: "a", Name: "m"}]; c.Reason != tt.reason || c.Status != metav1.ConditionFalse {
				t.Errorf("condition %+v, want False/%s", c, tt.reason)
			}
		})
	}
}

func TestComputeAudiencePrecedence(t *testing.T) {
	in := newInputs([]mcpv1.MCPServerRegistration{reg("a", "m", "m_", "r", 1)}, []*gwv1.HTTPRoute{rt("a", "r", "s")}, []*corev1.Service{svc("a", "s")})
	pol := func(name, group, kind, target, audience string, age int) authzv1alpha1.MCPAuthPolicy {
		return authzv1alpha1.MCPAuthPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, UID: types.UID(name), Generation: 1,
				CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second))},
			Spec: authzv1alpha1.MCPAuthPolicySpec{
				TargetRef:     authzv1alpha1.PolicyTargetReference{Group: group, Kind: kind, Name: target},
				TokenExchange: &authzv1alpha1.TokenExchange{Audience: audience},
			},
		}
	}
	in.policies = []authzv1alpha1.MCPAuthPolicy{
		pol("gw", gatewayGroup, kindGateway, "gw", "from-gateway", 1),
		pol("route-newer", gatewayGroup, kindHTTPRoute, "r", "from-newer-route", 3),
		pol("route", gatewayGroup, kindHTTPRoute, "r", "from-route", 2),
	}
	s := newSource(t, Config{})
	if got := s.compute(in).servers[0].Audience; got != "from-route" {
		t.Errorf("audience %q, want the older route-level override", got)
	}
	in.policies = append(in.policies, pol("reg", mcpGroup, kindMCPServer, "m", "from-registration", 9))
	if got := s.compute(in).servers[0].Audience; got != "from-registration" {
		t.Errorf("audience %q, want the registration-level override", got)
	}
}

// TestComputeProfile: a policy's tokenExchange.profile names the targeted
// servers' exchange profile; one mcp-authz does not define, or one for a
// server whose registration has a credentialRef, is refused (Accepted False,
// Invalid, naming why) while its rules stay in force and the servers keep
// what they had.
func TestComputeProfile(t *testing.T) {
	keyed := reg("a", "k", "k_", "rk", 2)
	keyed.Spec.CredentialRef = &mcpv1.SecretReference{Name: "api-key"}
	in := newInputs([]mcpv1.MCPServerRegistration{reg("a", "m", "m_", "r", 1), keyed},
		[]*gwv1.HTTPRoute{rt("a", "r", "s"), rt("a", "rk", "sk")}, []*corev1.Service{svc("a", "s"), svc("a", "sk")})
	in.secrets = map[types.NamespacedName]*corev1.Secret{{Namespace: "a", Name: "api-key"}: {
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "api-key", Labels: map[string]string{SecretLabel: "true"}},
		Data:       map[string][]byte{"token": []byte("Bearer key")}}}
	pol := func(kind, target, profile string) authzv1alpha1.MCPAuthPolicy {
		group := gatewayGroup
		if kind == kindMCPServer {
			group = mcpGroup
		}
		return authzv1alpha1.MCPAuthPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p", UID: "p", Generation: 1, CreationTimestamp: metav1.NewTime(t0)},
			Spec: authzv1alpha1.MCPAuthPolicySpec{
				TargetRef:     authzv1alpha1.PolicyTargetReference{Group: group, Kind: kind, Name: target},
				Rules:         []authzv1alpha1.Rule{{Name: "r", CEL: "true"}},
				TokenExchange: &authzv1alpha1.TokenExchange{Profile: profile},
			},
		}
	}
	tests := []struct {
		name     string
		policy   authzv1alpha1.MCPAuthPolicy
		profiles []string
		want     map[string]string // server -> Exchange
		invalid  string            // in the Accepted message; "" Accepted
	}{
		{name: "a defined profile", policy: pol(kindMCPServer, "m", "spoke"), profiles: []string{"hub", "spoke"},
			want: map[string]string{"a/m": "spoke", "a/k": ""}},
		{name: "an undefined profile", policy: pol(kindMCPServer, "m", "spok"), profiles: []string{"hub", "spoke"},
			want: map[string]string{"a/m": "", "a/k": ""}, invalid: `spec.tokenExchange.profile "spok" is not a profile of mcp-authz's exchange.profiles`},
		{name: "no profiles defined", policy: pol(kindMCPServer, "m", "spoke"),
			want: map[string]string{"a/m": "", "a/k": ""}, invalid: "is not a profile"},
		{name: "a server with a credentialRef keeps it", policy: pol(kindGateway, "gw", "spoke"), profiles: []string{"spoke"},
			want: map[string]string{"a/m": "spoke", "a/k": ""}, invalid: "cannot apply to a/k: a registration's credentialRef is its server's upstream credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in.policies = []authzv1alpha1.MCPAuthPolicy{tt.policy}
			v := newSource(t, Config{Profiles: tt.profiles}).compute(in)
			got := map[string]string{}
			for _, s := range v.servers {
				got[s.Name] = s.Exchange
				if s.Name == "a/k" && s.Credential == nil {
					t.Error("a/k lost its credential")
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("servers' profiles (-want +got):\n%s", diff)
			}
			if _, err := registry.NewSnapshot(v.servers); err != nil {
				t.Errorf("the view's servers do not make a snapshot: %v", err)
			}
			st := v.polStatus[types.NamespacedName{Namespace: "a", Name: "p"}]
			switch {
			case tt.invalid == "" && st.accepted.Status != metav1.ConditionTrue:
				t.Errorf("Accepted %+v, want True", st.accepted)
			case tt.invalid != "" && (st.accepted.Status != metav1.ConditionFalse || st.accepted.Reason != ReasonInvalid || !strings.Contains(st.accepted.Message, tt.invalid)):
				t.Errorf("Accepted %+v, want False/Invalid containing %q", st.accepted, tt.invalid)
			}
			if st.enforced.Status != metav1.ConditionTrue || len(v.policies) != 1 {
				t.Errorf("Enforced %+v with %d rules, want the rules in force", st.enforced, len(v.policies))
			}
		})
	}
}

// BenchmarkCompute measures one full rebuild, what every watch event costs.
func BenchmarkCompute(b *testing.B) {
	const n = 500
	var regs []mcpv1.MCPServerRegistration
	var routes []*gwv1.HTTPRoute
	var svcs []*corev1.Service
	for i := range n {
		name := fmt.Sprintf("s%03d", i)
		regs = append(regs, reg("ns", name, name+"_", name, i))
		routes = append(routes, rt("ns", name, name))
		svcs = append(svcs, svc("ns", name))
	}
	in := newInputs(regs, routes, svcs)
	s := newSource(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		if v := s.compute(in); len(v.servers) != n {
			b.Fatalf("%d servers", len(v.servers))
		}
	}
}
