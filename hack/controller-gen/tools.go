//go:build tools

// Package tools pins controller-gen (hack/manifests.sh).
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
