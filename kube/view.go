package kube

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	authzv1alpha1 "github.com/mcp-authz/mcp-authz/api/authz/v1alpha1"
	mcpv1 "github.com/mcp-authz/mcp-authz/api/v1"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// Condition types and reasons written to the resources' status.
const (
	// ConditionReady is the MCPServerRegistration condition: True when registered.
	ConditionReady = "Ready"
	// ConditionAccepted is the MCPAuthPolicy condition: True when in force.
	ConditionAccepted = "Accepted"

	ReasonRegistered          = "Registered"
	ReasonRouteNotFound       = "RouteNotFound"
	ReasonRouteNotAccepted    = "RouteNotAccepted" // no parent Gateway accepted the route
	ReasonRefNotPermitted     = "RefNotPermitted"  // a cross-namespace reference without a ReferenceGrant
	ReasonNoBackendRef        = "NoBackendRef"
	ReasonMultipleBackendRefs = "MultipleBackendRefs"
	ReasonInvalidBackendRef   = "InvalidBackendRef"
	ReasonBackendNotFound     = "BackendNotFound"
	ReasonExternalName        = "ExternalNameNotAllowed" // see Config.AllowExternalNameServices
	ReasonSecretNotFound      = "SecretNotFound"         // missing, or without the mcp.kuadrant.io/secret=true label
	ReasonInvalidSecret       = "InvalidSecret"          // the key is missing or its value unusable
	ReasonUnsupported         = "Unsupported"            // a field mcp-authz does not support (tokenURLElicitation)
	ReasonNoHostname          = "NoHostname"
	ReasonPrefixConflict      = "PrefixConflict"
	ReasonHostnameConflict    = "HostnameConflict"
	ReasonInvalid             = "Invalid"
	ReasonDisabled            = "Disabled"

	// ConditionEnforced is the MCPAuthPolicy condition: True when a version of the
	// policy is in force.
	ConditionEnforced = "Enforced"

	ReasonAccepted       = "Accepted"
	ReasonTargetNotFound = "TargetNotFound"
	ReasonEnforced       = "Enforced"
	ReasonUnknown        = "Unknown"
)

// ControllerName is the controller named in an MCPAuthPolicy's status.ancestors.
const ControllerName = "authz.mcp-authz.dev/mcp-authz"

// SecretLabel is the label (value "true") that a Secret named by a registration's
// credentialRef or caCertSecretRef must carry, as with Kuadrant: only such Secrets
// are read and cached.
const SecretLabel = "mcp.kuadrant.io/secret"

// maxCACert bounds a CA bundle read from a Secret.
const maxCACert = 64 << 10

const (
	gatewayGroup  = "gateway.networking.k8s.io"
	mcpGroup      = "mcp.kuadrant.io"
	istioGroup    = "networking.istio.io"
	kindGateway   = "Gateway"
	kindHTTPRoute = "HTTPRoute"
	kindMCPServer = "MCPServerRegistration"
	kindService   = "Service"
	kindHostname  = "Hostname"
)

// inputs is everything a view is computed from, as read from the cache.
type inputs struct {
	registrations []mcpv1.MCPServerRegistration
	routes        map[types.NamespacedName]*gwv1.HTTPRoute
	services      map[types.NamespacedName]*corev1.Service
	secrets       map[types.NamespacedName]*corev1.Secret // only those with SecretLabel
	grants        []gwv1beta1.ReferenceGrant
	policies      []authzv1alpha1.MCPAuthPolicy
}

// view is what the inputs mean: the registry entries, the policy set and the
// status every resource should carry.
type view struct {
	servers  []registry.Server
	policies []policy.Policy
	// status holds the wanted condition of each registration and policy.
	regStatus map[types.NamespacedName]metav1.Condition
	polStatus map[types.NamespacedName]policyStatus
}

// policyStatus is the wanted status of one policy.
type policyStatus struct {
	accepted, enforced metav1.Condition
}

// candidate is a registration that resolved to a server, with where it came from.
type candidate struct {
	reg    *mcpv1.MCPServerRegistration
	route  types.NamespacedName
	rule   string // the name of the route rule holding the backendRef, if any
	server registry.Server
}

// compute turns inputs into a view. It is deterministic: every replica computes
// the same view from the same cache.
func (s *Source) compute(in *inputs) *view {
	v := &view{
		regStatus: map[types.NamespacedName]metav1.Condition{},
		polStatus: map[types.NamespacedName]policyStatus{},
	}

	// Older registrations win conflicts: sort by creation time, then namespace/name.
	regs := slices.Clone(in.registrations)
	slices.SortFunc(regs, func(a, b mcpv1.MCPServerRegistration) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	var accepted []candidate
	for i := range regs {
		reg := &regs[i]
		key := types.NamespacedName{Namespace: reg.Namespace, Name: reg.Name}
		c, reason, msg := s.resolve(in, reg)
		if reason == "" {
			reason, msg = conflict(accepted, c)
		}
		if reason != "" {
			v.regStatus[key] = condition(ConditionReady, metav1.ConditionFalse, reason, msg, reg.Generation)
			continue
		}
		accepted = append(accepted, c)
		v.regStatus[key] = condition(ConditionReady, metav1.ConditionTrue, ReasonRegistered,
			fmt.Sprintf("registered as %s with prefix %q at %s", c.server.Name, c.server.Prefix, c.server.URL), reg.Generation)
	}

	overrides := s.policies(in, accepted, v)
	for _, c := range accepted {
		if o, ok := overrides[c.server.Name]; ok {
			if o.audience != "" {
				c.server.Audience = o.audience
			}
			c.server.Scopes = o.scopes
			c.server.Exchange = o.profile
		}
		v.servers = append(v.servers, c.server)
	}
	slices.SortFunc(v.servers, func(a, b registry.Server) int { return strings.Compare(a.Name, b.Name) })
	return v
}

// resolve turns one registration into a server, or says why it cannot.
func (s *Source) resolve(in *inputs, reg *mcpv1.MCPServerRegistration) (c candidate, reason, msg string) {
	spec := &reg.Spec
	if spec.State == mcpv1.ServerStateDisabled {
		return c, ReasonDisabled, "spec.state is Disabled"
	}
	if spec.TokenURLElicitation != nil {
		return c, ReasonUnsupported, "spec.tokenURLElicitation is not supported by mcp-authz; remove it to register the server"
	}
	ref := spec.TargetRef
	if g := cmp.Or(ref.Group, gatewayGroup); g != gatewayGroup || cmp.Or(ref.Kind, kindHTTPRoute) != kindHTTPRoute {
		return c, ReasonInvalid, "targetRef must be a gateway.networking.k8s.io HTTPRoute"
	}
	path := cmp.Or(spec.Path, "/mcp")
	if !strings.HasPrefix(path, "/") {
		return c, ReasonInvalid, fmt.Sprintf("spec.path %q must start with /", path)
	}
	routeKey := types.NamespacedName{Namespace: cmp.Or(ref.Namespace, reg.Namespace), Name: ref.Name}
	if routeKey.Namespace != reg.Namespace &&
		!granted(in.grants, reference{mcpGroup, kindMCPServer, reg.Namespace}, reference{gatewayGroup, kindHTTPRoute, routeKey.Namespace}, routeKey.Name) {
		return c, ReasonRefNotPermitted, fmt.Sprintf("no ReferenceGrant in namespace %s allows MCPServerRegistrations of namespace %s to refer to HTTPRoute %s",
			routeKey.Namespace, reg.Namespace, routeKey.Name)
	}
	route, ok := in.routes[routeKey]
	if !ok {
		return c, ReasonRouteNotFound, fmt.Sprintf("HTTPRoute %s not found", routeKey)
	}
	if !accepted(route) {
		return c, ReasonRouteNotAccepted, fmt.Sprintf("no parent Gateway has accepted HTTPRoute %s (status.parents[].conditions Accepted=True)", routeKey)
	}
	var refs []gwv1.HTTPBackendRef
	for _, r := range route.Spec.Rules {
		refs = append(refs, r.BackendRefs...)
	}
	switch {
	case len(refs) == 0:
		return c, ReasonNoBackendRef, fmt.Sprintf("HTTPRoute %s has no backendRef", routeKey)
	case len(refs) > 1:
		return c, ReasonMultipleBackendRefs, fmt.Sprintf("HTTPRoute %s has %d backendRefs, want exactly one", routeKey, len(refs))
	}

	b, reason, msg := s.backend(in, route, refs[0].BackendObjectReference)
	if reason != "" {
		return c, reason, msg
	}
	hostname := firstHostname(route)
	if s.cfg.GatewayPort != 0 {
		if hostname == "" {
			return c, ReasonNoHostname, fmt.Sprintf("HTTPRoute %s has no exact hostname to reach it through the gateway", routeKey)
		}
		b = endpoint{cmp.Or(s.cfg.GatewayScheme, "http"), hostname, s.cfg.GatewayPort}
	}
	srv := registry.Server{
		Name:             reg.Namespace + "/" + reg.Name,
		Prefix:           spec.Prefix,
		UserSpecificList: spec.UserSpecificList == mcpv1.UserSpecificListEnabled,
		Category:         slices.Clone(spec.Category),
		Hint:             spec.Hint,
		Tags:             slices.Clone(spec.Tags),
	}
	if s.cfg.AttachHostnames {
		srv.Hostname = hostname
	}
	if r := spec.CACertSecretRef; r != nil {
		pem, reason, msg := secretValue(in, reg.Namespace, r.Name, cmp.Or(r.Key, "ca.crt"), "caCertSecretRef")
		if reason != "" {
			return c, reason, msg
		}
		if len(pem) > maxCACert {
			return c, ReasonInvalidSecret, fmt.Sprintf("caCertSecretRef: Secret %s/%s key %s holds more than %d bytes", reg.Namespace, r.Name, cmp.Or(r.Key, "ca.crt"), maxCACert)
		}
		// A CA of its own says the server speaks TLS, as with Kuadrant.
		srv.CACert, b.scheme = pem, "https"
	}
	if r := spec.CredentialRef; r != nil {
		key := cmp.Or(r.Key, "token")
		v, reason, msg := secretValue(in, reg.Namespace, r.Name, key, "credentialRef")
		if reason != "" {
			return c, reason, msg
		}
		// A trailing newline (kubectl create secret --from-file) is not part of it.
		srv.Credential = registry.NewCredential(fmt.Sprintf("Secret %s/%s key %s", reg.Namespace, r.Name, key), strings.TrimSpace(string(v)))
	}
	srv.URL = b.scheme + "://" + net.JoinHostPort(b.host, strconv.Itoa(b.port)) + path
	// The registry's own validation (URL, name, prefix, credential, CA) decides what
	// is invalid; its messages never carry the credential.
	if _, err := registry.NewSnapshot([]registry.Server{srv}); err != nil {
		reason := ReasonInvalid
		if strings.Contains(err.Error(), "].credential:") || strings.Contains(err.Error(), "].caCert:") {
			reason = ReasonInvalidSecret
		}
		return c, reason, err.Error()
	}
	return candidate{reg: reg, route: routeKey, rule: ruleOf(route), server: srv}, "", ""
}

// secretValue reads key of the labelled Secret ns/name, or says why it cannot.
func secretValue(in *inputs, ns, name, key, field string) (v []byte, reason, msg string) {
	sec, ok := in.secrets[types.NamespacedName{Namespace: ns, Name: name}]
	if !ok {
		return nil, ReasonSecretNotFound, fmt.Sprintf("%s: Secret %s/%s not found with label %s=true", field, ns, name, SecretLabel)
	}
	v, ok = sec.Data[key]
	if !ok {
		return nil, ReasonInvalidSecret, fmt.Sprintf("%s: Secret %s/%s has no key %s", field, ns, name, key)
	}
	return v, "", ""
}

// endpoint is where a backend is reached.
type endpoint struct {
	scheme, host string
	port         int
}

// backend resolves a route's backendRef: a core Service (ClusterIP, or ExternalName
// where Config allows it) or an Istio Hostname (an external server, over https).
func (s *Source) backend(in *inputs, route *gwv1.HTTPRoute, ref gwv1.BackendObjectReference) (e endpoint, reason, msg string) {
	group, kind := "", kindService
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	switch {
	case group == istioGroup && kind == kindHostname:
		host := strings.ToLower(string(ref.Name))
		if !validHost(host) {
			return e, ReasonInvalidBackendRef, fmt.Sprintf("the backendRef's Hostname %q is not a DNS name", ref.Name)
		}
		port := 443
		if ref.Port != nil {
			port = int(*ref.Port)
		}
		return endpoint{"https", host, port}, "", ""
	case group != "" || kind != kindService:
		return e, ReasonInvalidBackendRef, "the backendRef must be a core Service or a networking.istio.io Hostname"
	}
	if ref.Port == nil {
		return e, ReasonInvalidBackendRef, "the backendRef has no port"
	}
	key := types.NamespacedName{Namespace: route.Namespace, Name: string(ref.Name)}
	if ref.Namespace != nil && *ref.Namespace != "" {
		key.Namespace = string(*ref.Namespace)
	}
	if key.Namespace != route.Namespace &&
		!granted(in.grants, reference{gatewayGroup, kindHTTPRoute, route.Namespace}, reference{"", kindService, key.Namespace}, key.Name) {
		return e, ReasonRefNotPermitted, fmt.Sprintf("no ReferenceGrant in namespace %s allows HTTPRoutes of namespace %s to refer to Service %s",
			key.Namespace, route.Namespace, key.Name)
	}
	svc, ok := in.services[key]
	if !ok {
		return e, ReasonBackendNotFound, fmt.Sprintf("Service %s not found", key)
	}
	port := int(*ref.Port)
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == port })
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if !s.cfg.AllowExternalNameServices {
			return e, ReasonExternalName, fmt.Sprintf("Service %s is of type ExternalName, which kubernetes.allowExternalNameServices does not allow", key)
		}
		host := strings.ToLower(svc.Spec.ExternalName)
		if !validHost(host) {
			return e, ReasonInvalidBackendRef, fmt.Sprintf("Service %s's externalName %q is not a DNS name", key, svc.Spec.ExternalName)
		}
		scheme := "http"
		if i >= 0 {
			scheme = portScheme(svc.Spec.Ports[i])
		}
		return endpoint{scheme, host, port}, "", ""
	}
	if i < 0 {
		return e, ReasonBackendNotFound, fmt.Sprintf("Service %s has no port %d", key, port)
	}
	host := fmt.Sprintf("%s.%s.svc.%s", key.Name, key.Namespace, cmp.Or(s.cfg.ClusterDomain, "cluster.local"))
	return endpoint{portScheme(svc.Spec.Ports[i]), host, port}, "", ""
}

// portScheme is https when the Service port's appProtocol (or, without one, its
// name) says TLS: "https", "kubernetes.io/wss", or a name "https" / "https-…".
// Everything else, h2c included, is http.
func portScheme(p corev1.ServicePort) string {
	if p.AppProtocol != nil {
		switch strings.ToLower(*p.AppProtocol) {
		case "https", "kubernetes.io/wss":
			return "https"
		}
		return "http"
	}
	if n := strings.ToLower(p.Name); n == "https" || strings.HasPrefix(n, "https-") {
		return "https"
	}
	return "http"
}

// validHost reports whether h is a DNS name (no port, path or user part).
func validHost(h string) bool {
	_, err := registry.NewSnapshot([]registry.Server{{Name: "x/x", URL: "http://x/", Hostname: h}})
	return err == nil
}

// reference is the group, kind and namespace of one end of a reference.
type reference struct {
	group, kind, namespace string
}

// granted reports whether a ReferenceGrant in to's namespace lets objects of from
// refer to the object name of to, as Gateway API's ReferenceGrant prescribes.
func granted(grants []gwv1beta1.ReferenceGrant, from, to reference, name string) bool {
	for i := range grants {
		g := &grants[i]
		if g.Namespace != to.namespace {
			continue
		}
		fromOK := slices.ContainsFunc(g.Spec.From, func(f gwv1beta1.ReferenceGrantFrom) bool {
			return string(f.Group) == from.group && string(f.Kind) == from.kind && string(f.Namespace) == from.namespace
		})
		toOK := slices.ContainsFunc(g.Spec.To, func(t gwv1beta1.ReferenceGrantTo) bool {
			return string(t.Group) == to.group && string(t.Kind) == to.kind && (t.Name == nil || *t.Name == "" || string(*t.Name) == name)
		})
		if fromOK && toOK {
			return true
		}
	}
	return false
}

// accepted reports whether a parent Gateway of route has accepted it: a
// status.parents entry for one of its parentRefs with condition Accepted=True.
func accepted(route *gwv1.HTTPRoute) bool {
	for _, p := range route.Status.Parents {
		if !meta.IsStatusConditionTrue(p.Conditions, string(gwv1.RouteConditionAccepted)) {
			continue
		}
		if slices.ContainsFunc(route.Spec.ParentRefs, func(r gwv1.ParentReference) bool {
			return sameParent(r, p.ParentRef, route.Namespace)
		}) {
			return true
		}
	}
	return false
}

// sameParent reports whether two parentRefs of a route in namespace ns name the
// same parent.
func sameParent(a, b gwv1.ParentReference, ns string) bool {
	str := func(p *string, def string) string {
		if p == nil || *p == "" {
			return def
		}
		return *p
	}
	return a.Name == b.Name &&
		str((*string)(a.Namespace), ns) == str((*string)(b.Namespace), ns) &&
		str((*string)(a.Group), gatewayGroup) == str((*string)(b.Group), gatewayGroup) &&
		str((*string)(a.Kind), kindGateway) == str((*string)(b.Kind), kindGateway) &&
		str((*string)(a.SectionName), "") == str((*string)(b.SectionName), "")
}

// ruleOf is the name of the route rule that holds its one backendRef, or "".
func ruleOf(route *gwv1.HTTPRoute) string {
	for _, r := range route.Spec.Rules {
		if len(r.BackendRefs) > 0 && r.Name != nil {
			return string(*r.Name)
		}
	}
	return ""
}

// firstHostname is the route's first hostname that is not a wildcard, or "".
func firstHostname(route *gwv1.HTTPRoute) string {
	for _, h := range route.Spec.Hostnames {
		if !strings.HasPrefix(string(h), "*") {
			return strings.ToLower(string(h))
		}
	}
	return ""
}

// conflict says why c cannot join the accepted servers: a prefix another server
// has (nested prefixes are fine: the longest wins), or a hostname already taken.
func conflict(accepted []candidate, c candidate) (reason, msg string) {
	for _, a := range accepted {
		if p := c.server.Prefix; p == a.server.Prefix {
			return ReasonPrefixConflict, fmt.Sprintf("prefix %q is taken by the older registration %s", p, a.server.Name)
		}
		if h := c.server.Hostname; h != "" && h == a.server.Hostname {
			return ReasonHostnameConflict, fmt.Sprintf("hostname %q is used by the older registration %s", h, a.server.Name)
		}
	}
	return "", ""
}

// exchangeOverride is a policy's token-exchange settings for a server.
type exchangeOverride struct {
	audience string
	scopes   []string
	profile  string
	rank     int
}

// policies resolves every policy resource to the servers it applies to, fills
// v.policies and the policies' status, and returns the token-exchange
// overrides (audience, scopes) by server name.
func (s *Source) policies(in *inputs, accepted []candidate, v *view) map[string]exchangeOverride {
	pols := slices.Clone(in.policies)
	// Precedence of audience overrides: the most specific target, then the oldest.
	slices.SortFunc(pols, func(a, b authzv1alpha1.MCPAuthPolicy) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	overrides := map[string]exchangeOverride{}
	for i := range pols {
		p := &pols[i]
		key := types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
		servers, rank := targets(in, accepted, p)
		rules, err := s.compiled(p)
		gen := p.Generation
		inForce := condition(ConditionEnforced, metav1.ConditionTrue, ReasonEnforced, "", gen)
		notInForce := condition(ConditionEnforced, metav1.ConditionFalse, ReasonUnknown, "no version of the policy is in force", gen)
		if err != nil && rules == nil {
			v.polStatus[key] = policyStatus{condition(ConditionAccepted, metav1.ConditionFalse, ReasonInvalid, err.Error(), gen), notInForce}
			continue
		}
		if len(servers) == 0 {
			t := p.Spec.TargetRef
			what := t.Kind + " " + t.Name
			if t.SectionName != nil {
				what += " section " + string(*t.SectionName)
			}
			v.polStatus[key] = policyStatus{condition(ConditionAccepted, metav1.ConditionFalse, ReasonTargetNotFound,
				fmt.Sprintf("no registered MCP server is behind %s", what), gen), notInForce}
			continue
		}
		for _, r := range rules {
			r.Servers = servers
			v.policies = append(v.policies, r)
		}
		applies := fmt.Sprintf("applies to %s", strings.Join(servers, ", "))
		if err != nil {
			inForce.Message = "the last accepted version " + applies
			v.polStatus[key] = policyStatus{condition(ConditionAccepted, metav1.ConditionFalse, ReasonInvalid,
				err.Error()+"; the last accepted version stays in force", gen), inForce}
		} else {
			inForce.Message = applies
			v.polStatus[key] = policyStatus{condition(ConditionAccepted, metav1.ConditionTrue, ReasonAccepted, applies, gen), inForce}
		}
		if te := p.Spec.TokenExchange; te != nil && (te.Audience != "" || len(te.Scopes) > 0 || te.Profile != "") {
			refused, why := s.refusedProfile(te.Profile, accepted, servers)
			for _, name := range servers {
				if slices.Contains(refused, name) {
					continue
				}
				if o, ok := overrides[name]; !ok || rank > o.rank {
					overrides[name] = exchangeOverride{te.Audience, slices.Clone(te.Scopes), te.Profile, rank}
				}
			}
			if len(refused) > 0 {
				// The rules stay in force (they only ever deny more); the
				// refused servers keep their token as it was.
				st := v.polStatus[key]
				st.accepted = condition(ConditionAccepted, metav1.ConditionFalse, ReasonInvalid, why, gen)
				v.polStatus[key] = st
			}
		}
	}
	s.prune(pols)
	return overrides
}

// refusedProfile lists the servers a policy's tokenExchange.profile cannot
// apply to, and why: a profile mcp-authz does not define (every server), or
// servers whose registration's credentialRef is their upstream credential (a
// server takes one or the other). None when it applies.
func (s *Source) refusedProfile(profile string, accepted []candidate, servers []string) (refused []string, why string) {
	if profile == "" {
		return nil, ""
	}
	if !slices.Contains(s.cfg.Profiles, profile) {
		return servers, fmt.Sprintf("spec.tokenExchange.profile %q is not a profile of mcp-authz's exchange.profiles; the targeted servers keep their token and the rules apply", profile)
	}
	for _, c := range accepted {
		if c.server.Credential != nil && slices.Contains(servers, c.server.Name) {
			refused = append(refused, c.server.Name)
		}
	}
	if len(refused) == 0 {
		return nil, ""
	}
	return refused, fmt.Sprintf("spec.tokenExchange.profile cannot apply to %s: a registration's credentialRef is its server's upstream credential, and a server takes one or the other; they keep the credentialRef and the rules apply", strings.Join(refused, ", "))
}

// targets lists the accepted servers a policy applies to, sorted, and the rank of
// its target kind (a registration is more specific than a route, a route than a
// gateway). A sectionName narrows a Gateway to the routes attached to that
// listener (or to all of its listeners) and an HTTPRoute to the rule of that name.
func targets(in *inputs, accepted []candidate, p *authzv1alpha1.MCPAuthPolicy) ([]string, int) {
	t := p.Spec.TargetRef
	var names []string
	rank := 0
	for _, c := range accepted {
		var match bool
		switch {
		case t.Group == mcpGroup && t.Kind == kindMCPServer:
			rank = 3
			match = c.reg.Namespace == p.Namespace && c.reg.Name == t.Name
		case t.Group == gatewayGroup && t.Kind == kindHTTPRoute:
			rank = 2
			match = c.route == types.NamespacedName{Namespace: p.Namespace, Name: t.Name} &&
				(t.SectionName == nil || string(*t.SectionName) == c.rule)
		case t.Group == gatewayGroup && t.Kind == kindGateway:
			rank = 1
			match = attached(in.routes[c.route], types.NamespacedName{Namespace: p.Namespace, Name: t.Name}, t.SectionName)
		}
		if match {
			names = append(names, c.server.Name)
		}
	}
	slices.Sort(names)
	return names, rank
}

// attached reports whether route has a parentRef to the gateway gw, and to its
// listener section when that is set (a parentRef without a sectionName attaches
// to every listener).
func attached(route *gwv1.HTTPRoute, gw types.NamespacedName, section *gwv1.SectionName) bool {
	if route == nil {
		return false
	}
	for _, ref := range route.Spec.ParentRefs {
		if ref.Group != nil && *ref.Group != gatewayGroup || ref.Kind != nil && *ref.Kind != kindGateway {
			continue
		}
		ns := route.Namespace
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		if ns == gw.Namespace && string(ref.Name) == gw.Name &&
			(section == nil || ref.SectionName == nil || *ref.SectionName == *section) {
			return true
		}
	}
	return false
}

// condition builds a condition; LastTransitionTime is set when it is written.
func condition(typ string, status metav1.ConditionStatus, reason, msg string, generation int64) metav1.Condition {
	const maxMessage = 32768
	if len(msg) > maxMessage {
		msg = msg[:maxMessage]
	}
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: generation}
}

// sameCondition reports whether conds already carries c (ignoring the time).
func sameCondition(conds []metav1.Condition, c metav1.Condition) bool {
	old := meta.FindStatusCondition(conds, c.Type)
	return old != nil && old.Status == c.Status && old.Reason == c.Reason &&
		old.Message == c.Message && old.ObservedGeneration == c.ObservedGeneration
}

// prune forgets the compile results of policies that no longer exist.
func (s *Source) prune(pols []authzv1alpha1.MCPAuthPolicy) {
	live := make(map[types.UID]bool, len(pols))
	for i := range pols {
		live[pols[i].UID] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for uid := range s.compiledByID {
		if !live[uid] {
			delete(s.compiledByID, uid)
		}
	}
}
