package forward

import (
	"encoding/json"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// privateScope is a resources/read result with its cacheScope (SEP-2549)
// made "private": the router let this caller read it by policy, which
// another caller's may not, so no cache shared across authorization
// contexts may keep it, whatever the server said. Every member that is
// cacheScope once folded is made so: a client decoding with encoding/json
// reads "cachescope" as cacheScope. A result without one is left as it is
// (clients assume no caching without ttlMs).
func (fw *Forwarder) privateScope(result json.RawMessage) json.RawMessage {
	if len(result) < 2 || result[0] != '{' {
		return result
	}
	names, err := mcpparse.Names(result, fw.answer)
	if err != nil {
		return result // read with fw.answer already: cannot happen
	}
	var scopes []string
	for _, n := range names {
		if mcpparse.FoldKey(n) == foldedCacheScope {
			scopes = append(scopes, n)
		}
	}
	if len(scopes) == 0 {
		return result
	}
	f, err := mcpparse.Fields(result, fw.answer, scopes...)
	if err != nil {
		return result
	}
	// Back to front, so that the offsets before each splice hold.
	for i := len(f) - 1; i >= 0; i-- {
		if string(f[i].Raw) != `"private"` {
			result = mcpparse.Splice(result, mcpparse.Span{Start: f[i].Start, End: f[i].Start + len(f[i].Raw)}, []byte(`"private"`))
		}
	}
	return result
}

// foldedCacheScope is cacheScope as mcpparse.FoldKey folds it.
var foldedCacheScope = mcpparse.FoldKey("cacheScope")

// paramsFor is body with its params rewritten for a server speaking
// version (up.Version; up.ID "" and the stateless revision: stateless): a
// stateless server gets the stateless _meta (a session's client's version,
// capabilities and clientInfo) unless the client sent it, a server of an
// earlier revision never sees it (see upstream.RewriteParams).
func (fw *Forwarder) paramsFor(c *Call, up upstream.Session, body []byte) []byte {
	modern := up.ID == "" && up.Version >= upstream.Stateless
	if modern == c.Sess.Stateless() {
		return body
	}
	return upstream.RewriteParams(body, RequestOptions, modern, c.Sess.Info, c.Sess.Caps)
}

// resultFor is an upstream's result as the client's revision wants it:
// task ids sealed (taskResult), with a resultType for a stateless client.
func (fw *Forwarder) resultFor(c *Call, result json.RawMessage) json.RawMessage {
	result = fw.taskResult(c, result)
	if c.Msg.Method == "resources/read" && fw.auth != nil {
		result = fw.privateScope(result)
	}
	if result == nil || !c.Sess.Stateless() {
		return result
	}
	return upstream.WithResultType(result, fw.answer)
}
