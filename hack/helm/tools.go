//go:build tools

// Package tools pins helm for make helm-lint and the chart tests.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
