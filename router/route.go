package router

import (
	"net/http"
	"strings"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/forward"
)

// callNamed forwards tools/call and prompts/get to their server, with the
// prefix stripped. The server and the unprefixed name are the ones authz
// resolved and signed in the assertion (bound to this body): the registry
// is asked only for the server's URL. The new name is spliced into the body
// where the prefixed one was; nothing else of it is decoded or re-encoded.
// A request whose assertion names no server (authz without the registry)
// is resolved here by its prefix.
func (r *Router) callNamed(w http.ResponseWriter, c *forward.Call) {
	srv, body, name, ok := r.resolveNamed(w, c)
	if !ok {
		return
	}
	if c.Msg.Method == "tools/call" && !r.checkParams(w, c, srv, name) {
		return
	}
	r.fwd.Forward(w, c, srv, body, name)
}

// resolveNamed finds the server of a prefixed name (params.name, or
// params.ref.name of completion/complete) and returns the body with the
// unprefixed name spliced in; on failure it answers and reports false.
func (r *Router) resolveNamed(w http.ResponseWriter, c *forward.Call) (*registry.Server, []byte, string, bool) {
	snap := r.reg.Load()
	var (
		srv  *registry.Server
		name string
		ok   bool
	)
	if c.Claims.Server != "" {
		srv, ok = snap.Server(c.Claims.Server)
		name = c.Claims.Tool
		// The assertion is about this body: a name that is not the
		// server's prefix and the tool is a forged or broken assertion.
		if ok && (len(c.Msg.Name) != len(srv.Prefix)+len(name) || !strings.HasPrefix(c.Msg.Name, srv.Prefix) || !strings.HasSuffix(c.Msg.Name, name)) {
			forward.WriteError(w, http.StatusForbidden, c.Msg.ID, forward.CodeInvalidRequest, "request did not pass authorization")
			return nil, nil, "", false
		}
	} else {
		srv, name, ok = snap.Resolve(c.Msg.Name)
	}
	if !ok || name == "" {
		forward.WriteError(w, http.StatusOK, c.Msg.ID, forward.CodeInvalidParams, "unknown name: "+c.Msg.Name)
		return nil, nil, "", false
	}
	body := c.Body
	if name != c.Msg.Name {
		body = mcpparse.Splice(c.Body, c.Msg.NameSpan, mcpparse.AppendString(make([]byte, 0, len(name)+2), name))
	}
	return srv, body, name, true
}

// readResource forwards resources/read to the server owning the URI.
func (r *Router) readResource(w http.ResponseWriter, c *forward.Call) {
	srv, ok := r.resourceOwner(c, c.Msg.URI)
	if !ok {
		forward.WriteError(w, http.StatusOK, c.Msg.ID, -32002, "resource not found")
		return
	}
	r.fwd.Forward(w, c, srv, c.Body, c.Msg.URI)
}

// resourceOwner finds the server of a URI: by the registry's resource
// prefixes, else by the servers' resource lists, else by the literal start
// (up to the first '{') of their URI templates, the longest winning.
func (r *Router) resourceOwner(c *forward.Call, uri string) (*registry.Server, bool) {
	snap := r.reg.Load()
	if srv, ok := snap.ResolveURI(uri); ok {
		return srv, true
	}
	for _, it := range r.cat.Items(c.Req.Context(), catalog.Resources, c.Caller()) {
		if it.Name == uri {
			return snap.Server(it.Server)
		}
	}
	best, owner := -1, ""
	for _, it := range r.cat.Items(c.Req.Context(), catalog.Templates, c.Caller()) {
		lit, _, _ := strings.Cut(it.Name, "{")
		if lit != "" && strings.HasPrefix(uri, lit) && len(lit) > best {
			best, owner = len(lit), it.Server
		}
	}
	if owner == "" {
		return nil, false
	}
	return snap.Server(owner)
}
