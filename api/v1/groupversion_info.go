// Package v1 holds MCPServerRegistration, schema-compatible with Kuadrant mcp-gateway's mcp.kuadrant.io/v1.
//
// +kubebuilder:object:generate=true
// +groupName=mcp.kuadrant.io
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the types in this package.
	GroupVersion = schema.GroupVersion{Group: "mcp.kuadrant.io", Version: "v1"}

	// SchemeBuilder registers the types in this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types in this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the types of this package.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &MCPServerRegistration{}, &MCPServerRegistrationList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
