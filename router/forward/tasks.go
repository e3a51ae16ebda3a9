package forward

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/mcp-authz/mcp-authz/internal/taskid"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/tasks"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Tasks (the tasks extension, SEP-2663, and the tasks of 2025-11-25).
//
// A client never sees a server's own task id. When a server answers a
// tools/call with a task, the router gives the client a sealed id in its
// place (router/tasks over internal/taskid, sealed with the session keys,
// under additional data of its own): it names the caller that created the task (issuer and
// subject), the server, the tool, the target the tool was called on and
// the server's id. Every later task request carrying it (tasks/get,
// tasks/update, tasks/cancel, tasks/result) is opened here and sent to
// that server with the server's id put back; the answer, and the
// notifications about the task, go back with the sealed id. An id the
// router did not seal, sealed for another caller, whose tool is no longer
// the registry's, or that authz decided for another server or tool, is
// answered -32602 "task not found" (the same for all) and reaches no
// server. Like session ids, sealed task ids need no shared store: any
// replica with the keys serves them.
//
// tasks/list (2025-11-25 sessions) asks every server this session has an
// upstream session with on this replica and keeps only the tasks this
// replica saw the caller create (router/tasks' Table): a caller never sees another's
// task, and may miss its own created through another replica.

// taskOwner is who c's tasks belong to.
func (c *Call) taskOwner() tasks.Caller {
	return tasks.Caller{Issuer: c.Claims.Issuer, Subject: c.Claims.Subject}
}

// CodeTaskNotFound is what the tasks extension answers for an unknown task.
const CodeTaskNotFound = CodeInvalidParams

// taskRef is the task a call is about, opened from its sealed id.
type taskRef struct {
	srv  *registry.Server
	task taskid.Task
}

// TaskRequest serves tasks/get, tasks/update, tasks/cancel and tasks/result.
func (fw *Forwarder) TaskRequest(w http.ResponseWriter, c *Call) {
	if c.Msg.Method == "tasks/result" && c.Sess.Stateless() {
		// Removed by the tasks extension: tasks/get carries the result.
		WriteError(w, http.StatusOK, c.Msg.ID, CodeNoMethod, "method not found")
		return
	}
	ref, ok := fw.openTask(c, c.Msg.TaskID)
	if !ok {
		WriteError(w, http.StatusOK, c.Msg.ID, CodeTaskNotFound, "task not found")
		return
	}
	if c.Claims.Server != "" && (c.Claims.Server != ref.task.Server || c.Claims.Tool != ref.task.Tool) {
		// authz decided for another server or tool than the id was sealed
		// for: a forged route, or a broken assertion.
		WriteError(w, http.StatusForbidden, c.Msg.ID, CodeInvalidRequest, "request did not pass authorization")
		return
	}
	c.task = ref
	body := mcpparse.Splice(c.Body, c.Msg.TaskIDSpan, mcpparse.AppendString(nil, ref.task.Upstream))
	fw.Forward(w, c, ref.srv, body, ref.task.Upstream)
}

// openTask opens a sealed task id of c's caller (the taskId of a task
// request, or one a subscription names): sealed by this router's keys, for
// this caller, for a server still registered whose prefixed tool is still
// the one the id routes by. ok is false for any other id.
func (fw *Forwarder) openTask(c *Call, id string) (*taskRef, bool) {
	route, t, ok := fw.tasks.Open(c.taskOwner(), id)
	if !ok {
		return nil, false
	}
	srv, tool, ok := fw.reg.Load().Resolve(route.Name)
	if !ok || srv.Name != t.Server || tool != t.Tool {
		return nil, false
	}
	return &taskRef{srv: srv, task: t}, true
}

// taskResult is result with the server's task ids replaced for the client:
// the CreateTaskResult of a tools/call gets a newly sealed id (sealNew),
// the answer to a task request the id the client sent. A result that is
// neither is returned as it is.
func (fw *Forwarder) taskResult(c *Call, result json.RawMessage) json.RawMessage {
	switch {
	case c.Msg.Method == "tools/call":
		return tasks.Created(result, fw.answer, func(id string) string { return fw.sealNew(c, id) })
	case c.task != nil:
		return tasks.Restore(result, fw.answer, c.task.task.Upstream, c.Msg.TaskID)
	}
	return result
}

// sealNew seals the server's id of a task the call's tool just created and
// remembers it; "" when it cannot.
func (fw *Forwarder) sealNew(c *Call, upstreamID string) string {
	snap := fw.reg.Load()
	srv, tool, ok := snap.Resolve(c.Msg.Name)
	if c.Claims.Server != "" {
		srv, ok = snap.Server(c.Claims.Server)
		tool = c.Claims.Tool
	}
	if !ok || tool == "" {
		return ""
	}
	route := taskid.Route{Name: c.Msg.Name}
	if srv.Targets != nil {
		if arg, found := mcpparse.Argument(c.Msg.Arguments, srv.Targets.Argument); found {
			route.Target, _ = mcpparse.String(arg)
		}
	}
	t := taskid.Task{Issuer: c.Claims.Issuer, Subject: c.Claims.Subject, Server: srv.Name, Tool: tool, Upstream: upstreamID, Issued: fw.now().Unix()}
	id, err := fw.tasks.Seal(route, t)
	if err != nil {
		fw.log.Warn("task id not sealed", "server", srv.Name, "tool", tool, "error", err.Error())
		return ""
	}
	return id
}

// TaskMessage is a message a server sends the client during a call (on the
// call's stream or the GET stream) with the task ids in it as the client
// knows them (tasks.Message), the sealed id of this call's task or of a
// task this replica saw the caller create (knownTask); ok false drops it.
// A server's own task id never reaches the client.
func (fw *Forwarder) TaskMessage(c *Call, srv *registry.Server, data []byte, m *mcpparse.Message) ([]byte, bool) {
	return tasks.Message(data, m.Method, fw.answer, func(id string) (string, bool) { return fw.knownTask(c, srv, id) })
}

// knownTask is the sealed id c's caller knows srv's task id by: the task
// of c, or one this replica saw the caller create.
func (fw *Forwarder) knownTask(c *Call, srv *registry.Server, id string) (string, bool) {
	if c.task != nil && c.task.srv.Name == srv.Name && c.task.task.Upstream == id {
		return c.Msg.TaskID, true
	}
	return fw.tasks.Known(c.taskOwner(), srv.Name, id)
}

// ListTasks serves tasks/list of a 2025-11-25 session: the tasks of every
// server the session has an upstream session with on this replica, those
// this replica saw the caller create, with their sealed ids, in one page.
// A server that fails is left out, as from any aggregated list.
func (fw *Forwarder) ListTasks(w http.ResponseWriter, c *Call) {
	if c.Sess.Stateless() {
		// The tasks extension has none: a server cannot scope it.
		WriteError(w, http.StatusOK, c.Msg.ID, CodeNoMethod, "method not found")
		return
	}
	ctx, cancel := context.WithTimeout(c.Req.Context(), fw.cfg.ListTimeout)
	defer cancel()
	servers := fw.FanOut(ctx, c, "tasks/list")
	found := make([][]json.RawMessage, len(servers))
	var wg sync.WaitGroup
	for i := range servers {
		srv := &servers[i]
		up, ok := fw.pool.Get(c.Sess.Key(), srv.Name)
		if !ok {
			continue
		}
		wg.Go(func() { found[i] = fw.upstreamTasks(ctx, c, srv, up) })
	}
	wg.Wait()
	out := []byte(`{"tasks":[`)
	n := 0
	for _, list := range found {
		for _, t := range list {
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, t...)
			n++
		}
	}
	out = append(out, "]}"...)
	WriteJSON(w, http.StatusOK, ResultBody(c.Msg.ID, out))
}

// upstreamTasks lists srv's tasks in up and returns those of the caller,
// with their sealed ids.
func (fw *Forwarder) upstreamTasks(ctx context.Context, c *Call, srv *registry.Server, up upstream.Session) []json.RawMessage {
	auth, err := fw.UpstreamAuth(ctx, c.Auth, srv.Name)
	if err != nil {
		return nil
	}
	var out []json.RawMessage
	cursor := ""
	for range catalog.MaxPages {
		params := []byte("{}")
		if cursor != "" {
			params = append(mcpparse.AppendString([]byte(`{"cursor":`), cursor), '}')
		}
		raw, _, err := fw.up.Request(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}, "tasks/list", params)
		if err != nil {
			fw.log.Debug("upstream tasks/list failed", "server", srv.Name, "error", err.Error())
			return out
		}
		page, next, err := tasks.ListPage(raw, fw.answer, func(id string) (string, bool) {
			return fw.tasks.Known(c.taskOwner(), srv.Name, id) // not one this replica gave the caller: left out
		})
		if err != nil {
			return out
		}
		out = append(out, page...)
		cursor = next
		if cursor == "" {
			return out
		}
	}
	return out
}

// sameSlice reports whether a and b are the same bytes in memory: what
// resultFor returns when it changed nothing.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
