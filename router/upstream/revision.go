package upstream

import (
	"bytes"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// WithResultType returns result with "resultType":"complete" added when it
// is an object without one (read with opts): every result of the stateless
// revision carries one, and a server of an earlier revision sends none.
func WithResultType(result []byte, opts mcpparse.Options) []byte {
	if len(result) < 2 || result[0] != '{' {
		return result
	}
	f, err := mcpparse.Fields(result, opts, "resultType")
	if err != nil || f[0].Raw != nil {
		return result
	}
	out := make([]byte, 0, len(result)+24)
	out = append(out, `{"resultType":"complete"`...)
	if !emptyObject(result[1:]) {
		out = append(out, ',')
	}
	return append(out, result[1:]...)
}

// RewriteParams returns body, a client's JSON-RPC request (read with
// opts), with its params rewritten for a server of the stateless revision
// (stateless: the stateless _meta, with the client's clientInfo and
// capabilities, unless the client sent it) or of an earlier one (without
// that _meta, which it never sees). A body it cannot read is returned as is.
func RewriteParams(body []byte, opts mcpparse.Options, stateless bool, clientInfo, capabilities []byte) []byte {
	f, err := mcpparse.Fields(body, opts, "params")
	if err != nil {
		return body
	}
	var p []byte
	if stateless {
		params := f[0].Raw
		if string(params) == "null" {
			params = nil
		}
		p = StatelessParams(params, clientInfo, capabilities)
	} else {
		if f[0].Raw == nil {
			return body
		}
		p = stripStateless(f[0].Raw)
	}
	if f[0].Raw == nil {
		// No params: add them as the last member.
		i := bytes.LastIndexByte(body, '}')
		out := make([]byte, 0, len(body)+len(p)+12)
		out = append(append(out, body[:i]...), `,"params":`...)
		out = append(append(out, p...), body[i:]...)
		return out
	}
	return mcpparse.Splice(body, mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)}, p)
}
