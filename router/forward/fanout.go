package forward

import (
	"context"

	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// FanOut returns the servers a request the router passes to every server
// of a session (logging/setLevel, notifications/roots/list_changed) may
// reach: those for which the policy allows method with mcp.server alone, as
// Authorizer.Visible decides a policy.Target with Method. authz decides the
// request itself before the router sees it, with no server; this is the
// decision per server it would reach. Any failure reaches none.
func (fw *Forwarder) FanOut(ctx context.Context, c *Call, method string) []registry.Server {
	servers := fw.reg.Load().Servers()
	if fw.auth == nil || len(servers) == 0 {
		return servers
	}
	targets := make([]policy.Target, len(servers))
	for i := range servers {
		targets[i] = policy.Target{Server: servers[i].Name, Method: method}
	}
	vis, err := fw.auth.Visible(ctx, c.Auth, targets)
	if err != nil || len(vis) != len(servers) {
		fw.log.Info("router: "+method+" reaches no server", "reason", "policy unavailable")
		return nil
	}
	allowed := servers[:0:0]
	for i, ok := range vis {
		if ok {
			allowed = append(allowed, servers[i])
		}
	}
	return allowed
}
