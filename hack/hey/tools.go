//go:build tools

// Package tools pins hey, the HTTP load tool of make bench.
package tools

import _ "github.com/rakyll/hey"
