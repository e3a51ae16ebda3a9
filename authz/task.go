package authz

import (
	"context"

	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/internal/taskid"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// decideTask answers a request about one task (tasks/get, tasks/update,
// tasks/cancel, tasks/result; mcpparse.TaskMethod): every one is decided by
// policy, with mcp.task naming the server running the task, the tool whose
// call created it and the method.
//
// In front of the router, the task id is one the router sealed
// (internal/taskid): its route, the prefixed tool and the target it was
// called on, is read here without a key and resolved in the registry like
// a tools/call's name; the router opens the id and refuses it unless it was
// sealed for this caller, this server and this tool (the assertion names
// both). So a route changed by the client fails at the router, and an id of
// another shape, or whose tool is no longer registered, is denied here:
// neither reaches a server. Attached to a server's own route, the id is the
// server's and the tool unknown ("").
func (s *Server) decideTask(ctx context.Context, c *call, m *mcpparse.Message) *Decision {
	srv, tool, targetName, ok := s.taskTarget(c, m)
	if !ok {
		return forbidden(m, "", "unknown task").about(m, nil, "")
	}
	name, t, known := srv.Target(targetName)
	if !known {
		return forbidden(m, "", "unknown target").about(m, srv, tool)
	}
	var tok *exchange.Token
	if srv.Credential != nil || (s.xchg != nil && c.caller != nil) {
		var err error
		if tok, err = s.tokenFor(ctx, c.raw, c.caller, srv, name, t); err != nil {
			d := exchangeDenial(err)
			d.profile, d.target, d.ID = profileName(srv, t), name, m.ID
			if d.Reason == ReasonToolDenied {
				d.Reason = ReasonTaskDenied
			}
			return d.about(m, srv, tool)
		}
	}
	in := s.input(c, m, srv, "", tok)
	in.MCP.Task = &policy.Task{Server: srv.Name, Tool: tool, Method: m.Method}
	if pd := s.policy.Decide(ctx, in); !pd.Allow {
		return s.policyDenial(c, m, pd, tok).about(m, srv, tool)
	}
	d := s.allowMessage(c, m, srv, tool, tok)
	// The assertion names the tool: the router forwards only a task that
	// tool of this server created.
	d.name = tool
	return d
}

// taskTarget is the server and tool of m's task and the target the tool was
// called on. ok is false for a task of no registered tool.
func (s *Server) taskTarget(c *call, m *mcpparse.Message) (srv *registry.Server, tool, target string, ok bool) {
	if c.attached {
		return c.route, "", "", c.route != nil
	}
	r, ok := taskid.RouteOf(m.TaskID)
	if !ok {
		return nil, "", "", false
	}
	srv, tool, ok = c.snap.Resolve(r.Name)
	if !ok || tool == "" {
		return nil, "", "", false
	}
	return srv, tool, r.Target, true
}
