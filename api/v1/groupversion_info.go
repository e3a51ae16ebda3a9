// Package v1 holds MCPServerRegistration, schema-compatible with Kuadrant mcp-gateway's mcp.kuadrant.io/v1.
//
// +kubebuilder:object:generate=true
// +groupName=mcp.kuadrant.io
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the types in this package.
	GroupVersion = schema.GroupVersion{Group: "mcp.kuadrant.io", Version: "v1"}

	// SchemeBuilder registers the types in this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
