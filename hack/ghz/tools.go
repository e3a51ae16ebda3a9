//go:build tools

// Package tools pins ghz for make bench and the walk-through.
package tools

import _ "github.com/bojand/ghz/cmd/ghz"
