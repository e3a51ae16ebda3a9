// Package manifests holds the Kubernetes, Istio and Envoy configuration mcp-authz ships; its tests validate them.
package manifests
