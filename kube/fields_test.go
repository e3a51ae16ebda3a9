package kube_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	authzv1alpha1 "github.com/mcp-authz/mcp-authz/api/authz/v1alpha1"
	mcpv1 "github.com/mcp-authz/mcp-authz/api/v1"
	"github.com/mcp-authz/mcp-authz/kube"
	"github.com/mcp-authz/mcp-authz/registry"
)

// testCA is a self-signed CA certificate in PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// secret returns a Secret with data, labelled for registrations when labelled.
func secret(name string, labelled bool, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}
	if labelled {
		s.Labels = map[string]string{kube.SecretLabel: "true"}
	}
	return s
}

// hostnameBackend is an Istio Hostname backendRef, as Kuadrant's external-server sample uses.
func hostnameBackend(host string, port *int32) gwv1.HTTPBackendRef {
	return gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Group: ptr.To(gwv1.Group("networking.istio.io")), Kind: ptr.To(gwv1.Kind("Hostname")),
		Name: gwv1.ObjectName(host), Port: port,
	}}}
}

// ready waits for reg to be Ready=True and the registry to hold want.
func (f *fixture) ready(reg *mcpv1.MCPServerRegistration, want registry.Server) string {
	f.t.Helper()
	f.server(5*time.Second, want.Name, &want)
	return f.condition(reg, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
}

// refused waits for reg to be Ready=False with reason, absent from the registry,
// and returns the condition's message.
func (f *fixture) refused(reg *mcpv1.MCPServerRegistration, reason string) string {
	f.t.Helper()
	msg := f.condition(reg, kube.ConditionReady, metav1.ConditionFalse, reason)
	f.server(5*time.Second, reg.Namespace+"/"+reg.Name, nil)
	return msg
}

// TestBackends: how each kind of backendRef becomes a URL, or is refused.
func TestBackends(t *testing.T) {
	f := start(t)
	https := service("tls", 8443)
	https.Spec.Ports[0].AppProtocol = ptr.To("https")
	named := service("named", 443)
	named.Spec.Ports[0].Name = "https-web"
	h2c := service("h2c", 8080)
	h2c.Spec.Ports[0].AppProtocol = ptr.To("kubernetes.io/h2c")
	f.create(https, named, h2c, externalService("ext", "kubernetes-mcp.example.com"),
		route("tls", nil, []gwv1.HTTPBackendRef{backend("tls", 8443)}),
		route("named", nil, []gwv1.HTTPBackendRef{backend("named", 443)}),
		route("h2c", nil, []gwv1.HTTPBackendRef{backend("h2c", 8080)}),
		route("ext", nil, []gwv1.HTTPBackendRef{backend("ext", 9999)}),
		route("github", []string{"github.mcp.local"}, []gwv1.HTTPBackendRef{hostnameBackend("api.githubcopilot.com", nil)}),
		route("remote", nil, []gwv1.HTTPBackendRef{hostnameBackend("mcp.example.com", ptr.To(int32(8443)))}),
		route("bad-host", nil, []gwv1.HTTPBackendRef{hostnameBackend("evil.com/x@y", nil)}))
	tests := []struct {
		name, route, url, reason string
	}{
		{name: "appProtocol https", route: "tls", url: "https://tls.%s.svc.cluster.local:8443/mcp"},
		{name: "port named https-…", route: "named", url: "https://named.%s.svc.cluster.local:443/mcp"},
		{name: "appProtocol h2c is cleartext", route: "h2c", url: "http://h2c.%s.svc.cluster.local:8080/mcp"},
		{name: "Istio Hostname, default port 443", route: "github", url: "https://api.githubcopilot.com:443/mcp"},
		{name: "Istio Hostname with a port", route: "remote", url: "https://mcp.example.com:8443/mcp"},
		{name: "Istio Hostname that is no DNS name", route: "bad-host", reason: kube.ReasonInvalidBackendRef},
		{name: "ExternalName refused by default", route: "ext", reason: kube.ReasonExternalName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := registration(tt.route, strings.ReplaceAll(tt.route, "-", "_")+"_", tt.route)
			f.create(reg)
			if tt.reason != "" {
				msg := f.refused(reg, tt.reason)
				if tt.reason == kube.ReasonExternalName && !strings.Contains(msg, "allowExternalNameServices") {
					t.Errorf("message %q does not say how to allow it", msg)
				}
				return
			}
			name := f.ns + "/" + tt.route
			url := strings.ReplaceAll(tt.url, "%s", f.ns)
			msg := f.ready(reg, registry.Server{Name: name, Prefix: tt.route + "_", URL: url, Audience: name, Category: uncategorised})
			if !strings.Contains(msg, url) {
				t.Errorf("Ready message %q does not name the URL %s", msg, url)
			}
		})
	}
}

// TestRegistrationFields: every field of a registration reaches the registry, or
// the registration is refused with a condition that says why.
func TestRegistrationFields(t *testing.T) {
	f := start(t)
	ca := testCA(t)
	f.create(service("s", 8080),
		route("s", nil, []gwv1.HTTPBackendRef{backend("s", 8080)}),
		secret("api-key", true, map[string]string{"token": "Bearer s3cret-1\n", "other": "Bearer other"}),
		secret("unlabelled", false, map[string]string{"token": "Bearer hidden"}),
		secret("bad-value", true, map[string]string{"token": "Bearer a\r\nX-Injected: 1"}),
		secret("ca", true, map[string]string{"ca.crt": string(ca), "custom": string(ca)}),
		secret("not-pem", true, map[string]string{"ca.crt": "not a certificate"}))

	base := func(name string) (*mcpv1.MCPServerRegistration, registry.Server) {
		full := f.ns + "/" + name
		return registration(name, name+"_", "s"), registry.Server{Name: full, Prefix: name + "_", Audience: full,
			URL: "http://s." + f.ns + ".svc.cluster.local:8080/mcp", Category: uncategorised}
	}
	tests := []struct {
		name   string
		mutate func(*mcpv1.MCPServerRegistrationSpec)
		want   func(*registry.Server) // nil: refused
		reason string
		msg    string // in the refusal's message
	}{
		{name: "credentialref", mutate: func(s *mcpv1.MCPServerRegistrationSpec) { s.CredentialRef = &mcpv1.SecretReference{Name: "api-key"} },
			want: func(s *registry.Server) {
				s.Credential = registry.NewCredential("Secret "+f.ns+"/api-key key token", "Bearer s3cret-1")
			}},
		{name: "credentialkey", mutate: func(s *mcpv1.MCPServerRegistrationSpec) {
			s.CredentialRef = &mcpv1.SecretReference{Name: "api-key", Key: "other"}
		}, want: func(s *registry.Server) {
			s.Credential = registry.NewCredential("Secret "+f.ns+"/api-key key other", "Bearer other")
		}},
		{name: "credentialunlabelled", mutate: func(s *mcpv1.MCPServerRegistrationSpec) { s.CredentialRef = &mcpv1.SecretReference{Name: "unlabelled"} },
			reason: kube.ReasonSecretNotFound, msg: "not found with label mcp.kuadrant.io/secret=true"},
		{name: "credentialmissing", mutate: func(s *mcpv1.MCPServerRegistrationSpec) { s.CredentialRef = &mcpv1.SecretReference{Name: "nope"} },
			reason: kube.ReasonSecretNotFound, msg: "credentialRef: Secret"},
		{name: "credentialnokey", mutate: func(s *mcpv1.MCPServerRegistrationSpec) {
			s.CredentialRef = &mcpv1.SecretReference{Name: "api-key", Key: "absent"}
		}, reason: kube.ReasonInvalidSecret, msg: "has no key absent"},
		{name: "credentialinjection", mutate: func(s *mcpv1.MCPServerRegistrationSpec) { s.CredentialRef = &mcpv1.SecretReference{Name: "bad-value"} },
			reason: kube.ReasonInvalidSecret, msg: "is not a valid header value"},
		{name: "cacert", mutate: func(s *mcpv1.MCPServerRegistrationSpec) { s.CACertSecretRef = &mcpv1.CACertSecretReference{Name: "ca"} },
			want: func(s *registry.Server) {
				s.CACert = ca
				s.URL = strings.Replace(s.URL, "http:", "https:", 1) // a CA of its own means TLS, as with Kuadrant
			}},
		{name: "cacertkey", mutate: func(s *mcpv1.MCPServerRegistrationSpec) {
			s.CACertSecretRef = &mcpv1.CACertSecretReference{Name: "ca", Key: "custom"}
		}, want: func(s *registry.Server) { s.CACert, s.URL = ca, strings.Replace(s.URL, "http:", "https:", 1) }},
		{name: "cacertnotpem", mutate: func(s *mcpv1.MCPServerRegistrationSpec) {
			s.CACertSecretRef = &mcpv1.CACertSecretReference{Name: "not-pem"}
		},
			reason: kube.ReasonInvalidSecret, msg: "holds no PEM certificate"},
		{name: "userspecific", mutate: func(s *mcpv1.MCPServerRegistrationSpec) { s.UserSpecificList = mcpv1.UserSpecificListEnabled },
			want: func(s *registry.Server) { s.UserSpecificList = true }},
		{name: "describe", mutate: func(s *mcpv1.MCPServerRegistrationSpec) {
			s.Category, s.Hint, s.Tags = []string{"kubernetes", "ops"}, "Reads the cluster", []string{"read-only", "k8s"}
		}, want: func(s *registry.Server) {
			s.Category, s.Hint, s.Tags = []string{"kubernetes", "ops"}, "Reads the cluster", []string{"read-only", "k8s"}
		}},
		{name: "path", mutate: func(s *mcpv1.MCPServerRegistrationSpec) { s.Path = "/v1/mcp" },
			want: func(s *registry.Server) { s.URL = strings.Replace(s.URL, "/mcp", "/v1/mcp", 1) }},
		{name: "relativepath", mutate: func(s *mcpv1.MCPServerRegistrationSpec) { s.Path = "mcp" },
			reason: kube.ReasonInvalid, msg: `spec.path "mcp" must start with /`},
		{name: "elicitation", mutate: func(s *mcpv1.MCPServerRegistrationSpec) {
			s.TokenURLElicitation = &mcpv1.TokenURLElicitationConfig{URL: "https://vault.example.com/"}
		}, reason: kube.ReasonUnsupported, msg: "tokenURLElicitation is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, want := base(tt.name)
			tt.mutate(&reg.Spec)
			f.create(reg)
			if tt.want == nil {
				msg := f.refused(reg, tt.reason)
				if !strings.Contains(msg, tt.msg) {
					t.Errorf("message %q, want it to contain %q", msg, tt.msg)
				}
				for _, secret := range []string{"s3cret", "hidden", "X-Injected"} {
					if strings.Contains(msg, secret) {
						t.Errorf("message %q carries a Secret's value", msg)
					}
				}
				return
			}
			tt.want(&want)
			msg := f.ready(reg, want)
			if strings.Contains(msg, "s3cret") {
				t.Errorf("message %q carries the credential", msg)
			}
		})
	}

	// A change of the Secret reaches the registry without a restart.
	t.Run("credential rotation", func(t *testing.T) {
		sec := &corev1.Secret{}
		if err := k8s.Get(t.Context(), client.ObjectKey{Namespace: f.ns, Name: "api-key"}, sec); err != nil {
			t.Fatal(err)
		}
		sec.Data["token"] = []byte("Bearer s3cret-2")
		if err := k8s.Update(t.Context(), sec); err != nil {
			t.Fatal(err)
		}
		_, want := base("credentialref")
		want.Credential = registry.NewCredential("Secret "+f.ns+"/api-key key token", "Bearer s3cret-2")
		f.server(5*time.Second, want.Name, &want)

		// Removing the label withdraws the Secret: the server goes, with the reason.
		sec.Labels = nil
		if err := k8s.Update(t.Context(), sec); err != nil {
			t.Fatal(err)
		}
		reg := &mcpv1.MCPServerRegistration{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "credentialref"}}
		f.refused(reg, kube.ReasonSecretNotFound)
	})
}

// TestCRDDefaults: the defaults of Kuadrant's schema are applied by the API server.
func TestCRDDefaults(t *testing.T) {
	f := newFixture(t)
	reg := registration("d", "d_", "r")
	reg.Spec.CredentialRef = &mcpv1.SecretReference{Name: "s"}
	reg.Spec.CACertSecretRef = &mcpv1.CACertSecretReference{Name: "c"}
	f.createUnaccepted(reg)
	s := reg.Spec
	if s.Path != "/mcp" || s.State != mcpv1.ServerStateEnabled || s.UserSpecificList != mcpv1.UserSpecificListDisabled ||
		s.CredentialRef.Key != "token" || s.CACertSecretRef.Key != "ca.crt" || len(s.Category) != 1 || s.Category[0] != "uncategorised" ||
		s.TargetRef.Group != "gateway.networking.k8s.io" || s.TargetRef.Kind != "HTTPRoute" {
		t.Errorf("defaults not applied: %+v", s)
	}
	// userSpecificList Enabled needs a prefix (Kuadrant's rule).
	bad := registration("e", "", "r")
	bad.Spec.UserSpecificList = mcpv1.UserSpecificListEnabled
	bad.Namespace = f.ns
	if err := k8s.Create(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "userSpecificList Enabled needs a prefix") {
		t.Errorf("create with userSpecificList Enabled and no prefix: %v, want refused", err)
	}
}

// TestReferenceGrants: a registration in one namespace and its route or Service in
// another need a ReferenceGrant there; revoking it unregisters the server.
func TestReferenceGrants(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t) // the route's (and the Service's) namespace
	f.startSource(func(c *kube.Config, _ *rest.Config) { c.Namespaces = []string{f.ns, other.ns} })
	other.create(service("s", 8080), route("r", nil, []gwv1.HTTPBackendRef{backend("s", 8080)}))
	reg := registration("x", "x_", "r")
	reg.Spec.TargetRef.Namespace = other.ns
	f.create(reg)
	msg := f.refused(reg, kube.ReasonRefNotPermitted)
	if !strings.Contains(msg, "no ReferenceGrant in namespace "+other.ns) {
		t.Errorf("message %q", msg)
	}

	grant := &gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "mcp"}, Spec: gwv1beta1.ReferenceGrantSpec{
		From: []gwv1beta1.ReferenceGrantFrom{{Group: "mcp.kuadrant.io", Kind: "MCPServerRegistration", Namespace: gwv1.Namespace(f.ns)}},
		To:   []gwv1beta1.ReferenceGrantTo{{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute"}},
	}}
	other.create(grant)
	name := f.ns + "/x"
	f.ready(reg, registry.Server{Name: name, Prefix: "x_", Audience: name, Category: uncategorised,
		URL: "http://s." + other.ns + ".svc.cluster.local:8080/mcp"})

	if err := k8s.Delete(t.Context(), grant); err != nil {
		t.Fatal(err)
	}
	f.refused(reg, kube.ReasonRefNotPermitted)

	// A route's backendRef to a Service in another namespace.
	f.create(route("cross", nil, []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Name: "s", Namespace: ptr.To(gwv1.Namespace(other.ns)), Port: ptr.To(gwv1.PortNumber(8080))}}}}))
	cross := registration("cross", "cross_", "cross")
	f.create(cross)
	f.refused(cross, kube.ReasonRefNotPermitted)
	other.create(&gwv1beta1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Name: "svc"}, Spec: gwv1beta1.ReferenceGrantSpec{
		From: []gwv1beta1.ReferenceGrantFrom{{Group: "gateway.networking.k8s.io", Kind: "HTTPRoute", Namespace: gwv1.Namespace(f.ns)}},
		To:   []gwv1beta1.ReferenceGrantTo{{Group: "", Kind: "Service", Name: ptr.To(gwv1.ObjectName("s"))}},
	}})
	name = f.ns + "/cross"
	f.ready(cross, registry.Server{Name: name, Prefix: "cross_", Audience: name, Category: uncategorised,
		URL: "http://s." + other.ns + ".svc.cluster.local:8080/mcp"})
}

// TestRouteMustBeAccepted: a route no Gateway accepted does not count.
func TestRouteMustBeAccepted(t *testing.T) {
	f := start(t)
	r := route("r", nil, []gwv1.HTTPBackendRef{backend("s", 8080)})
	f.create(service("s", 8080))
	f.createUnaccepted(r)
	reg := registration("x", "x_", "r")
	f.create(reg)
	f.refused(reg, kube.ReasonRouteNotAccepted)

	// Accepted by a parent the route does not name: still not accepted.
	r.Status.Parents = []gwv1.RouteParentStatus{{ParentRef: gwv1.ParentReference{Name: "other-gateway"}, ControllerName: "istio.io/gateway-controller",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()}}}}
	if err := k8s.Status().Update(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	f.refused(reg, kube.ReasonRouteNotAccepted)

	acceptRoute(t, r)
	name := f.ns + "/x"
	f.ready(reg, registry.Server{Name: name, Prefix: "x_", Audience: name, Category: uncategorised,
		URL: "http://s." + f.ns + ".svc.cluster.local:8080/mcp"})
}

// TestNestedAndEmptyPrefixes: nested prefixes and one empty prefix are all Ready,
// and the registry resolves names by the longest prefix.
func TestNestedAndEmptyPrefixes(t *testing.T) {
	f := start(t)
	f.create(service("s", 8080), route("r", nil, []gwv1.HTTPBackendRef{backend("s", 8080)}))
	for _, p := range []struct{ name, prefix string }{{"kube", "kube_"}, {"kube-admin", "kube_admin_"}, {"everything", ""}} {
		reg := registration(p.name, p.prefix, "r")
		f.create(reg)
		f.condition(reg, kube.ConditionReady, metav1.ConditionTrue, kube.ReasonRegistered)
	}
	for in, want := range map[string]string{"kube_admin_drain": "kube-admin", "kube_pods_list": "kube", "echo": "everything"} {
		eventually(t, 5*time.Second, func() string {
			if srv, _, ok := f.reg.Load().Resolve(in); !ok || srv.Name != f.ns+"/"+want {
				return "Resolve(" + in + ") is not " + want
			}
			return ""
		})
	}
}

// TestPolicyAttachment: an MCPAuthPolicy's status follows GEP-713: Accepted and
// Enforced, and an ancestor naming the target and this controller; sectionName
// narrows an HTTPRoute target to a rule.
func TestPolicyAttachment(t *testing.T) {
	f := start(t)
	r := route("r", nil, []gwv1.HTTPBackendRef{backend("s", 8080)})
	r.Spec.Rules[0].Name = ptr.To(gwv1.SectionName("tools"))
	f.create(service("s", 8080), r, registration("m", "m_", "r"))

	pol := policyOn("p", "HTTPRoute", "r", authzv1alpha1.Rule{Name: "all", CEL: "true"})
	pol.Spec.TargetRef.SectionName = ptr.To(gwv1.SectionName("tools"))
	f.create(pol)
	f.condition(pol, kube.ConditionAccepted, metav1.ConditionTrue, kube.ReasonAccepted)
	f.condition(pol, kube.ConditionEnforced, metav1.ConditionTrue, kube.ReasonEnforced)
	if len(pol.Status.Ancestors) != 1 {
		t.Fatalf("ancestors %+v, want one", pol.Status.Ancestors)
	}
	a := pol.Status.Ancestors[0]
	if a.ControllerName != kube.ControllerName || a.AncestorRef.Name != "r" || *a.AncestorRef.Kind != "HTTPRoute" ||
		string(*a.AncestorRef.Namespace) != f.ns || string(*a.AncestorRef.SectionName) != "tools" || len(a.Conditions) != 2 {
		t.Errorf("ancestor %+v", a)
	}

	wrong := policyOn("wrong-section", "HTTPRoute", "r", authzv1alpha1.Rule{Name: "all", CEL: "true"})
	wrong.Spec.TargetRef.SectionName = ptr.To(gwv1.SectionName("nope"))
	f.create(wrong)
	f.condition(wrong, kube.ConditionAccepted, metav1.ConditionFalse, kube.ReasonTargetNotFound)
	f.condition(wrong, kube.ConditionEnforced, metav1.ConditionFalse, kube.ReasonUnknown)

	bad := policyOn("section-on-registration", "MCPServerRegistration", "m", authzv1alpha1.Rule{Name: "all", CEL: "true"})
	bad.Spec.TargetRef.SectionName = ptr.To(gwv1.SectionName("x"))
	bad.Namespace = f.ns
	if err := k8s.Create(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "sectionName needs a Gateway or an HTTPRoute target") {
		t.Errorf("create: %v, want refused", err)
	}
}
