package mcpparse

import "errors"

// JSON-RPC 2.0 error codes used by this package and its callers.
const (
	CodeParseError     = -32700 // the body is not well-formed JSON
	CodeInvalidRequest = -32600 // well-formed JSON, but not a valid JSON-RPC message
	CodeInvalidParams  = -32602 // the params of a known MCP method are wrong
	CodeInternalError  = -32603 // any error that does not come from this package
	// CodeHeaderMismatch answers an Mcp-Method or Mcp-Name header that
	// disagrees with the body (MCP 2026-07-28).
	CodeHeaderMismatch = -32020
)

// Error is a JSON-RPC error. The sentinels below are the only values of it
// that this package returns, wrapped with detail; branch with errors.Is and
// read the code with Code.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return "mcpparse: " + e.Message }

// Sentinel errors. Several share a code; errors.Is tells them apart.
var (
	ErrParse          = &Error{Code: CodeParseError, Message: "parse error"}
	ErrInvalidRequest = &Error{Code: CodeInvalidRequest, Message: "invalid request"}
	ErrInvalidParams  = &Error{Code: CodeInvalidParams, Message: "invalid params"}
	ErrBatch          = &Error{Code: CodeInvalidRequest, Message: "batch not supported"}
	ErrTooLarge       = &Error{Code: CodeInvalidRequest, Message: "request too large"}
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
