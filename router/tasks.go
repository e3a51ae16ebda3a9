package router

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/mcp-authz/mcp-authz/internal/taskid"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Tasks (the tasks extension, SEP-2663, and the tasks of 2025-11-25).
//
// A client never sees a server's own task id. When a server answers a
// tools/call with a task, the router gives the client a sealed id in its
// place (internal/taskid, sealed with the session keys, under additional
// data of its own): it names the caller that created the task (issuer and
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
// replica saw the caller create (taskState): a caller never sees another's
// task, and may miss its own created through another replica.

// codeTaskNotFound is what the tasks extension answers for an unknown task.
const codeTaskNotFound = codeInvalidParams

// taskRef is the task a call is about, opened from its sealed id.
type taskRef struct {
	srv  *registry.Server
	task taskid.Task
}

// taskState is what this replica remembers of the tasks it saw created:
// by caller, server and the server's id, the sealed id it gave the client.
// It serves tasks/list and names tasks in notifications that arrive
// outside the call that created them; bounded (CacheSize), per replica.
type taskState struct {
	created *lru[string]
}

func newTaskState(size int) *taskState { return &taskState{created: newLRU[string](size)} }

// taskKey names a task of a caller on a server.
func taskKey(issuer, subject, server, id string) string {
	return strconv.Itoa(len(issuer)) + ":" + issuer + strconv.Itoa(len(subject)) + ":" + subject + strconv.Itoa(len(server)) + ":" + server + "\x00" + id
}

// taskRequest serves tasks/get, tasks/update, tasks/cancel and tasks/result.
func (r *Router) taskRequest(w http.ResponseWriter, c *call) {
	if c.msg.Method == "tasks/result" && c.sess.stateless() {
		// Removed by the tasks extension: tasks/get carries the result.
		writeError(w, http.StatusOK, c.msg.ID, codeNoMethod, "method not found")
		return
	}
	ref, ok := r.openTask(c, c.msg.TaskID)
	if !ok {
		writeError(w, http.StatusOK, c.msg.ID, codeTaskNotFound, "task not found")
		return
	}
	if c.claims.Server != "" && (c.claims.Server != ref.task.Server || c.claims.Tool != ref.task.Tool) {
		// authz decided for another server or tool than the id was sealed
		// for: a forged route, or a broken assertion.
		writeError(w, http.StatusForbidden, c.msg.ID, codeInvalidRequest, "request did not pass authorization")
		return
	}
	c.task = ref
	body := mcpparse.Splice(c.body, c.msg.TaskIDSpan, mcpparse.AppendString(nil, ref.task.Upstream))
	r.forward(w, c, ref.srv, body, ref.task.Upstream)
}

// openTask opens a sealed task id of c's caller (the taskId of a task
// request, or one a subscription names): sealed by this router's keys, for
// this caller, for a server still registered whose prefixed tool is still
// the one the id routes by. ok is false for any other id.
func (r *Router) openTask(c *call, id string) (*taskRef, bool) {
	route, t, err := taskid.Open(r.sealer.AEADs(), id)
	if err != nil || t.Issuer != c.claims.Issuer || t.Subject != c.claims.Subject {
		return nil, false
	}
	srv, tool, ok := r.reg.Load().Resolve(route.Name)
	if !ok || srv.Name != t.Server || tool != t.Tool {
		return nil, false
	}
	return &taskRef{srv: srv, task: t}, true
}

// taskResult is result with the server's task ids replaced for the client:
// the CreateTaskResult of a tools/call (2026-07-28: resultType "task" and a
// taskId; 2025-11-25: a task object) gets a newly sealed id, the answer to
// a task request the id the client sent. A result that is neither is
// returned as it is.
func (r *Router) taskResult(c *call, result json.RawMessage) json.RawMessage {
	if len(result) < 2 || result[0] != '{' {
		return result
	}
	switch {
	case c.msg.Method == "tools/call":
		// Most results of tools/call are not tasks: only one that has the
		// member is read again. (A taskId spelt with escapes reaches the
		// client as the server wrote it: an id the router refuses.)
		if !bytes.Contains(result, taskIDKey) {
			return result
		}
		return r.sealCreated(c, result)
	case c.task != nil:
		return r.restoreTaskIDs(c, result)
	}
	return result
}

var taskIDKey = []byte(`"taskId"`)

// sealCreated seals the task id of a tools/call's CreateTaskResult.
func (r *Router) sealCreated(c *call, result json.RawMessage) json.RawMessage {
	f, err := mcpparse.Fields(result, r.answer, "resultType", "taskId", "task")
	if err != nil {
		return result
	}
	var span mcpparse.Span
	var id string
	switch {
	case string(f[0].Raw) == `"task"` && f[1].Raw != nil:
		id, err = mcpparse.String(f[1].Raw)
		span = mcpparse.Span{Start: f[1].Start, End: f[1].Start + len(f[1].Raw)}
	case f[2].Raw != nil && f[2].Raw[0] == '{':
		tf, ferr := mcpparse.Fields(f[2].Raw, r.answer, "taskId")
		if ferr != nil || tf[0].Raw == nil {
			return result
		}
		id, err = mcpparse.String(tf[0].Raw)
		start := f[2].Start + tf[0].Start
		span = mcpparse.Span{Start: start, End: start + len(tf[0].Raw)}
	default:
		return result
	}
	sealed := ""
	if err == nil && id != "" {
		sealed = r.sealNew(c, id)
	}
	// A task id that cannot be sealed reaches the client empty: never as
	// the server's own, and no request can name it.
	return json.RawMessage(mcpparse.Splice(result, span, mcpparse.AppendString(nil, sealed)))
}

// sealNew seals the server's id of a task the call's tool just created and
// remembers it; "" when it cannot.
func (r *Router) sealNew(c *call, upstreamID string) string {
	snap := r.reg.Load()
	srv, tool, ok := snap.Resolve(c.msg.Name)
	if c.claims.Server != "" {
		srv, ok = snap.Server(c.claims.Server)
		tool = c.claims.Tool
	}
	if !ok || tool == "" {
		return ""
	}
	route := taskid.Route{Name: c.msg.Name}
	if srv.Targets != nil {
		if arg, found := mcpparse.Argument(c.msg.Arguments, srv.Targets.Argument); found {
			route.Target, _ = mcpparse.String(arg)
		}
	}
	t := taskid.Task{Issuer: c.claims.Issuer, Subject: c.claims.Subject, Server: srv.Name, Tool: tool, Upstream: upstreamID, Issued: r.now().Unix()}
	id, err := taskid.Seal(r.sealer.AEADs()[0], route, t)
	if err != nil {
		r.log.Warn("task id not sealed", "server", srv.Name, "tool", tool, "error", err.Error())
		return ""
	}
	r.tasks.created.put(taskKey(t.Issuer, t.Subject, t.Server, upstreamID), id)
	return id
}

// restoreTaskIDs puts the client's sealed id back into the answer to a
// task request: its taskId (tasks/get, and tasks/cancel of 2025-11-25) and
// the related-task _meta of tasks/result. Another task's id there is
// blanked: the server's ids never reach the client.
func (r *Router) restoreTaskIDs(c *call, result json.RawMessage) json.RawMessage {
	f, err := mcpparse.Fields(result, r.answer, "taskId", "_meta")
	if err != nil {
		return result
	}
	var spans []mcpparse.Span
	if f[0].Raw != nil {
		spans = append(spans, mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)})
	}
	if f[1].Raw != nil && f[1].Raw[0] == '{' {
		if mf, err := mcpparse.Fields(f[1].Raw, r.answer, relatedTask); err == nil && mf[0].Raw != nil && mf[0].Raw[0] == '{' {
			if tf, err := mcpparse.Fields(mf[0].Raw, r.answer, "taskId"); err == nil && tf[0].Raw != nil {
				start := f[1].Start + mf[0].Start + tf[0].Start
				spans = append(spans, mcpparse.Span{Start: start, End: start + len(tf[0].Raw)})
			}
		}
	}
	// Spliced last to first, so that the earlier offsets hold.
	out := []byte(result)
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].Start < 0 || spans[i].End > len(out) {
			continue
		}
		id := ""
		if v, err := mcpparse.String(out[spans[i].Start:spans[i].End]); err == nil && v == c.task.task.Upstream {
			id = c.msg.TaskID
		}
		out = mcpparse.Splice(out, spans[i], mcpparse.AppendString(nil, id))
	}
	return out
}

// relatedTask is the _meta member that names a task a message belongs to
// (2025-11-25).
const relatedTask = "io.modelcontextprotocol/related-task"

var relatedTaskKey = []byte(relatedTask)

// taskMessage is a message a server sends the client during a call (on the
// call's stream or the GET stream) with the task ids in it as the client
// knows them, the sealed id of this call's task or of a task this replica
// saw the caller create (knownTask):
//
//   - notifications/tasks/status (2025-11-25) and notifications/tasks (the
//     tasks extension) name a task in params.taskId; one about a task the
//     router cannot name is dropped (ok false): they are optional;
//   - a request or notification that belongs to a task (2025-11-25: an
//     elicitation while the task needs input) names it in the related-task
//     _meta; a task the router cannot name is blanked there ("").
//
// A server's own task id never reaches the client. Other messages are
// returned as they are.
func (r *Router) taskMessage(c *call, srv *registry.Server, data []byte, m *mcpparse.Message) ([]byte, bool) {
	status := m.Method == "notifications/tasks/status" || m.Method == "notifications/tasks"
	if !status && !bytes.Contains(data, relatedTaskKey) {
		return data, true
	}
	pf, err := mcpparse.Fields(data, r.answer, "params")
	if err != nil || pf[0].Raw == nil || pf[0].Raw[0] != '{' {
		return data, !status
	}
	params, start := pf[0].Raw, pf[0].Start
	if !status {
		// params._meta[related-task] is the object naming the task.
		for _, key := range []string{"_meta", relatedTask} {
			f, err := mcpparse.Fields(params, r.answer, key)
			if err != nil || f[0].Raw == nil || f[0].Raw[0] != '{' {
				return data, true
			}
			params, start = f[0].Raw, start+f[0].Start
		}
	}
	f, err := mcpparse.Fields(params, r.answer, "taskId")
	if err != nil || f[0].Raw == nil {
		return data, !status
	}
	id, err := mcpparse.String(f[0].Raw)
	sealed, known := "", false
	if err == nil {
		sealed, known = r.knownTask(c, srv, id)
	}
	if status && !known {
		return nil, false
	}
	start += f[0].Start
	return mcpparse.Splice(data, mcpparse.Span{Start: start, End: start + len(f[0].Raw)}, mcpparse.AppendString(nil, sealed)), true
}

// knownTask is the sealed id c's caller knows srv's task id by: the task
// of c, or one this replica saw the caller create.
func (r *Router) knownTask(c *call, srv *registry.Server, id string) (string, bool) {
	if c.task != nil && c.task.srv.Name == srv.Name && c.task.task.Upstream == id {
		return c.msg.TaskID, true
	}
	return r.tasks.created.get(taskKey(c.claims.Issuer, c.claims.Subject, srv.Name, id))
}

// listTasks serves tasks/list of a 2025-11-25 session: the tasks of every
// server the session has an upstream session with on this replica, those
// this replica saw the caller create, with their sealed ids, in one page.
// A server that fails is left out, as from any aggregated list.
func (r *Router) listTasks(w http.ResponseWriter, c *call) {
	if c.sess.stateless() {
		// The tasks extension has none: a server cannot scope it.
		writeError(w, http.StatusOK, c.msg.ID, codeNoMethod, "method not found")
		return
	}
	ctx, cancel := context.WithTimeout(c.req.Context(), r.cfg.ListTimeout)
	defer cancel()
	servers := r.fanOut(ctx, c, "tasks/list")
	found := make([][]json.RawMessage, len(servers))
	var wg sync.WaitGroup
	for i := range servers {
		srv := &servers[i]
		up, ok := r.pool.Get(c.sess.key(), srv.Name)
		if !ok {
			continue
		}
		wg.Go(func() { found[i] = r.upstreamTasks(ctx, c, srv, up) })
	}
	wg.Wait()
	out := []byte(`{"tasks":[`)
	n := 0
	for _, tasks := range found {
		for _, t := range tasks {
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, t...)
			n++
		}
	}
	out = append(out, "]}"...)
	writeJSON(w, http.StatusOK, resultBody(c.msg.ID, out))
}

// upstreamTasks lists srv's tasks in up and returns those of the caller,
// with their sealed ids.
func (r *Router) upstreamTasks(ctx context.Context, c *call, srv *registry.Server, up upstreamSession) []json.RawMessage {
	auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
	if err != nil {
		return nil
	}
	var out []json.RawMessage
	cursor := ""
	for page := 0; page < catalog.MaxPages; page++ {
		params := []byte("{}")
		if cursor != "" {
			params = append(mcpparse.AppendString([]byte(`{"cursor":`), cursor), '}')
		}
		raw, _, err := r.up.Request(ctx, target(srv), upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}, "tasks/list", params)
		if err != nil {
			r.log.Debug("upstream tasks/list failed", "server", srv.Name, "error", err.Error())
			return out
		}
		f, err := mcpparse.Fields(raw, r.answer, "tasks", "nextCursor")
		if err != nil {
			return out
		}
		items, err := mcpparse.Elements(f[0].Raw, r.answer)
		if err != nil {
			return out
		}
		for _, it := range items {
			tf, err := mcpparse.Fields(it, r.answer, "taskId")
			if err != nil || tf[0].Raw == nil {
				continue
			}
			id, err := mcpparse.String(tf[0].Raw)
			if err != nil {
				continue
			}
			sealed, ok := r.tasks.created.get(taskKey(c.claims.Issuer, c.claims.Subject, srv.Name, id))
			if !ok {
				continue // not a task this replica saw the caller create
			}
			out = append(out, mcpparse.Splice(it, mcpparse.Span{Start: tf[0].Start, End: tf[0].Start + len(tf[0].Raw)}, mcpparse.AppendString(nil, sealed)))
		}
		cursor = ""
		if f[1].Raw != nil {
			cursor, _ = mcpparse.String(f[1].Raw)
		}
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
