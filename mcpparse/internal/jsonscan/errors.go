package jsonscan

// JSON-RPC 2.0 error codes of the errors the scanner reports.
const (
	CodeParseError     = -32700 // the body is not well-formed JSON
	CodeInvalidRequest = -32600 // well-formed JSON, but not a valid JSON-RPC message
)

// Error is a JSON-RPC error (mcpparse.Error). Branch with errors.Is on the
// sentinels.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return "mcpparse: " + e.Message }

// Sentinel errors the scanner wraps with detail: malformed JSON, a duplicate
// key or nesting too deep, an input over the limit.
var (
	ErrParse          = &Error{Code: CodeParseError, Message: "parse error"}
	ErrInvalidRequest = &Error{Code: CodeInvalidRequest, Message: "invalid request"}
	ErrTooLarge       = &Error{Code: CodeInvalidRequest, Message: "request too large"}
)
