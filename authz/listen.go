package authz

import (
	"context"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// maxListenURIs bounds the resource URIs of one subscriptions/listen: each
// is decided (and its server's token obtained) on its own.
const maxListenURIs = 100

// decideListen decides subscriptions/listen (MCP 2026-07-28) like the reads
// it leads to: each URI of params.notifications.resourceSubscriptions is
// decided exactly as a resources/read of that URI would be (its server, the
// token for it, the policy with mcp.method "resources/read"), and one that
// is denied, or that no server owns, denies the whole request with the
// read's denial (403 resource_denied), so that nothing of it opens. The
// list_changed parts lead to lists, which the router filters per caller:
// they need no decision here. It returns nil when the request may pass, and
// 400 for a notifications filter that is not what the revision defines.
func (s *Server) decideListen(ctx context.Context, c *call, m *mcpparse.Message) *Decision {
	uris, ok := listenURIs(m.Params, s.cfg.MaxBodyBytes)
	if !ok {
		d := deny(http.StatusBadRequest, ReasonInvalidRequest, mcpparse.CodeInvalidParams)
		d.ID, d.method = m.ID, m.Method
		return d
	}
	for _, uri := range uris {
		read := &mcpparse.Message{Kind: mcpparse.KindRequest, Method: "resources/read", ID: m.ID, URI: uri}
		if d := s.decideMessage(ctx, c, read); !d.Allow {
			d.ID, d.method = m.ID, m.Method
			return d
		}
	}
	return nil
}

// listenURIs reads params.notifications.resourceSubscriptions: absent or
// null is none; anything but an array of at most maxListenURIs non-empty
// strings is refused (ok false), as is a notifications member that is
// missing or not an object.
func listenURIs(params []byte, maxBytes int) (uris []string, ok bool) {
	if params == nil {
		return nil, false
	}
	o := mcpparse.Options{MaxBytes: maxBytes}
	f, err := mcpparse.Fields(params, o, "notifications")
	if err != nil || f[0].Raw == nil {
		return nil, false
	}
	f, err = mcpparse.Fields(f[0].Raw, o, "resourceSubscriptions")
	if err != nil {
		return nil, false
	}
	if f[0].Raw == nil || string(f[0].Raw) == "null" {
		return nil, true
	}
	raws, err := mcpparse.Elements(f[0].Raw, o)
	if err != nil || len(raws) > maxListenURIs {
		return nil, false
	}
	for _, r := range raws {
		uri, err := mcpparse.String(r)
		if err != nil || uri == "" {
			return nil, false
		}
		uris = append(uris, uri)
	}
	return uris, true
}
