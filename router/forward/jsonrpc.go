package forward

import (
	"encoding/json"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// MaxRequestBytes bounds a client's request body.
const MaxRequestBytes = 4 << 20

// RequestOptions is how a client's message is read: as authz reads it,
// except that an id may be any number, read by value (ValidID refuses the
// ones no answer could be matched to).
var RequestOptions = mcpparse.Options{MaxBytes: MaxRequestBytes, AnyNumberID: true}

// ValidID accepts a JSON string or an integer within ±(2^53-1): an id whose
// answer can be matched by value.
func ValidID(id json.RawMessage) bool {
	var buf [64]byte
	_, ok := mcpparse.AppendIDKey(buf[:0], id)
	return ok
}

// JSON-RPC error codes the router answers with.
const (
	CodeParse          = mcpparse.CodeParseError
	CodeInvalidRequest = mcpparse.CodeInvalidRequest
	CodeNoMethod       = -32601
	CodeInvalidParams  = mcpparse.CodeInvalidParams
	CodeInternal       = mcpparse.CodeInternalError
	CodeHeaderMismatch = mcpparse.CodeHeaderMismatch
	// CodeForbidden is a refusal, by policy or by a server's route, as
	// authz's.
	CodeForbidden = -32003
	// CodeRateLimited is a server's route limiting the caller (HTTP 429),
	// in the implementation-defined server-error range.
	CodeRateLimited = -32000
)

// ErrorBody is a JSON-RPC error answer to id (null when unknown), the id
// written exactly as the client sent it.
func ErrorBody(id json.RawMessage, code int, msg string) []byte {
	return mcpparse.AppendError(make([]byte, 0, 64+len(id)+len(msg)), id, code, msg)
}

func ResultBody(id json.RawMessage, result []byte) []byte {
	return AnswerBody(id, result, nil)
}

// AnswerBody is a JSON-RPC response to id with result or error, the id
// written exactly as given.
func AnswerBody(id, result, rpcErr json.RawMessage) []byte {
	return mcpparse.AppendResponse(make([]byte, 0, len(`{"jsonrpc":"2.0","id":null,"result":}`)+len(id)+len(result)+len(rpcErr)), id, result, rpcErr)
}

// jsonType is the Content-Type of every JSON answer: one slice, never
// written to, shared by all rather than one allocated per answer.
var jsonType = []string{"application/json"}

// WriteJSON answers with status and body as application/json.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away: nothing to do
}

func WriteError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	WriteJSON(w, status, ErrorBody(id, code, msg))
}
