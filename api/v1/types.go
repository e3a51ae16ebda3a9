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

// UserSpecificListPolicy is accepted for compatibility with Kuadrant's schema.
// +kubebuilder:validation:Enum=Enabled;Disabled
type UserSpecificListPolicy string

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:resource:scope=Namespaced,shortName=mcpsr
// +kubebuilder:printcolumn:name="Prefix",type="string",JSONPath=".spec.prefix"
// +kubebuilder:printcolumn:name="Target",type="string",JSONPath=".spec.targetRef.name"
// +kubebuilder:printcolumn:name="Path",type="string",JSONPath=".spec.path"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// MCPServerRegistration registers the MCP server behind an HTTPRoute: its tools are
// offered through the router under Prefix, and its calls are authorized by mcp-authz.
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

// MCPServerRegistrationSpec describes one MCP server. The fields and their validation
// follow Kuadrant mcp-gateway's mcp.kuadrant.io/v1, so its resources apply unchanged.
type MCPServerRegistrationSpec struct {
	// targetRef names the HTTPRoute in front of the MCP server. The route must have
	// exactly one backendRef, the server's Service.
	// +required
	TargetRef TargetReference `json:"targetRef,omitzero"`

	// prefix is prepended to the server's tool and prompt names so that servers never
	// collide ("kube_" makes "pods_list" "kube_pods_list"). It cannot change once set.
	// +optional
	// +kubebuilder:validation:MaxLength=127
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9_]*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="prefix is immutable once set"
	Prefix string `json:"prefix,omitempty"`

	// path is the server's MCP endpoint path.
	// +optional
	// +default="/mcp"
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path,omitempty"`

	// credentialRef names a Secret whose key holds a credential for the server.
	// Accepted for compatibility; mcp-authz authenticates upstream calls with the
	// caller's exchanged token instead.
	// +optional
	CredentialRef *SecretReference `json:"credentialRef,omitempty"`

	// state Disabled removes the server and its tools while keeping the resource.
	// +optional
	// +default="Enabled"
	State ServerState `json:"state,omitempty"`

	// caCertSecretRef names a Secret holding a PEM CA bundle for the server.
	// Accepted for compatibility; not used by mcp-authz.
	// +optional
	CACertSecretRef *SecretReference `json:"caCertSecretRef,omitempty"`

	// tokenURLElicitation is accepted for compatibility; not used by mcp-authz.
	// +optional
	TokenURLElicitation *TokenURLElicitationConfig `json:"tokenURLElicitation,omitempty"`

	// userSpecificList is accepted for compatibility; not used by mcp-authz.
	// +optional
	UserSpecificList UserSpecificListPolicy `json:"userSpecificList,omitempty"`

	// category is accepted for compatibility; not used by mcp-authz.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	Category []string `json:"category,omitempty"`

	// hint is accepted for compatibility; not used by mcp-authz.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Hint string `json:"hint,omitempty"`

	// tags is accepted for compatibility; not used by mcp-authz.
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
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// namespace of the target; empty means the registration's namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
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
	Key string `json:"key,omitempty"`
}

// TokenURLElicitationConfig is accepted for compatibility; not used by mcp-authz.
type TokenURLElicitationConfig struct {
	// url of an external token page.
	// +optional
	// +kubebuilder:validation:Pattern=`^https?://`
	URL string `json:"url,omitempty"`
}

// MCPServerRegistrationStatus is what mcp-authz observed.
type MCPServerRegistrationStatus struct {
	// conditions: Ready is True when the server is registered; its reason says why not
	// (RouteNotFound, NoBackendRef, MultipleBackendRefs, BackendNotFound,
	// InvalidBackendRef, PrefixConflict, HostnameConflict, Invalid, Disabled).
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
