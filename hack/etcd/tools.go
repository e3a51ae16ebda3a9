//go:build tools

// Package tools pins etcd for envtest (hack/envtest.sh).
package tools

import _ "go.etcd.io/etcd/server/v3"
