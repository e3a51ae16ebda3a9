package authz

import (
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
)

// targeted reports whether a method names one tool, prompt or resource of one
// server, and so is exchanged for and decided by policy.
func targeted(method string) bool {
	switch method {
	case "tools/call", "prompts/get", "resources/read", "resources/subscribe", "resources/unsubscribe":
		return true
	}
	return false
}

// target finds the server a message is for and the name it has there.
// ok is false when a targeted message names no registered server, or when
// the route it came on names none.
func (s *Server) target(c *call, m *mcpparse.Message) (srv *registry.Server, name string, ok bool) {
	if c.attached && c.route == nil {
		return nil, "", false
	}
	if m.Kind != mcpparse.KindRequest || !targeted(m.Method) {
		return nil, "", true
	}
	if c.attached {
		return c.route, m.Name, true
	}
	snap := c.snap
	if m.URI != "" {
		srv, found := snap.ResolveURI(m.URI)
		// A resource no registration claims is routed by the router, which
		// knows it from the lists; it cannot get a token of its own.
		return srv, "", found || s.xchg == nil
	}
	srv, name, found := snap.Resolve(m.Name)
	return srv, name, found
}

// routeServer is the server of a per-route attachment: named by the context
// extension, or registered for the request's host. attached is false when
// authz sits in front of the router.
func routeServer(snap *registry.Snapshot, r *Request) (srv *registry.Server, attached bool) {
	if name, ok := r.ContextExtensions[ContextExtensionServer]; ok {
		srv, _ := snap.Server(name)
		return srv, true
	}
	if srv, ok := snap.ByHost(r.Host); ok {
		return srv, true
	}
	return nil, false
}
