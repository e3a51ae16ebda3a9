package mcpparse

import (
	"errors"

	"github.com/mcp-authz/mcp-authz/mcpparse/internal/jsonscan"
)

// JSON-RPC 2.0 error codes used by this package and its callers.
const (
	CodeParseError     = jsonscan.CodeParseError     // the body is not well-formed JSON
	CodeInvalidRequest = jsonscan.CodeInvalidRequest // well-formed JSON, but not a valid JSON-RPC message
	CodeInvalidParams  = -32602                      // the params of a known MCP method are wrong
	CodeInternalError  = -32603                      // any error that does not come from this package
	// CodeHeaderMismatch answers an Mcp-Method or Mcp-Name header that
	// disagrees with the body (MCP 2026-07-28).
	CodeHeaderMismatch = -32020
)

// Error is a JSON-RPC error. The sentinels below are the only values of it
// that this package returns, wrapped with detail; branch with errors.Is and
// read the code with Code.
type Error = jsonscan.Error

// Sentinel errors. Several share a code; errors.Is tells them apart.
var (
	ErrParse          = jsonscan.ErrParse
	ErrInvalidRequest = jsonscan.ErrInvalidRequest
	ErrInvalidParams  = &Error{Code: CodeInvalidParams, Message: "invalid params"}
	ErrBatch          = &Error{Code: CodeInvalidRequest, Message: "batch not supported"}
	ErrTooLarge       = jsonscan.ErrTooLarge
)

// Code returns the JSON-RPC code of an error from this package,
// CodeInternalError for any other error, and 0 for nil.
func Code(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternalError
}
