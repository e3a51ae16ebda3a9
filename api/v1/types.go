package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServerState says whether an MCPServerRegistration is in use.
// +kubebuilder:validation:Enum=Enabled;Disabled
type ServerState string

// The ServerState values.
const (
	// ServerStateEnabled registers the server (the default).
	ServerStateEnabled ServerState = "Enabled"
	// ServerStateDisabled keeps the resource but removes the server and its tools.
	ServerStateDisabled ServerState = "Disabled"
)

// UserSpecificListPolicy says whether the server's lists depend on the caller.
// +kubebuilder:validation:Enum=Enabled;Disabled
type UserSpecificListPolicy string

// The UserSpecificListPolicy values.
const (
	// UserSpecificListEnabled: the server returns different lists to different
	// callers, so its lists are fetched with each caller's own credentials.
	UserSpecificListEnabled UserSpecificListPolicy = "Enabled"
	// UserSpecificListDisabled (the default): the server's lists do not depend on
	// the caller. mcp-authz still caches lists per caller; it never shares them.
	UserSpecificListDisabled UserSpecificListPolicy = "Disabled"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:resource:scope=Namespaced,shortName=mcpsr
// +kubebuilder:printcolumn:name="Prefix",type="string",JSONPath=".spec.prefix",description="Prefix of the server's tool and prompt names"
// +kubebuilder:printcolumn:name="Target",type="string",JSONPath=".spec.targetRef.name",description="HTTPRoute in front of the server (one backendRef)"
// +kubebuilder:printcolumn:name="Path",type="string",JSONPath=".spec.path",description="Path of the server's MCP endpoint"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status",description="Whether the server is registered"
// +kubebuilder:printcolumn:name="Category",type="string",JSONPath=".spec.category",description="Categories of the server"
// +kubebuilder:printcolumn:name="Credentials",type="string",JSONPath=".spec.credentialRef.name"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// MCPServerRegistration registers the MCP server behind an HTTPRoute: its tools are
// offered through the router under Prefix, and its calls are authorized by mcp-authz.
//
// The schema (fields, defaults, validation, printer columns, the one served version
// v1) is the one of Kuadrant mcp-gateway's CRD of the same name, so that either
// project's CRD serves the other's resources; the descriptions are our own.
type MCPServerRegistration struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the server.
	// +optional
	Spec MCPServerRegistrationSpec `json:"spec,omitempty"`

	// status is written by the mcp-authz leader.
	// +optional
	Status MCPServerRegistrationStatus `json:"status,omitempty"`
}

// MCPServerRegistrationSpec describes one MCP server. Every field is either honoured
// by mcp-authz or refused with status condition Ready=False saying so.
// +kubebuilder:validation:XValidation:rule="self.userSpecificList != \"Enabled\" || self.prefix != \"\"",message="userSpecificList Enabled needs a prefix"
type MCPServerRegistrationSpec struct {
	// targetRef names the HTTPRoute in front of the MCP server. The route must have
	// exactly one backendRef: a Service, or an Istio Hostname (external server).
	// +required
	TargetRef TargetReference `json:"targetRef,omitzero"`

	// prefix is prepended to the server's tool and prompt names so that servers never
	// collide ("kube_" makes "pods_list" "kube_pods_list"). It cannot change once set.
	// Prefixes may nest (the longest matching prefix wins); two servers may not share one.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="prefix is immutable once set"
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9_]*$`
	Prefix string `json:"prefix,omitempty"`

	// path is the server's MCP endpoint path; it must start with "/".
	// +optional
	// +default="/mcp"
	Path string `json:"path,omitempty"`

	// credentialRef names a key of a Secret in the registration's namespace that holds
	// a static credential for the server: the whole value of the Authorization header
	// sent upstream. The Secret must carry the label mcp.kuadrant.io/secret=true.
	// +optional
	CredentialRef *SecretReference `json:"credentialRef,omitempty"`

	// state Disabled removes the server and its tools while keeping the resource.
	// +optional
	// +default="Enabled"
	State ServerState `json:"state,omitempty"`

	// caCertSecretRef names a key of a Secret in the registration's namespace that
	// holds the PEM CA bundle the server's TLS certificate must chain to; it makes the
	// server's URL https. The Secret must carry the label mcp.kuadrant.io/secret=true.
	// +optional
	CACertSecretRef *CACertSecretReference `json:"caCertSecretRef,omitempty"`

	// tokenURLElicitation (per-caller tokens collected by URL elicitation) is not
	// supported by mcp-authz: a registration that sets it is refused (Unsupported).
	// +optional
	TokenURLElicitation *TokenURLElicitationConfig `json:"tokenURLElicitation,omitempty"`

	// userSpecificList Enabled says the server's lists depend on the caller: they are
	// fetched with the caller's own credentials and never shared between callers.
	// +optional
	// +default="Disabled"
	UserSpecificList UserSpecificListPolicy `json:"userSpecificList,omitempty"`

	// category names up to three categories of the server, offered to clients with
	// its tools.
	// +optional
	// +listType=atomic
	// +default=["uncategorised"]
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Category []string `json:"category,omitempty"`

	// hint says in a sentence what the server offers, for clients choosing tools.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Hint string `json:"hint,omitempty"`

	// tags are free labels of the server, offered to clients with its tools.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Tags []string `json:"tags,omitempty"`
}

// TargetReference names an HTTPRoute.
type TargetReference struct {
	// group of the target.
	// +optional
	// +default="gateway.networking.k8s.io"
	// +kubebuilder:validation:Enum=gateway.networking.k8s.io
	Group string `json:"group,omitempty"`

	// kind of the target.
	// +optional
	// +default="HTTPRoute"
	// +kubebuilder:validation:Enum=HTTPRoute
	Kind string `json:"kind,omitempty"`

	// name of the target.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name,omitempty"`

	// namespace of the target; empty means the registration's namespace. Another
	// namespace needs a ReferenceGrant there that allows MCPServerRegistrations of
	// this namespace to refer to HTTPRoutes.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// SecretReference names a key in a Secret of the registration's namespace.
type SecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name,omitempty"`

	// key within the Secret.
	// +optional
	// +default="token"
	Key string `json:"key,omitempty"`
}

// CACertSecretReference names the key of a PEM CA bundle in a Secret of the
// registration's namespace.
type CACertSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name,omitempty"`

	// key within the Secret.
	// +optional
	// +default="ca.crt"
	Key string `json:"key,omitempty"`
}

// TokenURLElicitationConfig configures per-caller token collection by URL
// elicitation; not supported by mcp-authz.
type TokenURLElicitationConfig struct {
	// url of an external token page.
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://`
	URL string `json:"url,omitempty"`
}

// MCPServerRegistrationStatus is what mcp-authz observed.
type MCPServerRegistrationStatus struct {
	// conditions: Ready is True when the server is registered; its reason says why
	// not (see the kube package's Reason constants).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true

// MCPServerRegistrationList is a list of MCPServerRegistration.
type MCPServerRegistrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MCPServerRegistration `json:"items"`
}
