//go:build tools

// Package tools pins grpcurl for make bench and the walk-through.
package tools

import _ "github.com/fullstorydev/grpcurl/cmd/grpcurl"
