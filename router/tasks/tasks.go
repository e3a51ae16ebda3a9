// Package tasks keeps the task ids the router gives clients in place of the
// ids MCP servers give their tasks (the tasks extension, SEP-2663, and the
// tasks of 2025-11-25): it seals them for the caller that created the task
// (internal/taskid, with the router's keys), opens them for that caller
// only, remembers on this replica which it gave whom (for tasks/list and
// for notifications outside the call that created a task), and finds and
// replaces task ids in the results and messages that carry them, so that a
// server's own id never reaches a client.
package tasks

import (
	"bytes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/mcp-authz/mcp-authz/internal/lru"
	"github.com/mcp-authz/mcp-authz/internal/taskid"
	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// RelatedTask is the _meta member that names the task a message belongs to
// (2025-11-25).
const RelatedTask = "io.modelcontextprotocol/related-task"

var (
	relatedTaskKey = []byte(RelatedTask)
	taskIDKey      = []byte(`"taskId"`)
)

// Caller is who a task belongs to: the subject of an issuer.
type Caller struct{ Issuer, Subject string }

// Table seals and opens the task ids of this replica's callers and
// remembers, by caller, server and the server's id, the sealed id it gave:
// bounded, per replica, so a caller may miss its own tasks created through
// another replica, never see another's.
type Table struct {
	aeads   []cipher.AEAD // the first seals, any opens
	created *lru.Cache[string, string]
}

// New returns a table of at most size remembered tasks that seals with
// aeads[0] and opens with any of aeads.
func New(size int, aeads []cipher.AEAD) (*Table, error) {
	if len(aeads) == 0 {
		return nil, errors.New("tasks: no key")
	}
	return &Table{aeads: aeads, created: lru.New[string, string](size)}, nil
}

// key names a task of a caller on a server.
func key(c Caller, server, id string) string {
	return strconv.Itoa(len(c.Issuer)) + ":" + c.Issuer + strconv.Itoa(len(c.Subject)) + ":" + c.Subject + strconv.Itoa(len(server)) + ":" + server + "\x00" + id
}

// Seal seals t, a task its caller just created, routed by route, and
// remembers the id for t's caller.
func (tb *Table) Seal(route taskid.Route, t taskid.Task) (string, error) {
	id, err := taskid.Seal(tb.aeads[0], route, t)
	if err != nil {
		return "", err
	}
	tb.created.Put(key(Caller{t.Issuer, t.Subject}, t.Server, t.Upstream), id)
	return id, nil
}

// Open opens id, a task id sealed for c; ok is false for any other id
// (forged, damaged, under a key no longer held, or another caller's).
func (tb *Table) Open(c Caller, id string) (taskid.Route, taskid.Task, bool) {
	route, t, err := taskid.Open(tb.aeads, id)
	if err != nil || t.Issuer != c.Issuer || t.Subject != c.Subject {
		return taskid.Route{}, taskid.Task{}, false
	}
	return route, t, true
}

// Known is the sealed id this replica gave c for server's task id.
func (tb *Table) Known(c Caller, server, id string) (string, bool) {
	return tb.created.Get(key(c, server, id))
}

// Created is result, a tools/call's, with the task id of a CreateTaskResult
// (2026-07-28: resultType "task" and a taskId; 2025-11-25: a task object)
// replaced by seal's answer for it, "" when seal has none: the server's own
// id never reaches the client, and no request can name an empty one. A
// result that is not a task is returned as it is (the same slice). (A
// taskId spelt with escapes reaches the client as the server wrote it: an
// id the router refuses.)
func Created(result []byte, opts mcpparse.Options, seal func(id string) string) []byte {
	if len(result) < 2 || result[0] != '{' || !bytes.Contains(result, taskIDKey) {
		return result
	}
	f, err := mcpparse.Fields(result, opts, "resultType", "taskId", "task")
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
		tf, ferr := mcpparse.Fields(f[2].Raw, opts, "taskId")
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
		sealed = seal(id)
	}
	return mcpparse.Splice(result, span, mcpparse.AppendString(nil, sealed))
}

// Restore is result, the answer to a task request for the server's task
// upstream, with sealed (the id the client sent) put back: in its taskId
// (tasks/get, and tasks/cancel of 2025-11-25) and the related-task _meta
// (tasks/result). Another task's id there is blanked. A result that is not
// an object is returned as it is.
func Restore(result []byte, opts mcpparse.Options, upstream, sealed string) []byte {
	if len(result) < 2 || result[0] != '{' {
		return result
	}
	f, err := mcpparse.Fields(result, opts, "taskId", "_meta")
	if err != nil {
		return result
	}
	var spans []mcpparse.Span
	if f[0].Raw != nil {
		spans = append(spans, mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)})
	}
	if f[1].Raw != nil && f[1].Raw[0] == '{' {
		if mf, err := mcpparse.Fields(f[1].Raw, opts, RelatedTask); err == nil && mf[0].Raw != nil && mf[0].Raw[0] == '{' {
			if tf, err := mcpparse.Fields(mf[0].Raw, opts, "taskId"); err == nil && tf[0].Raw != nil {
				start := f[1].Start + mf[0].Start + tf[0].Start
				spans = append(spans, mcpparse.Span{Start: start, End: start + len(tf[0].Raw)})
			}
		}
	}
	// Spliced last to first, so that the earlier offsets hold.
	out := result
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].Start < 0 || spans[i].End > len(out) {
			continue
		}
		id := ""
		if v, err := mcpparse.String(out[spans[i].Start:spans[i].End]); err == nil && v == upstream {
			id = sealed
		}
		out = mcpparse.Splice(out, spans[i], mcpparse.AppendString(nil, id))
	}
	return out
}

// Message is data, a message a server sends the client (a request or a
// notification of that method), with the task id in it as the
// client knows it (name's answer for the server's id):
//
//   - notifications/tasks/status (2025-11-25) and notifications/tasks (the
//     tasks extension) name a task in params.taskId; one about a task name
//     does not know is dropped (ok false): they are optional;
//   - a request or notification that belongs to a task (2025-11-25: an
//     elicitation while the task needs input) names it in the related-task
//     _meta; a task name does not know is blanked there ("").
//
// Other messages are returned as they are.
func Message(data []byte, method string, opts mcpparse.Options, name func(id string) (string, bool)) ([]byte, bool) {
	status := method == "notifications/tasks/status" || method == "notifications/tasks"
	if !status && !bytes.Contains(data, relatedTaskKey) {
		return data, true
	}
	pf, err := mcpparse.Fields(data, opts, "params")
	if err != nil || pf[0].Raw == nil || pf[0].Raw[0] != '{' {
		return data, !status
	}
	params, start := pf[0].Raw, pf[0].Start
	if !status {
		// params._meta[related-task] is the object naming the task.
		for _, key := range []string{"_meta", RelatedTask} {
			f, err := mcpparse.Fields(params, opts, key)
			if err != nil || f[0].Raw == nil || f[0].Raw[0] != '{' {
				return data, true
			}
			params, start = f[0].Raw, start+f[0].Start
		}
	}
	f, err := mcpparse.Fields(params, opts, "taskId")
	if err != nil || f[0].Raw == nil {
		return data, !status
	}
	id, err := mcpparse.String(f[0].Raw)
	sealed, known := "", false
	if err == nil {
		sealed, known = name(id)
	}
	if status && !known {
		return nil, false
	}
	start += f[0].Start
	return mcpparse.Splice(data, mcpparse.Span{Start: start, End: start + len(f[0].Raw)}, mcpparse.AppendString(nil, sealed)), true
}

// ListPage reads one page of a server's tasks/list result: the tasks name
// knows (by the server's id), each with its taskId replaced by name's
// answer, and the page's nextCursor ("" for the last). The others are left
// out: not a task this replica gave the caller.
func ListPage(result []byte, opts mcpparse.Options, name func(id string) (string, bool)) ([]json.RawMessage, string, error) {
	f, err := mcpparse.Fields(result, opts, "tasks", "nextCursor")
	if err != nil {
		return nil, "", err
	}
	items, err := mcpparse.Elements(f[0].Raw, opts)
	if err != nil {
		return nil, "", err
	}
	var out []json.RawMessage
	for _, it := range items {
		tf, err := mcpparse.Fields(it, opts, "taskId")
		if err != nil || tf[0].Raw == nil {
			continue
		}
		id, err := mcpparse.String(tf[0].Raw)
		if err != nil {
			continue
		}
		sealed, ok := name(id)
		if !ok {
			continue
		}
		out = append(out, mcpparse.Splice(it, mcpparse.Span{Start: tf[0].Start, End: tf[0].Start + len(tf[0].Raw)}, mcpparse.AppendString(nil, sealed)))
	}
	cursor := ""
	if f[1].Raw != nil {
		cursor, _ = mcpparse.String(f[1].Raw)
	}
	return out, cursor, nil
}
