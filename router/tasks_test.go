package router

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/seal"
	"github.com/mcp-authz/mcp-authz/internal/taskid"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/tasks"
)

// tasksLayer is the part of a tasks-capable server that go-sdk v1.8.0
// cannot run: it implements neither the tasks extension nor the tasks of
// 2025-11-25 (no task methods, no CreateTaskResult). It sits in front of a
// real go-sdk server of one generation (generationServer's), which serves
// initialize, server/discover, tools/list and every other call, and answers
// the task methods and calls of the tool "job" (registered in the go-sdk
// server too, so that it is listed) as such a server would. It records the
// task requests it gets.
type tasksLayer struct {
	gen  string // "legacy" (2025-11-25 tasks) or "modern" (the extension)
	next http.Handler

	mu    sync.Mutex
	n     int
	tasks map[string]bool
	got   []upstreamTaskRequest
	sse   bool // answer tasks/get on an SSE stream, with notifications
}

// upstreamTaskRequest is a task request as the server got it.
type upstreamTaskRequest struct {
	method, taskID, mcpName, auth string
}

const taskTimes = `"createdAt":"2026-11-29T10:00:00Z","lastUpdatedAt":"2026-11-29T10:00:00Z"`

func tasksServer(t *testing.T, gen string) (*httptest.Server, *tasksLayer) {
	opts := &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25", "2025-06-18"}}
	if gen == "modern" {
		opts = &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "tasks-" + gen, Version: "1"}, opts)
	mcp.AddTool(s, &mcp.Tool{Name: "job"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text("not reached: the tasks layer answers job"), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return text(in.Text), nil, nil
	})
	l := &tasksLayer{gen: gen, tasks: map[string]bool{"up-foreign": true},
		next: mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: gen == "modern", JSONResponse: true})}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	return srv, l
}

// stream answers id with result on an SSE stream, after a status
// notification about each of ids and an elicitation that belongs to
// each of related (the related-task _meta of 2025-11-25).
func (l *tasksLayer) stream(w http.ResponseWriter, id json.RawMessage, result string, ids []string, related ...string) {
	notify := "notifications/tasks/status"
	if l.gen == "modern" {
		notify = "notifications/tasks"
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, tid := range ids {
		fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":%q,\"params\":{\"taskId\":%q,\"status\":\"working\",%s}}\n\n", notify, tid, taskTimes)
	}
	for i, tid := range related {
		fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"elicitation/create\",\"params\":{\"message\":\"name?\",\"requestedSchema\":{\"type\":\"object\"},\"_meta\":{%q:{\"taskId\":%q}}}}\n\n", 100+i, tasks.RelatedTask, tid)
	}
	fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%s}\n\n", id, result)
}

func (l *tasksLayer) requests() []upstreamTaskRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]upstreamTaskRequest(nil), l.got...)
}

func (l *tasksLayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name      string          `json:"name"`
			TaskID    string          `json:"taskId"`
			Task      json.RawMessage `json:"task"`
			Arguments echoIn          `json:"arguments"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &m)
	isJob := m.Method == "tools/call" && m.Params.Name == "job"
	if !isJob && !strings.HasPrefix(m.Method, "tasks/") {
		r.Body = io.NopCloser(bytes.NewReader(body))
		l.next.ServeHTTP(w, r)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !isJob {
		l.got = append(l.got, upstreamTaskRequest{m.Method, m.Params.TaskID, r.Header.Get("Mcp-Name"), r.Header.Get("Authorization")})
	}
	modern := l.gen == "modern"
	answer := func(result string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, m.ID, result)
	}
	if isJob {
		l.n++
		id := fmt.Sprintf("up-%d", l.n)
		l.tasks[id] = true
		res := `{"task":{"taskId":"` + id + `","status":"working",` + taskTimes + `,"ttl":60000}}`
		if modern {
			res = `{"resultType":"task","taskId":"` + id + `","status":"working",` + taskTimes + `,"ttlMs":60000}`
		}
		if m.Params.Arguments.Text != "sse" {
			answer(res)
			return
		}
		// Notifications about the caller's first task, about the task
		// being created and about one of another caller, then the answer.
		l.stream(w, m.ID, res, []string{"up-1", id, "up-foreign"})
		return
	}
	if l.sse && l.tasks[m.Params.TaskID] && m.Method == "tasks/get" {
		l.stream(w, m.ID, `{"resultType":"complete","taskId":"`+m.Params.TaskID+`","status":"working",`+taskTimes+`,"ttl":60000}`,
			[]string{m.Params.TaskID, "up-foreign"}, m.Params.TaskID, "up-foreign")
		return
	}
	if m.Method == "tasks/list" {
		var items []string
		for id := range l.tasks {
			items = append(items, `{"taskId":"`+id+`","status":"working",`+taskTimes+`,"ttl":60000}`)
		}
		answer(`{"tasks":[` + strings.Join(items, ",") + `]}`)
		return
	}
	if !l.tasks[m.Params.TaskID] {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"Failed to retrieve task: Task not found"}}`, m.ID)
		return
	}
	id := `"taskId":"` + m.Params.TaskID + `"`
	switch {
	case m.Method == "tasks/get" && modern:
		answer(`{"resultType":"complete",` + id + `,"status":"completed",` + taskTimes + `,"ttlMs":60000,"result":{"content":[{"type":"text","text":"done"}]}}`)
	case m.Method == "tasks/get":
		answer(`{` + id + `,"status":"completed",` + taskTimes + `,"ttl":60000}`)
	case m.Method == "tasks/cancel" && !modern:
		answer(`{` + id + `,"status":"cancelled",` + taskTimes + `,"ttl":60000}`)
	case m.Method == "tasks/result":
		answer(`{"content":[{"type":"text","text":"done"}],"_meta":{"io.modelcontextprotocol/related-task":{` + id + `}}}`)
	default: // tasks/cancel, tasks/update of the extension: an ack
		answer(`{"resultType":"complete"}`)
	}
}

// send posts body to the router with an assertion of claims (the body hash
// and method added) and mod's changes.
func send(t *testing.T, e *env, claims assertion.Claims, sid, body string, mod func(*http.Request)) raw {
	t.Helper()
	var m struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal([]byte(body), &m)
	claims.Method, claims.BodyHash = m.Method, assertion.BodyHash([]byte(body))
	if claims.Issuer == "" {
		claims.Issuer = testIssuer
	}
	v, err := assertion.NewSigner(e.key).Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	return doAs(t, e.front.URL, e.key, http.MethodPost, sid, claims.Issuer, claims.Subject, body, func(r *http.Request) {
		r.Header.Set(assertion.Header, v)
		if mod != nil {
			mod(r)
		}
	})
}

// taskAnswer is a JSON-RPC answer, read from JSON or from the last event
// of an SSE stream.
type taskAnswer struct {
	Result map[string]json.RawMessage `json:"result"`
	Error  *struct {
		Code int `json:"code"`
	} `json:"error"`
}

func readTaskAnswer(t *testing.T, r raw) taskAnswer {
	t.Helper()
	body := r.body
	if i := strings.LastIndex(body, "data: "); i >= 0 {
		body = strings.TrimSpace(body[i+len("data: "):])
	}
	var a taskAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("answer %d %q: %v", r.status, r.body, err)
	}
	return a
}

func str(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return s
}

const tasksCaps = `"io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}`

// statelessTask is a 2026-07-28 request with params p and the tasks
// extension declared.
func statelessTask(method, p string) string {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` + tasksCaps + `,"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"}}`
	return `{"jsonrpc":"2.0","id":9,"method":"` + method + `","params":{` + p + `,` + meta + `}}`
}

func headers2026(method, name string) func(*http.Request) {
	return statelessHeaders2026(method, name, "2026-07-28")
}

// TestTasksStateless: a task of a server of the tasks extension, created by
// a 2026-07-28 client's tools/call, reaches the client under a sealed id;
// tasks/get, update and cancel with that id reach the server that created
// it with its own id (in params.taskId and Mcp-Name) and the token for that
// server, and the answer names the task by the sealed id. Every id that is
// not the caller's own sealed one gets -32602 and reaches no server.
func TestTasksStateless(t *testing.T) {
	up, layer := tasksServer(t, "modern")
	other, _ := tasksServer(t, "modern")
	servers := []registry.Server{
		{Name: "ns/tasks", Prefix: "t_", URL: up.URL},
		{Name: "ns/other", Prefix: "o_", URL: other.URL},
	}
	e := newEnv(t, nil, servers...)
	alice := assertion.Claims{Subject: "alice"}

	create := func(t *testing.T, claims assertion.Claims, tool string) string {
		t.Helper()
		r := send(t, e, claims, "", statelessTask("tools/call", `"name":"`+tool+`","arguments":{"text":"go"}`), headers2026("tools/call", tool))
		a := readTaskAnswer(t, r)
		if r.status != http.StatusOK || a.Error != nil || str(t, a.Result["resultType"]) != "task" {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := str(t, a.Result["taskId"])
		if !strings.HasPrefix(id, taskid.Prefix) || strings.Contains(r.body, "up-") {
			t.Fatalf("task id %q, body %s: want a sealed id and no server id", id, r.body)
		}
		return id
	}
	id := create(t, alice, "t_job")

	// The task's own caller: each method reaches ns/tasks with its id.
	for _, method := range []string{"tasks/get", "tasks/update", "tasks/cancel"} {
		t.Run(method, func(t *testing.T) {
			before := len(layer.requests())
			p := `"taskId":"` + id + `"`
			if method == "tasks/update" {
				p += `,"inputResponses":{}`
			}
			r := send(t, e, alice, "", statelessTask(method, p), headers2026(method, id))
			a := readTaskAnswer(t, r)
			if r.status != http.StatusOK || a.Error != nil {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if strings.Contains(r.body, "up-") {
				t.Errorf("answer %s names the server's task id", r.body)
			}
			if method == "tasks/get" {
				if got := str(t, a.Result["taskId"]); got != id {
					t.Errorf("taskId %q, want the sealed id", got)
				}
				if _, ok := a.Result["result"]; !ok {
					t.Errorf("no inlined result: %s", r.body)
				}
			}
			got := layer.requests()[before:]
			want := upstreamTaskRequest{method: method, taskID: "up-1", mcpName: "up-1", auth: "Bearer up-ns/tasks"}
			if len(got) != 1 || got[0] != want {
				t.Fatalf("server got %+v, want %+v", got, want)
			}
		})
	}

	tampered := []byte(id)
	tampered[len(tampered)-5] ^= 0x01
	otherTool := create(t, alice, "o_job") // ns/other's: a route to o_job
	rerouted := reroute(t, id, "o_job")    // alice's t_job task under o_job's route

	attacks := []struct {
		name   string
		claims assertion.Claims
		id     string
		mod    func(*http.Request)
		status int
		code   int
	}{
		{name: "another caller's id", claims: assertion.Claims{Subject: "bob"}, id: id, status: http.StatusOK, code: forward.CodeTaskNotFound},
		{name: "same subject of another issuer", claims: assertion.Claims{Issuer: "https://idp.test/realms/b", Subject: "alice"}, id: id, status: http.StatusOK, code: forward.CodeTaskNotFound},
		{name: "tampered id", claims: alice, id: string(tampered), status: http.StatusOK, code: forward.CodeTaskNotFound},
		{name: "rerouted id", claims: alice, id: rerouted, status: http.StatusOK, code: forward.CodeTaskNotFound},
		{name: "the server's own id", claims: alice, id: "up-1", status: http.StatusOK, code: forward.CodeTaskNotFound},
		{name: "an id of a router with other keys", claims: alice, id: sealWithOtherKey(t, id), status: http.StatusOK, code: forward.CodeTaskNotFound},
		{name: "authz decided for another tool", claims: assertion.Claims{Subject: "alice", Server: "ns/tasks", Tool: "echo"}, id: id, status: http.StatusForbidden, code: forward.CodeInvalidRequest},
		{name: "authz decided for another server", claims: assertion.Claims{Subject: "alice", Server: "ns/other", Tool: "job"}, id: id, status: http.StatusForbidden, code: forward.CodeInvalidRequest},
		{name: "Mcp-Name of another task", claims: alice, id: id, mod: headers2026("tasks/get", otherTool), status: http.StatusBadRequest, code: forward.CodeHeaderMismatch},
		{name: "Mcp-Name absent", claims: alice, id: id, mod: headers2026("tasks/get", ""), status: http.StatusBadRequest, code: forward.CodeHeaderMismatch},
	}
	for _, tt := range attacks {
		t.Run(tt.name, func(t *testing.T) {
			before := len(layer.requests())
			mod := tt.mod
			if mod == nil {
				mod = headers2026("tasks/get", tt.id)
			}
			r := send(t, e, tt.claims, "", statelessTask("tasks/get", `"taskId":`+string(mustMarshal(t, tt.id))), mod)
			a := readTaskAnswer(t, r)
			if r.status != tt.status || a.Error == nil || a.Error.Code != tt.code {
				t.Fatalf("got %d %s, want %d with error %d", r.status, r.body, tt.status, tt.code)
			}
			if got := layer.requests()[before:]; len(got) != 0 {
				t.Fatalf("the server got %+v", got)
			}
		})
	}

	t.Run("2025 methods", func(t *testing.T) {
		for _, method := range []string{"tasks/result", "tasks/list"} {
			p := `"taskId":"` + id + `"`
			if method == "tasks/list" {
				p = `"cursor":"x"`
			}
			r := send(t, e, alice, "", statelessTask(method, p), headers2026(method, id))
			if a := readTaskAnswer(t, r); a.Error == nil || a.Error.Code != forward.CodeNoMethod {
				t.Errorf("%s: %d %s, want -32601", method, r.status, r.body)
			}
		}
	})

	t.Run("server removed", func(t *testing.T) {
		e.store(servers[1])
		before := len(layer.requests())
		r := send(t, e, alice, "", statelessTask("tasks/get", `"taskId":"`+id+`"`), headers2026("tasks/get", id))
		if a := readTaskAnswer(t, r); a.Error == nil || a.Error.Code != forward.CodeTaskNotFound {
			t.Fatalf("%d %s, want -32602", r.status, r.body)
		}
		// Registered again under another prefix: the id routes by t_job,
		// which no longer names it.
		e.store(registry.Server{Name: "ns/tasks", Prefix: "u_", URL: up.URL}, servers[1])
		r = send(t, e, alice, "", statelessTask("tasks/get", `"taskId":"`+id+`"`), headers2026("tasks/get", id))
		if a := readTaskAnswer(t, r); a.Error == nil || a.Error.Code != forward.CodeTaskNotFound {
			t.Fatalf("%d %s, want -32602", r.status, r.body)
		}
		if got := layer.requests()[before:]; len(got) != 0 {
			t.Fatalf("the server got %+v", got)
		}
	})
}

// reroute is id with its route (in the clear) changed to name.
func reroute(t *testing.T, id, name string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(id, taskid.Prefix))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the route: name and target
		n, k := binary.Uvarint(b)
		b = b[k+int(n):]
	}
	out := binary.AppendUvarint(nil, uint64(len(name)))
	out = binary.AppendUvarint(append(out, name...), 0)
	v := taskid.Prefix + base64.RawURLEncoding.EncodeToString(append(out, b...))
	if r, ok := taskid.RouteOf(v); !ok || r.Name != name {
		t.Fatalf("rerouted id routes by %+v", r)
	}
	return v
}

// sealWithOtherKey is an id like id (same route and task) sealed with a key
// the router does not hold.
func sealWithOtherKey(t *testing.T, id string) string {
	t.Helper()
	s, err := seal.New([][]byte{bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	route, _ := taskid.RouteOf(id)
	v, err := taskid.Seal(s.AEADs()[0], route, taskid.Task{Issuer: testIssuer, Subject: "alice", Server: "ns/tasks", Tool: "job", Upstream: "up-1"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTasksNotifications: a server's notifications about the caller's
// tasks, on the stream of a call, reach the client with the sealed ids the
// caller knows them by: the task a task request is about, and a task this
// replica saw the caller create. One about a task the router has not given
// the caller (another caller's, or one whose CreateTaskResult has not come
// yet) is dropped, and a server request that belongs to such a task names
// none (related-task _meta): a server's id never reaches the client.
func TestTasksNotifications(t *testing.T) {
	for _, gen := range []string{"modern", "legacy"} {
		t.Run(gen, func(t *testing.T) {
			up, layer := tasksServer(t, gen)
			e := newEnv(t, nil, registry.Server{Name: "ns/tasks", Prefix: "t_", URL: up.URL})
			alice := assertion.Claims{Subject: "alice"}
			var sid string
			call := func(text string) raw {
				if gen == "modern" {
					return send(t, e, alice, "", statelessTask("tools/call", `"name":"t_job","arguments":{"text":"`+text+`"}`), headers2026("tools/call", "t_job"))
				}
				return send(t, e, alice, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t_job","arguments":{"text":"`+text+`"},"task":{"ttl":60000}}}`, nil)
			}
			if gen == "legacy" {
				sid = initTasks(t, e, alice)
			}
			first := createdID(t, call("go"))
			r := call("sse")
			events := sseEvents(t, r)
			if len(events) != 2 {
				t.Fatalf("events %d, want the notification about the first task and the answer: %s", len(events), r.body)
			}
			second := createdID(t, raw{status: r.status, body: string(mustMarshal(t, events[1]))})
			if got := notifiedID(t, events[0]); got != first || second == first {
				t.Fatalf("notification names %q, want the first task's sealed id %q", got, first)
			}

			layer.mu.Lock()
			layer.sse = true
			layer.mu.Unlock()
			if gen == "modern" {
				r = send(t, e, alice, "", statelessTask("tasks/get", `"taskId":"`+second+`"`), headers2026("tasks/get", second))
			} else {
				r = send(t, e, alice, sid, `{"jsonrpc":"2.0","id":4,"method":"tasks/get","params":{"taskId":"`+second+`"}}`, nil)
			}
			events = sseEvents(t, r)
			if len(events) != 4 || notifiedID(t, events[0]) != second {
				t.Fatalf("tasks/get stream %s: want the notification about the task with its sealed id, two elicitations and the answer", r.body)
			}
			// The elicitation of the task names it by its sealed id; the
			// one of a task the caller does not have names none.
			for i, want := range []string{second, ""} {
				var req struct {
					Params struct {
						Meta map[string]struct {
							TaskID *string `json:"taskId"`
						} `json:"_meta"`
					} `json:"params"`
				}
				_ = json.Unmarshal(mustMarshal(t, events[1+i]), &req)
				if got := req.Params.Meta[tasks.RelatedTask].TaskID; got == nil || *got != want {
					t.Errorf("elicitation %d: related task %v, want %q", i, got, want)
				}
			}
		})
	}
}

// sseEvents are the JSON-RPC messages of an SSE answer; the body must not
// name a server's task id.
func sseEvents(t *testing.T, r raw) []map[string]json.RawMessage {
	t.Helper()
	if r.status != http.StatusOK || strings.Contains(r.body, "up-") {
		t.Fatalf("%d %s: want no server task id", r.status, r.body)
	}
	var events []map[string]json.RawMessage
	for _, line := range strings.Split(r.body, "\n") {
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ev map[string]json.RawMessage
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				t.Fatal(err)
			}
			events = append(events, ev)
		}
	}
	return events
}

func notifiedID(t *testing.T, ev map[string]json.RawMessage) string {
	t.Helper()
	var p struct {
		TaskID string `json:"taskId"`
	}
	if err := json.Unmarshal(ev["params"], &p); err != nil {
		t.Fatalf("notification %v: %v", ev, err)
	}
	return p.TaskID
}

// createdID is the sealed task id of a CreateTaskResult, flat (2026-07-28)
// or in a task object (2025-11-25).
func createdID(t *testing.T, r raw) string {
	t.Helper()
	body := r.body
	if i := strings.LastIndex(body, "data: "); i >= 0 {
		body = strings.TrimSpace(body[i+len("data: "):])
	}
	var res struct {
		Result struct {
			TaskID string `json:"taskId"`
			Task   struct {
				TaskID string `json:"taskId"`
			} `json:"task"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	id := res.Result.TaskID + res.Result.Task.TaskID
	if !strings.HasPrefix(id, taskid.Prefix) || strings.Contains(r.body, "up-") {
		t.Fatalf("%d %s: want a sealed task id", r.status, r.body)
	}
	return id
}

const initTasksBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"tasks":{"list":{},"cancel":{}}},"clientInfo":{"name":"raw","version":"1"}}}`

// initTasks opens a 2025-11-25 session for claims' subject.
func initTasks(t *testing.T, e *env, claims assertion.Claims) string {
	t.Helper()
	r := send(t, e, claims, "", initTasksBody, nil)
	sid := r.header.Get("Mcp-Session-Id")
	if r.status != http.StatusOK || sid == "" || !strings.Contains(r.body, `"tasks":{`) {
		t.Fatalf("initialize: %d %s", r.status, r.body)
	}
	return sid
}

// TestTasksSession: the tasks of 2025-11-25 through a session with a server
// of that revision: the task of a task-augmented tools/call comes back
// sealed; tasks/get, tasks/result and tasks/cancel reach the server with its
// id and answer with the sealed one (the related-task _meta of tasks/result
// too); tasks/list lists the caller's tasks only, sealed, and another
// caller's session neither lists nor reaches them.
func TestTasksSession(t *testing.T) {
	up, layer := tasksServer(t, "legacy")
	e := newEnv(t, nil, registry.Server{Name: "ns/tasks", Prefix: "t_", URL: up.URL})
	alice, bob := assertion.Claims{Subject: "alice"}, assertion.Claims{Subject: "bob"}
	sid := initTasks(t, e, alice)

	r := send(t, e, alice, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t_job","arguments":{"text":"go"},"task":{"ttl":60000}}}`, nil)
	var created struct {
		Result struct {
			Task struct {
				TaskID string `json:"taskId"`
				Status string `json:"status"`
			} `json:"task"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.body), &created); err != nil || r.status != http.StatusOK {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	id := created.Result.Task.TaskID
	if !strings.HasPrefix(id, taskid.Prefix) || created.Result.Task.Status != "working" || strings.Contains(r.body, "up-") {
		t.Fatalf("create: %s: want a sealed id", r.body)
	}

	for _, method := range []string{"tasks/get", "tasks/result", "tasks/cancel"} {
		t.Run(method, func(t *testing.T) {
			before := len(layer.requests())
			r := send(t, e, alice, sid, `{"jsonrpc":"2.0","id":4,"method":"`+method+`","params":{"taskId":"`+id+`"}}`, nil)
			if r.status != http.StatusOK || strings.Contains(r.body, "up-") || !strings.Contains(r.body, id) || strings.Contains(r.body, `"error"`) {
				t.Fatalf("%d %s: want the sealed id, not the server's", r.status, r.body)
			}
			got := layer.requests()[before:]
			if len(got) != 1 || got[0].method != method || got[0].taskID != "up-1" || got[0].auth != "Bearer up-ns/tasks" {
				t.Fatalf("server got %+v", got)
			}
		})
	}

	list := func(t *testing.T, claims assertion.Claims, sid string) []string {
		t.Helper()
		r := send(t, e, claims, sid, `{"jsonrpc":"2.0","id":5,"method":"tasks/list","params":{}}`, nil)
		var l struct {
			Result struct {
				Tasks []struct {
					TaskID string `json:"taskId"`
				} `json:"tasks"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(r.body), &l); err != nil || r.status != http.StatusOK || strings.Contains(r.body, "up-") {
			t.Fatalf("tasks/list: %d %s", r.status, r.body)
		}
		var ids []string
		for _, x := range l.Result.Tasks {
			ids = append(ids, x.TaskID)
		}
		return ids
	}
	t.Run("tasks/list", func(t *testing.T) {
		if ids := list(t, alice, sid); len(ids) != 1 || ids[0] != id {
			t.Fatalf("alice lists %q, want her task alone", ids)
		}
		bobSid := initTasks(t, e, bob)
		// bob's session with the server: one call opens it.
		if r := send(t, e, bob, bobSid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"t_echo","arguments":{"text":"hi"}}}`, nil); r.status != http.StatusOK {
			t.Fatalf("bob's call: %d %s", r.status, r.body)
		}
		if ids := list(t, bob, bobSid); len(ids) != 0 {
			t.Fatalf("bob lists %q, want none", ids)
		}
		before := len(layer.requests())
		r := send(t, e, bob, bobSid, `{"jsonrpc":"2.0","id":4,"method":"tasks/get","params":{"taskId":"`+id+`"}}`, nil)
		if !strings.Contains(r.body, fmt.Sprint(forward.CodeTaskNotFound)) {
			t.Fatalf("bob's tasks/get of alice's task: %d %s", r.status, r.body)
		}
		for _, got := range layer.requests()[before:] {
			if got.method != "tasks/list" {
				t.Fatalf("the server got %+v", got)
			}
		}
	})
}
