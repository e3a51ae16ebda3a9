package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	mcpv1 "github.com/mcp-authz/mcp-authz/api/v1"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:deprecatedversion:warning="mcp.kuadrant.io/v1alpha1 MCPServerRegistration is deprecated; use mcp.kuadrant.io/v1"
// +kubebuilder:resource:scope=Namespaced,shortName=mcpsr
// +kubebuilder:printcolumn:name="Prefix",type="string",JSONPath=".spec.prefix"
// +kubebuilder:printcolumn:name="Target",type="string",JSONPath=".spec.targetRef.name"
// +kubebuilder:printcolumn:name="Path",type="string",JSONPath=".spec.path"
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="Reason",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].reason"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// MCPServerRegistration is mcp.kuadrant.io/v1 MCPServerRegistration served
// under v1alpha1: the same schema, stored as v1, so the API server converts
// between them by changing apiVersion alone.
type MCPServerRegistration struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the server.
	// +optional
	Spec mcpv1.MCPServerRegistrationSpec `json:"spec,omitempty"`

	// status is written by the mcp-authz leader.
	// +optional
	Status mcpv1.MCPServerRegistrationStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// MCPServerRegistrationList is a list of MCPServerRegistration.
type MCPServerRegistrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MCPServerRegistration `json:"items"`
}
