package kube_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	authzv1alpha1 "github.com/mcp-authz/mcp-authz/api/authz/v1alpha1"
	mcpv1 "github.com/mcp-authz/mcp-authz/api/v1"
	"github.com/mcp-authz/mcp-authz/kube"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// sink is a PolicySink that compiles each set as the real consumer would and
// keeps the last one that compiled.
type sink struct {
	mu   sync.Mutex
	last []policy.Policy
	sets int
}

func (s *sink) SetPolicies(ps []policy.Policy) error {
	if _, err := policy.Compile(policy.Config{Policies: ps}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.sets = slices.Clone(ps), s.sets+1
	return nil
}

func (s *sink) policies() []policy.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.last)
}

// fixture is one test's namespace and a running Source watching it.
type fixture struct {
	t    *testing.T
	ns   string
	reg  *registry.Registry
	sink *sink
	src  *kube.Source
}

// start creates a fresh namespace and runs a Source on it until the test ends.
func start(t *testing.T, mutate ...func(*kube.Config, *rest.Config)) *fixture {
	t.Helper()
	f := newFixture(t)
	f.startSource(mutate...)
	return f
}

// newFixture creates a fresh namespace, deleted when the test ends.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	needEnv(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kube-test-"}}
	if err := k8s.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	return &fixture{t: t, ns: ns.Name, reg: &registry.Registry{}, sink: &sink{}}
}

// startSource runs a Source watching the fixture's namespace until the test ends.
func (f *fixture) startSource(mutate ...func(*kube.Config, *rest.Config)) {
	f.t.Helper()
	cfg := kube.Config{
		Namespaces:              []string{f.ns},
		LeaderElectionNamespace: f.ns,
		RetryInterval:           100 * time.Millisecond,
	}
	rc := rest.CopyConfig(restConfig)
	for _, m := range mutate {
		m(&cfg, rc)
	}
	src, err := kube.New(cfg, kube.Deps{RestConfig: rc, Registry: f.reg, Policies: f.sink, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.t.Fatal(err)
	}
	f.src = src
	f.run(f.t, src)
}

// run runs src until the test ends.
func (f *fixture) run(t *testing.T, src *kube.Source) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
}

// create creates objs in the fixture's namespace (unless they name one). An
// HTTPRoute is then accepted by its parent Gateways, as a Gateway controller
// would do (none runs in envtest): see createUnaccepted for one that is not.
func (f *fixture) create(objs ...client.Object) {
	f.t.Helper()
	f.createUnaccepted(objs...)
	for _, o := range objs {
		if r, ok := o.(*gwv1.HTTPRoute); ok {
			acceptRoute(f.t, r)
		}
	}
}

// createUnaccepted creates objs as they are.
func (f *fixture) createUnaccepted(objs ...client.Object) {
	f.t.Helper()
	for _, o := range objs {
		if o.GetNamespace() == "" {
			o.SetNamespace(f.ns)
		}
		if err := k8s.Create(f.t.Context(), o); err != nil {
			f.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// uncategorised is the category the CRD defaults to.
var uncategorised = []string{"uncategorised"}

// acceptRoute writes the status a Gateway controller writes when it accepts a
// route: one status.parents entry per parentRef with Accepted=True.
func acceptRoute(t *testing.T, r *gwv1.HTTPRoute) {
	t.Helper()
	r.Status.Parents = nil
	for _, p := range r.Spec.ParentRefs {
		r.Status.Parents = append(r.Status.Parents, gwv1.RouteParentStatus{
			ParentRef:      p,
			ControllerName: "istio.io/gateway-controller",
			Conditions: []metav1.Condition{{
				Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted",
				LastTransitionTime: metav1.Now(), ObservedGeneration: r.Generation,
			}},
		})
	}
	if err := k8s.Status().Update(t.Context(), r); err != nil {
		t.Fatalf("accept HTTPRoute %s: %v", r.Name, err)
	}
}

// eventually polls cond every 10 ms until it returns "" or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// server waits for the registry to hold name with want (nil: to not hold it).
func (f *fixture) server(timeout time.Duration, name string, want *registry.Server) {
	f.t.Helper()
	eventually(f.t, timeout, func() string {
		got, ok := f.reg.Load().Server(name)
		switch {
		case want == nil && ok:
			return fmt.Sprintf("registry still holds %s", name)
		case want == nil:
			return ""
		case !ok:
			return fmt.Sprintf("registry does not hold %s; it holds %v", name, f.reg.Load().Servers())
		}
		return cmp.Diff(*want, *got)
	})
}

// condition waits for obj's condition typ to have status and reason, at the
// object's current generation, and returns its message.
func (f *fixture) condition(obj client.Object, typ string, status metav1.ConditionStatus, reason string) string {
	f.t.Helper()
	var msg string
	eventually(f.t, 10*time.Second, func() string {
		if err := k8s.Get(f.t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err.Error()
		}
		var conds []metav1.Condition
		switch o := obj.(type) {
		case *mcpv1.MCPServerRegistration:
			conds = o.Status.Conditions
		case *authzv1alpha1.MCPAuthPolicy:
			conds = o.Status.Conditions
		}
		c := meta.FindStatusCondition(conds, typ)
		switch {
		case c == nil:
			return fmt.Sprintf("%s has no %s condition", obj.GetName(), typ)
		case c.Status != status || c.Reason != reason || c.ObservedGeneration != obj.GetGeneration():
			return fmt.Sprintf("%s %s = %s/%s (generation %d, %q), want %s/%s (generation %d)",
				obj.GetName(), typ, c.Status, c.Reason, c.ObservedGeneration, c.Message, status, reason, obj.GetGeneration())
		}
		msg = c.Message
		return ""
	})
	return msg
}

func service(name string, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: port}},
		},
	}
}

func externalService(name, host string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: host,
			Ports:        []corev1.ServicePort{{Name: "http", Port: 9999}},
		},
	}
}

func backend(svc string, port int32) gwv1.HTTPBackendRef {
	return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Name: gwv1.ObjectName(svc), Port: ptr.To(port),
	}}}
}

// route returns an HTTPRoute attached to gateway-system/mcp-gateway, one rule
// per backendRef list given.
func route(name string, hostnames []string, rules ...[]gwv1.HTTPBackendRef) *gwv1.HTTPRoute {
	r := &gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name}}
	r.Spec.ParentRefs = []gwv1.ParentReference{{Name: "mcp-gateway", Namespace: ptr.To(gwv1.Namespace("gateway-system"))}}
	for _, h := range hostnames {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwv1.Hostname(h))
	}
	for _, refs := range rules {
		r.Spec.Rules = append(r.Spec.Rules, gwv1.HTTPRouteRule{BackendRefs: refs})
	}
	return r
}

func registration(name, prefix, routeName string) *mcpv1.MCPServerRegistration {
	return &mcpv1.MCPServerRegistration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: mcpv1.MCPServerRegistrationSpec{
			Prefix:    prefix,
			TargetRef: mcpv1.TargetReference{Name: routeName},
		},
	}
}

func TestRegistrationBecomesServer(t *testing.T) {
	f := start(t)
	f.create(service("kube-mcp", 8080), route("kube-mcp", nil, []gwv1.HTTPBackendRef{backend("kube-mcp", 8080)}))
	changed := f.reg.Changed()
	reg := registration("kubernetes-mcp-server", "kube_", "kube-mcp")
	f.create(reg)

	name := f.ns + "/kubernetes-mcp-server"
	want := &registry.Server{Category: uncategorised,
		Name:     name,
		Prefix:   "kube_",
		URL:      "http://kube-mcp." + f.ns + ".svc.cluster.local:8080/mcp",
		Audience: name,
	}
	// The bound: the entry appears within a second of the create.
	f.server(time.Second, name, want)
	select {
	case <-changed:
	default:
		t.Error("Changed() did not fire on the new snapshot")
	}
	if !f.src.Ready() {
		t.Error("Ready() = false after a snapshot was built")
	}
	msg := f.condition(reg, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
	if !strings.Contains(msg, name) {
		t.Errorf("Ready message %q does not name %s", msg, name)
	}
	if reg.Spec.Path != "/mcp" {
		t.Errorf("spec.path defaulted to %q, want /mcp", reg.Spec.Path)
	}

	// Changing the route's backend re-resolves the URL.
	f.create(service("kube-mcp-v2", 9090))
	var rt gwv1.HTTPRoute
	if err := k8s.Get(t.Context(), types.NamespacedName{Namespace: f.ns, Name: "kube-mcp"}, &rt); err != nil {
		t.Fatal(err)
	}
	rt.Spec.Rules[0].BackendRefs = []gwv1.HTTPBackendRef{backend("kube-mcp-v2", 9090)}
	if err := k8s.Update(t.Context(), &rt); err != nil {
		t.Fatal(err)
	}
	want.URL = "http://kube-mcp-v2." + f.ns + ".svc.cluster.local:9090/mcp"
	f.server(5*time.Second, name, want)

	// Deleting the registration removes its tools and fires Changed().
	changed = f.reg.Changed()
	if err := k8s.Delete(t.Context(), reg); err != nil {
		t.Fatal(err)
	}
	f.server(5*time.Second, name, nil)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Error("Changed() did not fire on deletion")
	}
}

func TestExternalNameAndPath(t *testing.T) {
	f := start(t, func(c *kube.Config, _ *rest.Config) { c.AllowExternalNameServices = true })
	f.create(externalService("ext", "kubernetes-mcp.example.com"),
		route("ext", []string{"kubernetes-mcp.example.com"}, []gwv1.HTTPBackendRef{backend("ext", 9999)}))
	reg := registration("ext", "ext_", "ext")
	reg.Spec.Path = "/v1/mcp"
	f.create(reg)
	name := f.ns + "/ext"
	f.server(5*time.Second, name, &registry.Server{Category: uncategorised,
		Name: name, Prefix: "ext_", Audience: name,
		URL: "http://kubernetes-mcp.example.com:9999/v1/mcp",
	})
	f.condition(reg, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
}

func TestThroughGateway(t *testing.T) {
	f := start(t, func(c *kube.Config, _ *rest.Config) {
		c.GatewayPort = 8443
		c.GatewayScheme = "https"
		c.AttachHostnames = true
	})
	f.create(service("svc", 80),
		route("with-host", []string{"*.example.com", "tools.example.com"}, []gwv1.HTTPBackendRef{backend("svc", 80)}),
		route("no-host", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}))
	withHost := registration("with-host", "a_", "with-host")
	noHost := registration("no-host", "b_", "no-host")
	f.create(withHost, noHost)
	name := f.ns + "/with-host"
	f.server(5*time.Second, name, &registry.Server{Category: uncategorised,
		Name: name, Prefix: "a_", Audience: name, Hostname: "tools.example.com",
		URL: "https://tools.example.com:8443/mcp",
	})
	f.condition(noHost, kube.ConditionReady, metav1.ConditionFalse, kube.ReasonNoHostname)
}

func TestNotReady(t *testing.T) {
	f := start(t)
	f.create(service("svc", 80), service("other", 80),
		route("empty", nil, []gwv1.HTTPBackendRef{}),
		route("two", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}, []gwv1.HTTPBackendRef{backend("other", 80)}),
		route("dangling", nil, []gwv1.HTTPBackendRef{backend("missing", 80)}),
		route("wrong-port", nil, []gwv1.HTTPBackendRef{backend("svc", 81)}),
	)
	tests := []struct {
		name, route, reason string
	}{
		{name: "route-missing", route: "nope", reason: kube.ReasonRouteNotFound},
		{name: "no-backend", route: "empty", reason: kube.ReasonNoBackendRef},
		{name: "two-backends", route: "two", reason: kube.ReasonMultipleBackendRefs},
		{name: "service-missing", route: "dangling", reason: kube.ReasonBackendNotFound},
		{name: "port-missing", route: "wrong-port", reason: kube.ReasonBackendNotFound},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := registration(tt.name, fmt.Sprintf("p%d_", i), tt.route)
			f.create(reg)
			f.condition(reg, kube.ConditionReady, metav1.ConditionFalse, tt.reason)
			if _, ok := f.reg.Load().Server(f.ns + "/" + tt.name); ok {
				t.Errorf("registry holds %s", tt.name)
			}
		})
	}

	// A disabled registration leaves the registry too.
	f.create(route("ok", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}))
	reg := registration("disabled", "d_", "ok")
	reg.Spec.State = mcpv1.ServerStateDisabled
	f.create(reg)
	f.condition(reg, kube.ConditionReady, metav1.ConditionFalse, kube.ReasonDisabled)

	// Creating the missing route makes route-missing Ready.
	missing := &mcpv1.MCPServerRegistration{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "route-missing"}}
	f.create(route("nope", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}))
	f.condition(missing, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
}

func TestPrefixConflict(t *testing.T) {
	f := start(t)
	f.create(service("svc", 80), route("r", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}))
	// The older registration sorts after the newer one by name, so only the
	// creation time can make it win.
	older := registration("z-older", "kube_", "r")
	f.create(older)
	f.server(5*time.Second, f.ns+"/z-older", &registry.Server{Category: uncategorised,
		Name: f.ns + "/z-older", Prefix: "kube_", Audience: f.ns + "/z-older",
		URL: "http://svc." + f.ns + ".svc.cluster.local:80/mcp",
	})
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
	newer := registration("a-newer", "kube_", "r")
	nested := registration("b-nested", "kube_x_", "r") // nested in "kube_": fine, the longest wins
	f.create(newer, nested)

	msg := f.condition(newer, kube.ConditionReady, metav1.ConditionFalse, kube.ReasonPrefixConflict)
	if !strings.Contains(msg, f.ns+"/z-older") {
		t.Errorf("conflict message %q does not name the older registration", msg)
	}
	f.condition(nested, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
	f.condition(older, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
	if got := f.reg.Load().Servers(); len(got) != 2 || got[0].Name != f.ns+"/b-nested" || got[1].Name != f.ns+"/z-older" {
		t.Errorf("registry holds %v, want the older and the nested registration", got)
	}

	// Once the older one is gone, the next oldest takes the prefix.
	if err := k8s.Delete(t.Context(), older); err != nil {
		t.Fatal(err)
	}
	f.condition(newer, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
	f.condition(nested, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
}

func TestCRDValidation(t *testing.T) {
	f := start(t)
	tests := []struct {
		name   string
		prefix string
	}{
		{name: "upper-case", prefix: "Kube_"},
		{name: "dash", prefix: "kube-"},
		{name: "leading-underscore", prefix: "_kube"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := registration(tt.name, tt.prefix, "r")
			reg.Namespace = f.ns
			err := k8s.Create(t.Context(), reg)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create with prefix %q: %v, want Invalid", tt.prefix, err)
			}
		})
	}

	reg := registration("immutable", "kube_", "r")
	f.create(reg)
	reg.Spec.Prefix = "k8s_"
	if err := k8s.Update(t.Context(), reg); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "immutable") {
		t.Errorf("changing the prefix: %v, want Invalid: immutable", err)
	}

	pol := &authzv1alpha1.MCPAuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "both", Namespace: f.ns},
		Spec: authzv1alpha1.MCPAuthPolicySpec{
			TargetRef: authzv1alpha1.PolicyTargetReference{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute", Name: "r"},
			Rules:     []authzv1alpha1.Rule{{Name: "x", CEL: "true", Rego: "package mcp.authz"}},
		},
	}
	if err := k8s.Create(t.Context(), pol); !apierrors.IsInvalid(err) {
		t.Errorf("policy with both cel and rego: %v, want Invalid", err)
	}
	pol.Spec.Rules = []authzv1alpha1.Rule{{Name: "x", CEL: "true"}}
	pol.Spec.TargetRef.Group = "mcp.kuadrant.io"
	if err := k8s.Create(t.Context(), pol); !apierrors.IsInvalid(err) {
		t.Errorf("policy targeting an mcp.kuadrant.io HTTPRoute: %v, want Invalid", err)
	}
}

func policyOn(name, kind, target string, rules ...authzv1alpha1.Rule) *authzv1alpha1.MCPAuthPolicy {
	group := "gateway.networking.k8s.io"
	if kind == "MCPServerRegistration" {
		group = "mcp.kuadrant.io"
	}
	return &authzv1alpha1.MCPAuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: authzv1alpha1.MCPAuthPolicySpec{
			TargetRef: authzv1alpha1.PolicyTargetReference{Group: group, Kind: kind, Name: target},
			Rules:     rules,
		},
	}
}

func TestPolicies(t *testing.T) {
	f := start(t)
	f.create(service("svc", 80),
		route("r1", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}),
		route("r2", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}),
		registration("one", "one_", "r1"), registration("two", "two_", "r2"))
	one, two := f.ns+"/one", f.ns+"/two"

	gw := policyOn("gw", "Gateway", "mcp-gateway", authzv1alpha1.Rule{Name: "signed-in", CEL: `has(jwt.sub)`})
	gw.Namespace = "gateway-system"
	rt := policyOn("route", "HTTPRoute", "r1", authzv1alpha1.Rule{Name: "roles", CEL: `mcp.tool.name in token.roles`})
	rt.Spec.TokenExchange = &authzv1alpha1.TokenExchange{Audience: "kubernetes-mcp", Scopes: []string{"openid"}}
	byReg := policyOn("reg", "MCPServerRegistration", "two", authzv1alpha1.Rule{Name: "rego",
		Rego: "package mcp.authz\n\nallow if input.mcp.tool.name == \"ping\"\n"})
	byReg.Spec.TokenExchange = &authzv1alpha1.TokenExchange{Audience: "two-audience"}
	nothing := policyOn("nothing", "HTTPRoute", "no-such-route", authzv1alpha1.Rule{Name: "x", CEL: "true"})
	f.create(rt, byReg, nothing)
	if err := k8s.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "gateway-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The gateway's namespace is outside this Source's watch: a policy there is
	// not seen. Watch it too by a second Source below.
	f.condition(rt, kube.ConditionAccepted, metav1.ConditionTrue, kube.ReasonAccepted)
	f.condition(byReg, kube.ConditionAccepted, metav1.ConditionTrue, kube.ReasonAccepted)
	f.condition(nothing, kube.ConditionAccepted, metav1.ConditionFalse, kube.ReasonTargetNotFound)

	want := []policy.Policy{
		{Name: f.ns + "/reg/rego", Servers: []string{two}, Rego: byReg.Spec.Rules[0].Rego},
		{Name: f.ns + "/route/roles", Servers: []string{one}, CEL: rt.Spec.Rules[0].CEL},
	}
	sortByName := func(ps []policy.Policy) []policy.Policy {
		slices.SortFunc(ps, func(a, b policy.Policy) int { return strings.Compare(a.Name, b.Name) })
		return ps
	}
	eventually(t, 5*time.Second, func() string { return cmp.Diff(want, sortByName(f.sink.policies())) })
	f.server(5*time.Second, one, &registry.Server{Category: uncategorised, Name: one, Prefix: "one_", Audience: "kubernetes-mcp", Scopes: []string{"openid"},
		URL: "http://svc." + f.ns + ".svc.cluster.local:80/mcp"})
	f.server(5*time.Second, two, &registry.Server{Category: uncategorised, Name: two, Prefix: "two_", Audience: "two-audience",
		URL: "http://svc." + f.ns + ".svc.cluster.local:80/mcp"})

	// A new generation that does not compile: the status says why and the
	// previous rules stay in force.
	if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(rt), rt); err != nil {
		t.Fatal(err)
	}
	rt.Spec.Rules[0].CEL = `mcp.tool.name in (`
	if err := k8s.Update(t.Context(), rt); err != nil {
		t.Fatal(err)
	}
	msg := f.condition(rt, kube.ConditionAccepted, metav1.ConditionFalse, kube.ReasonInvalid)
	if !strings.Contains(msg, "roles") || !strings.Contains(msg, "stays in force") {
		t.Errorf("Invalid message %q names neither the rule nor what stays", msg)
	}
	if diff := cmp.Diff(want, sortByName(f.sink.policies())); diff != "" {
		t.Errorf("policies after a bad update (-want +got):\n%s", diff)
	}

	// A policy that never compiled is not in force at all.
	bad := policyOn("bad", "HTTPRoute", "r2", authzv1alpha1.Rule{Name: "broken", Rego: "package mcp.authz\n\nallow if {"})
	f.create(bad)
	f.condition(bad, kube.ConditionAccepted, metav1.ConditionFalse, kube.ReasonInvalid)
	if diff := cmp.Diff(want, sortByName(f.sink.policies())); diff != "" {
		t.Errorf("policies after a bad policy (-want +got):\n%s", diff)
	}

	// A gateway-level policy applies to every server whose route attaches to the
	// gateway, beside the route-level ones.
	g := start(t, func(c *kube.Config, _ *rest.Config) { c.Namespaces = append(c.Namespaces, "gateway-system") })
	g.create(service("svc", 80), route("r", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}), registration("s", "s_", "r"))
	if err := k8s.Create(t.Context(), gw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), gw) })
	eventually(t, 5*time.Second, func() string {
		return cmp.Diff([]policy.Policy{{Name: "gateway-system/gw/signed-in", Servers: []string{g.ns + "/s"}, CEL: `has(jwt.sub)`}},
			g.sink.policies())
	})
}

func TestEveryReplicaBuilds(t *testing.T) {
	f := start(t)
	second := &registry.Registry{}
	src, err := kube.New(kube.Config{
		Namespaces: []string{f.ns}, LeaderElectionNamespace: f.ns,
	}, kube.Deps{RestConfig: restConfig, Registry: second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, src)
	f.create(service("svc", 80), route("r", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}), registration("s", "s_", "r"))
	name := f.ns + "/s"
	want := &registry.Server{Category: uncategorised, Name: name, Prefix: "s_", Audience: name, URL: "http://svc." + f.ns + ".svc.cluster.local:80/mcp"}
	f.server(5*time.Second, name, want)
	eventually(t, 5*time.Second, func() string {
		got, ok := second.Load().Server(name)
		if !ok {
			return "the second replica has no snapshot"
		}
		return cmp.Diff(want, got)
	})
}

// TestUnreachableAtStart points a Source at a loopback port where nothing
// listens yet: the registry keeps the snapshot it was given (as from a file)
// until a TCP relay to the API server opens on that port.
func TestUnreachableAtStart(t *testing.T) {
	needEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	f := start(t, func(c *kube.Config, rc *rest.Config) {
		rc.Host = "https://" + addr
	})
	fileSnap, err := registry.NewSnapshot([]registry.Server{{Name: "file/server", Prefix: "f_", URL: "http://127.0.0.1:1/mcp"}})
	if err != nil {
		t.Fatal(err)
	}
	f.reg.Store(fileSnap)
	f.create(service("svc", 80), route("r", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}), registration("s", "s_", "r"))

	time.Sleep(500 * time.Millisecond)
	if f.reg.Load() != fileSnap || f.src.Ready() {
		t.Fatal("the snapshot changed while the API server was unreachable")
	}

	api, err := url.Parse(restConfig.Host)
	if err != nil {
		t.Fatal(err)
	}
	relay(t, addr, api.Host)
	name := f.ns + "/s"
	// controller-runtime retries a missing informer every 10 s.
	f.server(60*time.Second, name, &registry.Server{Category: uncategorised, Name: name, Prefix: "s_", Audience: name,
		URL: "http://svc." + f.ns + ".svc.cluster.local:80/mcp"})
	if _, ok := f.reg.Load().Server("file/server"); ok {
		t.Error("the file snapshot's server outlived the first cluster snapshot")
	}
}

// relay listens on addr and copies every connection to and from target until
// the test ends.
func relay(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("relay accept: %v", err)
				}
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				t.Errorf("relay dial: %v", err)
				_ = in.Close()
				return
			}
			track(in)
			track(out)
			wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
			wg.Go(func() { _, _ = io.Copy(in, out); _ = in.Close() })
		}
	})
}

// TestOnlyTheLeaderWritesStatus holds the status writer's Lease for someone
// else: the Source still builds its snapshot but writes no status until the
// Lease is released to it.
func TestOnlyTheLeaderWritesStatus(t *testing.T) {
	f := newFixture(t)
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "held-elsewhere", Namespace: f.ns},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To("another-replica"),
			LeaseDurationSeconds: ptr.To(int32(3600)),
			AcquireTime:          &now,
			RenewTime:            &now,
		},
	}
	if err := k8s.Create(t.Context(), lease); err != nil {
		t.Fatal(err)
	}
	f.startSource(func(c *kube.Config, _ *rest.Config) { c.LeaderElectionID = "held-elsewhere" })
	f.create(service("svc", 80), route("r", nil, []gwv1.HTTPBackendRef{backend("svc", 80)}))
	reg := registration("s", "s_", "r")
	f.create(reg)
	name := f.ns + "/s"
	f.server(5*time.Second, name, &registry.Server{Category: uncategorised, Name: name, Prefix: "s_", Audience: name,
		URL: "http://svc." + f.ns + ".svc.cluster.local:80/mcp"})
	time.Sleep(2 * time.Second)
	if err := k8s.Get(t.Context(), client.ObjectKeyFromObject(reg), reg); err != nil {
		t.Fatal(err)
	}
	if len(reg.Status.Conditions) != 0 {
		t.Fatalf("a replica without the Lease wrote status: %+v", reg.Status.Conditions)
	}

	if err := k8s.Delete(t.Context(), lease); err != nil {
		t.Fatal(err)
	}
	f.condition(reg, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
}
