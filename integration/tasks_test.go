//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// tasksUpstream is a go-sdk server of the 2026-07-28 revision with the one
// thing go-sdk v1.8.0 cannot run in front of it: tasks (SEP-2663). The
// go-sdk server serves server/discover, tools/list and other calls; a
// tools/call of pods_list is answered with a task, and tasks/get and
// tasks/cancel of the tasks it created are answered as a server of the
// extension would (a fake of that part only).
type tasksUpstream struct {
	*goServer
	mu    sync.Mutex
	tasks map[string]bool
}

func startTasksUpstream(t *testing.T) *tasksUpstream {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "tasks", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}})
	mcp.AddTool(s, &mcp.Tool{Name: "pods_list", Description: "lists pods, as a task"},
		func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "not reached"}}}, nil, nil
		})
	u := &tasksUpstream{goServer: &goServer{name: "mcp-test/kubernetes-mcp"}, tasks: map[string]bool{}}
	next := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	u.srv = serve(t, "", u.record(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name   string `json:"name"`
				TaskID string `json:"taskId"`
			} `json:"params"`
		}
		_ = json.Unmarshal(body, &m)
		answer := func(result string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,%s}`, m.ID, result)
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		const times = `"createdAt":"2026-11-29T10:00:00Z","lastUpdatedAt":"2026-11-29T10:00:00Z","ttlMs":60000`
		switch {
		case m.Method == "tools/call" && m.Params.Name == "pods_list":
			id := fmt.Sprintf("up-%d", len(u.tasks)+1)
			u.tasks[id] = true
			answer(`"result":{"resultType":"task","taskId":"` + id + `","status":"working",` + times + `}`)
		case strings.HasPrefix(m.Method, "tasks/") && !u.tasks[m.Params.TaskID]:
			answer(`"error":{"code":-32602,"message":"Task not found"}`)
		case m.Method == "tasks/get":
			answer(`"result":{"resultType":"complete","taskId":"` + m.Params.TaskID + `","status":"completed",` + times + `,"result":{"content":[{"type":"text","text":"3 pods"}]}}`)
		case m.Method == "tasks/cancel":
			answer(`"result":{"resultType":"complete"}`)
		default:
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
		}
	})))
	u.url = "http://" + u.srv.Addr + "/mcp"
	return u
}

// tasksPolicy lets a caller call the tools its token has the role of, and
// poll (tasks/get) the tasks of pods_list, never cancel them.
const tasksPolicy = `policies:
  - name: tasks
    cel: >-
      has(mcp.task) ? mcp.task.tool == "pods_list" && mcp.task.method == "tasks/get" :
      mcp.tool.name in token.resource_access[mcp.server].roles
`

// TestTasksThroughStack is the tasks extension through front, authz and two
// router replicas, with the dev provider and token exchange: alice's
// tools/call answered with a task gives her a sealed task id, which any
// replica routes to the server with the server's id and a token exchanged
// for that server; the policy decides every task request (tasks/get
// allowed, tasks/cancel denied); bob, whom the policy lets poll, cannot
// use alice's id; a tampered id, the server's own id and an Mcp-Name that
// is not the taskId are refused; none of these reaches the server.
func TestTasksThroughStack(t *testing.T) {
	p := startIdP(t, "")
	up := startTasksUpstream(t)
	a := startAggregate(t, 2, identityConfig(p)+kubeServer(up.url)+tasksPolicy)
	alice, bob := p.login(t, "alice"), p.login(t, "bob")
	aliceSub, _ := jwtPayload(t, alice)["sub"].(string)

	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}},"io.modelcontextprotocol/clientInfo":{"name":"e2e","version":"1"}}`
	rpc := func(token, method, name, params string) (int, map[string]json.RawMessage, string) {
		t.Helper()
		body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{` + params + `,` + meta + `}}`
		h := map[string]string{"Authorization": "Bearer " + token, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
		if name != "" {
			h["Mcp-Name"] = name
		}
		resp, b := post(t.Context(), t, a.front, body, h)
		var answer map[string]json.RawMessage
		if err := json.Unmarshal(b, &answer); err != nil {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, b)
		}
		return resp.StatusCode, answer, string(b)
	}

	status, answer, body := rpc(alice, "tools/call", "kube_pods_list", `"name":"kube_pods_list","arguments":{}`)
	var created struct {
		ResultType string `json:"resultType"`
		TaskID     string `json:"taskId"`
	}
	if err := json.Unmarshal(answer["result"], &created); err != nil || status != http.StatusOK || created.ResultType != "task" {
		t.Fatalf("tools/call: %d %s", status, body)
	}
	id := created.TaskID
	if !strings.HasPrefix(id, "mcpt1.") || strings.Contains(body, "up-1") {
		t.Fatalf("task id %q: want a sealed id, not the server's", id)
	}

	// Twice: the balancer sends each to the other replica.
	for i := range 2 {
		n := len(up.requests())
		status, answer, body = rpc(alice, "tasks/get", id, `"taskId":"`+id+`"`)
		var got struct {
			TaskID string `json:"taskId"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(answer["result"], &got); err != nil || status != http.StatusOK || got.TaskID != id || got.Status != "completed" {
			t.Fatalf("tasks/get %d: %d %s", i, status, body)
		}
		// A replica's first request to the server asks its revision.
		seen := slices.DeleteFunc(up.requests()[n:], func(r request) bool { return r.method == "server/discover" })
		if len(seen) != 1 || seen[0].method != "tasks/get" || !strings.Contains(seen[0].body, `"taskId":"up-1"`) || seen[0].header.Get("Mcp-Name") != "up-1" {
			t.Fatalf("the server got %d requests (%v), want one tasks/get of up-1", len(seen), methodsOf(seen))
		}
		tok, _ := strings.CutPrefix(seen[0].authorization(), "Bearer ")
		claims := jwtPayload(t, tok)
		if tok == alice || claims["sub"] != aliceSub || !strings.Contains(strings.Join(audience(claims), " "), "mcp-test/kubernetes-mcp") {
			t.Fatalf("tasks/get reached the server with sub %v aud %v: want a token exchanged for it on alice's behalf", claims["sub"], claims["aud"])
		}
	}

	tampered := []byte(id)
	tampered[len(tampered)-4] ^= 0x01
	refusals := []struct {
		name, token, method, id, mcpName string
		status, code                     int
		reason                           string
	}{
		{name: "policy denies tasks/cancel", token: alice, method: "tasks/cancel", id: id, status: http.StatusForbidden, code: -32003, reason: "task_denied"},
		{name: "bob polls alice's task", token: bob, method: "tasks/get", id: id, status: http.StatusOK, code: -32602},
		{name: "tampered id", token: alice, method: "tasks/get", id: string(tampered), status: http.StatusOK, code: -32602},
		{name: "the server's own id", token: alice, method: "tasks/get", id: "up-1", status: http.StatusForbidden, code: -32003, reason: "task_denied"},
		{name: "Mcp-Name of another task", token: alice, method: "tasks/get", id: id, mcpName: "up-1", status: http.StatusBadRequest, code: -32020, reason: "header_mismatch"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			n := len(up.requests())
			name := tt.mcpName
			if name == "" {
				name = tt.id
			}
			status, answer, body := rpc(tt.token, tt.method, name, `"taskId":"`+tt.id+`"`)
			var e struct {
				Code int `json:"code"`
				Data struct {
					Reason string `json:"reason"`
				} `json:"data"`
			}
			if err := json.Unmarshal(answer["error"], &e); err != nil || status != tt.status || e.Code != tt.code || e.Data.Reason != tt.reason {
				t.Fatalf("got %d %s, want %d with error %d %q", status, body, tt.status, tt.code, tt.reason)
			}
			if seen := slices.DeleteFunc(up.requests()[n:], func(r request) bool { return r.method == "server/discover" }); len(seen) != 0 {
				t.Fatalf("the server got %v", methodsOf(seen))
			}
		})
	}
	a.noTokenInLogs(t, alice)
}

func methodsOf(rs []request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.method)
	}
	return out
}
