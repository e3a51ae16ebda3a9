package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:resource:scope=Namespaced,shortName=mcpap
// +kubebuilder:metadata:labels="gateway.networking.k8s.io/policy=direct"
// +kubebuilder:printcolumn:name="Kind",type="string",JSONPath=".spec.targetRef.kind"
// +kubebuilder:printcolumn:name="Target",type="string",JSONPath=".spec.targetRef.name"
// +kubebuilder:printcolumn:name="Accepted",type="string",JSONPath=".status.conditions[?(@.type=='Accepted')].status"
// +kubebuilder:printcolumn:name="Reason",type="string",JSONPath=".status.conditions[?(@.type=='Accepted')].reason"
// +kubebuilder:printcolumn:name="Enforced",type="string",JSONPath=".status.conditions[?(@.type=='Enforced')].status"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// MCPAuthPolicy attaches tool-access rules and token-exchange settings to the MCP
// servers behind a Gateway, an HTTPRoute or one MCPServerRegistration, in the manner
// of Gateway API policy attachment (GEP-713, a Direct policy). Every policy that applies to a server must allow
// a call: a route-level policy adds to a gateway-level one, it never overrides it.
type MCPAuthPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the policy.
	// +required
	Spec MCPAuthPolicySpec `json:"spec"`

	// status is written by the mcp-authz leader.
	// +optional
	Status MCPAuthPolicyStatus `json:"status,omitempty"`
}

// MCPAuthPolicySpec is the policy.
// +kubebuilder:validation:XValidation:rule="has(self.rules) || has(self.tokenExchange)",message="a policy needs rules or tokenExchange"
type MCPAuthPolicySpec struct {
	// targetRef names the Gateway, HTTPRoute or MCPServerRegistration, in the
	// policy's namespace, whose MCP servers the policy applies to.
	// +required
	TargetRef PolicyTargetReference `json:"targetRef"`

	// rules must all allow a call (each is a CEL expression or a Rego module over the
	// policy input document: request, mcp, identity, token).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Rules []Rule `json:"rules,omitempty"`

	// tokenExchange overrides the RFC 8693 token-exchange request for the targeted
	// servers.
	// +optional
	TokenExchange *TokenExchange `json:"tokenExchange,omitempty"`
}

// PolicyTargetReference names the resource a policy attaches to, in the policy's
// namespace.
// +kubebuilder:validation:XValidation:rule="!has(self.sectionName) || self.kind != 'MCPServerRegistration'",message="sectionName needs a Gateway or an HTTPRoute target"
// +kubebuilder:validation:XValidation:rule="(self.group == 'gateway.networking.k8s.io' && (self.kind == 'Gateway' || self.kind == 'HTTPRoute')) || (self.group == 'mcp.kuadrant.io' && self.kind == 'MCPServerRegistration')",message="targetRef must be a gateway.networking.k8s.io Gateway or HTTPRoute, or an mcp.kuadrant.io MCPServerRegistration"
type PolicyTargetReference struct {
	// group of the target.
	// +required
	// +kubebuilder:validation:Enum=gateway.networking.k8s.io;mcp.kuadrant.io
	Group string `json:"group"`

	// kind of the target.
	// +required
	// +kubebuilder:validation:Enum=Gateway;HTTPRoute;MCPServerRegistration
	Kind string `json:"kind"`

	// name of the target.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// sectionName narrows the target: a listener of the Gateway (the routes attached
	// to it), or a named rule of the HTTPRoute (the server behind that rule). Not
	// allowed with an MCPServerRegistration.
	// +optional
	SectionName *gwv1.SectionName `json:"sectionName,omitempty"`
}

// Rule is one CEL expression or one Rego module; exactly one of them is set.
// +kubebuilder:validation:XValidation:rule="has(self.cel) != has(self.rego)",message="exactly one of cel and rego must be set"
type Rule struct {
	// name identifies the rule in decisions and logs.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// cel is a boolean CEL expression; true allows.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=16384
	CEL string `json:"cel,omitempty"`

	// rego is a Rego module (package mcp.authz) whose allow rule decides.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	Rego string `json:"rego,omitempty"`
}

// TokenExchange overrides the token-exchange request for the targeted servers.
type TokenExchange struct {
	// audience requested for the exchanged token; empty means the server's name
	// (namespace/name of its registration).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Audience string `json:"audience,omitempty"`

	// scopes requested for the exchanged token.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:Pattern=`^[\x21\x23-\x5B\x5D-\x7E]+$`
	Scopes []string `json:"scopes,omitempty"`

	// profile names the exchange profile (mcp-authz's exchange.profiles) that makes
	// the targeted servers' tokens, such as a chain across trust domains; empty means
	// the default profile. A profile mcp-authz does not define, or a server whose
	// registration has a credentialRef (its upstream credential already), is refused:
	// Accepted False, Invalid, and those servers keep what they had.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Profile string `json:"profile,omitempty"`
}

// MCPAuthPolicyStatus is what mcp-authz observed.
type MCPAuthPolicyStatus struct {
	// conditions: Accepted (reasons Accepted, Invalid: a rule does not compile and
	// the last accepted version stays in force, TargetNotFound: no registered server
	// is behind the target) and Enforced (reasons Enforced, Unknown: the policy set
	// was not taken up by the policy engine).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ancestors holds, as Gateway API policy attachment prescribes, the policy's
	// target with the controller that reconciles it and the same conditions.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Ancestors []gwv1.PolicyAncestorStatus `json:"ancestors,omitempty"`
}

// +kubebuilder:object:root=true

// MCPAuthPolicyList is a list of MCPAuthPolicy.
type MCPAuthPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MCPAuthPolicy `json:"items"`
}
