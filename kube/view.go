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
	ReasonNoBackendRef        = "NoBackendRef"
	ReasonMultipleBackendRefs = "MultipleBackendRefs"
	ReasonInvalidBackendRef   = "InvalidBackendRef"
	ReasonBackendNotFound     = "BackendNotFound"
	ReasonNoHostname          = "NoHostname"
	ReasonPrefixConflict      = "PrefixConflict"
	ReasonHostnameConflict    = "HostnameConflict"
	ReasonInvalid             = "Invalid"
	ReasonDisabled            = "Disabled"

	ReasonAccepted       = "Accepted"
	ReasonTargetNotFound = "TargetNotFound"
)

const (
	gatewayGroup  = "gateway.networking.k8s.io"
	mcpGroup      = "mcp.kuadrant.io"
	kindGateway   = "Gateway"
	kindHTTPRoute = "HTTPRoute"
	kindMCPServer = "MCPServerRegistration"
)

// inputs is everything a view is computed from, as read from the cache.
type inputs struct {
	registrations []mcpv1.MCPServerRegistration
	routes        map[types.NamespacedName]*gwv1.HTTPRoute
	services      map[types.NamespacedName]*corev1.Service
	policies      []authzv1alpha1.MCPAuthPolicy
}

// view is what the inputs mean: the registry entries, the policy set and the
// status every resource should carry.
type view struct {
	servers  []registry.Server
	policies []policy.Policy
	// status holds the wanted condition of each registration and policy.
	regStatus map[types.NamespacedName]metav1.Condition
	polStatus map[types.NamespacedName]metav1.Condition
}

// candidate is a registration that resolved to a server, with where it came from.
type candidate struct {
	reg    *mcpv1.MCPServerRegistration
	route  types.NamespacedName
	server registry.Server
}

// compute turns inputs into a view. It is deterministic: every replica computes
// the same view from the same cache.
func (s *Source) compute(in *inputs) *view {
	v := &view{
		regStatus: map[types.NamespacedName]metav1.Condition{},
		polStatus: map[types.NamespacedName]metav1.Condition{},
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
			fmt.Sprintf("registered as %s with prefix %q", c.server.Name, c.server.Prefix), reg.Generation)
	}

	overrides := s.policies(in, accepted, v)
	for _, c := range accepted {
		if o, ok := overrides[c.server.Name]; ok {
			if o.audience != "" {
				c.server.Audience = o.audience
			}
			c.server.Scopes = o.scopes
		}
		v.servers = append(v.servers, c.server)
	}
	slices.SortFunc(v.servers, func(a, b registry.Server) int { return strings.Compare(a.Name, b.Name) })
	return v
}

// resolve turns one registration into a server, or says why it cannot.
func (s *Source) resolve(in *inputs, reg *mcpv1.MCPServerRegistration) (c candidate, reason, msg string) {
	if reg.Spec.State == mcpv1.ServerStateDisabled {
		return c, ReasonDisabled, "spec.state is Disabled"
	}
	ref := reg.Spec.TargetRef
	if g := cmp.Or(ref.Group, gatewayGroup); g != gatewayGroup || cmp.Or(ref.Kind, kindHTTPRoute) != kindHTTPRoute {
		return c, ReasonInvalid, "targetRef must be a gateway.networking.k8s.io HTTPRoute"
	}
	routeKey := types.NamespacedName{Namespace: cmp.Or(ref.Namespace, reg.Namespace), Name: ref.Name}
	route, ok := in.routes[routeKey]
	if !ok {
		return c, ReasonRouteNotFound, fmt.Sprintf("HTTPRoute %s not found", routeKey)
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

	path := cmp.Or(reg.Spec.Path, "/mcp")
	host, port, reason, msg := s.backend(in, route, refs[0].BackendObjectReference)
	if reason != "" {
		return c, reason, msg
	}
	hostname := firstHostname(route)
	if s.cfg.GatewayPort != 0 {
		if hostname == "" {
			return c, ReasonNoHostname, fmt.Sprintf("HTTPRoute %s has no exact hostname to reach it through the gateway", routeKey)
		}
		host, port = hostname, s.cfg.GatewayPort
	}
	scheme := "http"
	if s.cfg.GatewayPort != 0 {
		scheme = cmp.Or(s.cfg.GatewayScheme, "http")
	}
	c = candidate{
		reg:   reg,
		route: routeKey,
		server: registry.Server{
			Name:   reg.Namespace + "/" + reg.Name,
			Prefix: reg.Spec.Prefix,
			URL:    scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + path,
		},
	}
	if s.cfg.AttachHostnames {
		c.server.Hostname = hostname
	}
	// The registry's own validation (URL, name, prefix) decides what is invalid.
	if _, err := registry.NewSnapshot([]registry.Server{c.server}); err != nil {
		return c, ReasonInvalid, err.Error()
	}
	return c, "", ""
}

// backend resolves a route's backendRef to a host and port.
func (s *Source) backend(in *inputs, route *gwv1.HTTPRoute, ref gwv1.BackendObjectReference) (host string, port int, reason, msg string) {
	if (ref.Group != nil && *ref.Group != "") || (ref.Kind != nil && *ref.Kind != "Service") {
		return "", 0, ReasonInvalidBackendRef, "the backendRef must be a core Service"
	}
	if ref.Port == nil {
		return "", 0, ReasonInvalidBackendRef, "the backendRef has no port"
	}
	key := types.NamespacedName{Namespace: route.Namespace, Name: string(ref.Name)}
	if ref.Namespace != nil && *ref.Namespace != "" {
		key.Namespace = string(*ref.Namespace)
	}
	svc, ok := in.services[key]
	if !ok {
		return "", 0, ReasonBackendNotFound, fmt.Sprintf("Service %s not found", key)
	}
	port = int(*ref.Port)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return svc.Spec.ExternalName, port, "", ""
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == port }) {
		return "", 0, ReasonBackendNotFound, fmt.Sprintf("Service %s has no port %d", key, port)
	}
	return fmt.Sprintf("%s.%s.svc.%s", key.Name, key.Namespace, cmp.Or(s.cfg.ClusterDomain, "cluster.local")), port, "", ""
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

// conflict says why c cannot join the accepted servers: a prefix that is a prefix
// of another (so a tool name would be ambiguous; "" is a prefix of every name) or
// a hostname already taken.
func conflict(accepted []candidate, c candidate) (reason, msg string) {
	for _, a := range accepted {
		p, q := a.server.Prefix, c.server.Prefix
		if strings.HasPrefix(p, q) || strings.HasPrefix(q, p) {
			return ReasonPrefixConflict, fmt.Sprintf("prefix %q clashes with prefix %q of the older registration %s", q, p, a.server.Name)
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
		if err != nil && rules == nil {
			v.polStatus[key] = condition(ConditionAccepted, metav1.ConditionFalse, ReasonInvalid, err.Error(), p.Generation)
			continue
		}
		if len(servers) == 0 {
			v.polStatus[key] = condition(ConditionAccepted, metav1.ConditionFalse, ReasonTargetNotFound,
				fmt.Sprintf("no registered MCP server is behind %s %s", p.Spec.TargetRef.Kind, p.Spec.TargetRef.Name), p.Generation)
			continue
		}
		for _, r := range rules {
			r.Servers = servers
			v.policies = append(v.policies, r)
		}
		if err != nil {
			v.polStatus[key] = condition(ConditionAccepted, metav1.ConditionFalse, ReasonInvalid,
				err.Error()+"; the last accepted version stays in force", p.Generation)
		} else {
			v.polStatus[key] = condition(ConditionAccepted, metav1.ConditionTrue, ReasonAccepted,
				fmt.Sprintf("applies to %s", strings.Join(servers, ", ")), p.Generation)
		}
		if te := p.Spec.TokenExchange; te != nil && (te.Audience != "" || len(te.Scopes) > 0) {
			for _, name := range servers {
				if o, ok := overrides[name]; !ok || rank > o.rank {
					overrides[name] = exchangeOverride{te.Audience, slices.Clone(te.Scopes), rank}
				}
			}
		}
	}
	s.prune(pols)
	return overrides
}

// targets lists the accepted servers a policy applies to, sorted, and the rank of
// its target kind (a registration is more specific than a route, a route than a
// gateway).
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
			match = c.route == types.NamespacedName{Namespace: p.Namespace, Name: t.Name}
		case t.Group == gatewayGroup && t.Kind == kindGateway:
			rank = 1
			match = attached(in.routes[c.route], types.NamespacedName{Namespace: p.Namespace, Name: t.Name})
		}
		if match {
			names = append(names, c.server.Name)
		}
	}
	slices.Sort(names)
	return names, rank
}

// attached reports whether route has a parentRef to the gateway gw.
func attached(route *gwv1.HTTPRoute, gw types.NamespacedName) bool {
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
		if ns == gw.Namespace && string(ref.Name) == gw.Name {
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
