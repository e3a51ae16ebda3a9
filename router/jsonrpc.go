package router

import (
	"encoding/json"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// requestOptions is how a client's message is read: as authz reads it,
// except that an id may be any number, read by value (validID refuses the
// ones no answer could be matched to).
var requestOptions = mcpparse.Options{MaxBytes: maxRequestBytes, AnyNumberID: true}

// maxSafeID bounds integer ids: 2^53-1 (see mcpparse.AppendIDKey).
const maxSafeID = 1<<53 - 1

// validID accepts a JSON string or an integer within ±(2^53-1): an id whose
// answer can be matched by value.
func validID(id json.RawMessage) bool {
	var buf [64]byte
	_, ok := mcpparse.AppendIDKey(buf[:0], id)
	return ok
}

// idKey is the value of an id, so that ids spelled differently compare
// equal: "s" and the decoded string, or "n" and the integer in decimal
// (see mcpparse.AppendIDKey). ok is false for anything else.
func idKey(id json.RawMessage) (key string, ok bool) {
	var buf [64]byte
	k, ok := mcpparse.AppendIDKey(buf[:0], id)
	return string(k), ok
}

// sameID reports whether two ids have the same value (see idKey).
func sameID(a, b json.RawMessage) bool { return upstream.SameID(a, b) }

// JSON-RPC error codes the router answers with.
const (
	codeParse          = mcpparse.CodeParseError
	codeInvalidRequest = mcpparse.CodeInvalidRequest
	codeNoMethod       = -32601
	codeInvalidParams  = mcpparse.CodeInvalidParams
	codeInternal       = mcpparse.CodeInternalError
	codeHeaderMismatch = mcpparse.CodeHeaderMismatch
	// codeForbidden is a refusal, by policy or by a server's route, as
	// authz's.
	codeForbidden = -32003
	// codeRateLimited is a server's route limiting the caller (HTTP 429),
	// in the implementation-defined server-error range.
	codeRateLimited = -32000
)

// errorBody is a JSON-RPC error answer to id (null when unknown), the id
// written exactly as the client sent it.
func errorBody(id json.RawMessage, code int, msg string) []byte {
	return mcpparse.AppendError(make([]byte, 0, 64+len(id)+len(msg)), id, code, msg)
}

func resultBody(id json.RawMessage, result []byte) []byte {
	return answerBody(id, result, nil)
}

// answerBody is a JSON-RPC response to id with result or error, the id
// written exactly as given.
func answerBody(id, result, rpcErr json.RawMessage) []byte {
	return mcpparse.AppendResponse(make([]byte, 0, 32+len(id)+len(result)+len(rpcErr)), id, result, rpcErr)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	writeJSON(w, status, errorBody(id, code, msg))
}
