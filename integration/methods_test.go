//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// how is what front -> authz -> router does with a message a client sends.
type how int

const (
	// decided: authz's policy decides it. The caller the policy denies gets
	// 403 with a *_denied reason and no server hears of it; the caller it
	// allows reaches the server.
	decided how = iota + 1
	// filtered: a list, answered from the servers' lists with each entry
	// decided by the policy: the denied caller gets it empty (the servers
	// are asked for their lists on the router's own account).
	filtered
	// router: the router answers it itself (a result or an error); no
	// server hears of it, whoever asks.
	router
	// perServer: the router passes it to every server of the session the
	// policy allows that method on (mcp.server set, no entry): a 2xx
	// either way, and no server hears a caller the policy denies.
	perServer
	// dropped: a notification accepted (202) and passed to no server.
	dropped
)

func (h how) String() string {
	return [...]string{"?", "decided by the policy", "filtered by the policy", "answered by the router", "decided per server it reaches", "dropped"}[h]
}

// handling is what TestEveryMethod expects of one method of one revision.
type handling struct {
	how how
	// params of the request, without _meta; {p} is the target server's
	// prefix, {s} its URI scheme. Decided methods are sent to each server.
	params string
	// status and code of the router's answer (router, dropped): the HTTP
	// status and the JSON-RPC error code, 0 for a result.
	status, code int
	// pending names the work under way that changes this row: update it
	// when that work is merged.
	pending string
	// modernOnly: decided against the 2026-07-28 server only (a retry
	// whose requestState only a 2026 server made).
	modernOnly bool
}

// methodHandling says, for every method of testdata/methods.txt (mcpparse),
// how a client's message of that method is handled, keyed "revision
// method". Messages of server-to-client methods are what a client sending
// them gets: the router serves no server-to-client request from a client.
var methodHandling = map[string]handling{
	// 2025-11-25, in a session.
	"2025-11-25 initialize":               {how: router, params: `"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}`, status: 200},
	"2025-11-25 ping":                     {how: router, status: 200},
	"2025-11-25 tools/list":               {how: filtered},
	"2025-11-25 prompts/list":             {how: filtered},
	"2025-11-25 resources/list":           {how: filtered},
	"2025-11-25 resources/templates/list": {how: filtered},
	"2025-11-25 tools/call":               {how: decided, params: `"name":"{p}t1","arguments":{}`},
	"2025-11-25 prompts/get":              {how: decided, params: `"name":"{p}p1"`},
	"2025-11-25 resources/read":           {how: decided, params: `"uri":"{s}://r1"`},
	"2025-11-25 resources/subscribe":      {how: decided, params: `"uri":"{s}://r1"`},
	"2025-11-25 resources/unsubscribe":    {how: decided, params: `"uri":"{s}://r1"`},
	"2025-11-25 completion/complete":      {how: decided, params: `"ref":{"type":"ref/prompt","name":"{p}p1"},"argument":{"name":"a","value":"x"}`},
	// The level goes to every server that declared logging and the policy
	// allows logging/setLevel on, on the caller's upstream session.
	"2025-11-25 logging/setLevel": {how: perServer, params: `"level":"info"`},
	// Tasks: a request naming a task is decided by the policy with the
	// task its sealed id names (mcp.task; TestTasksThroughStack, with a
	// server that makes tasks: go-sdk makes none); an id no router sealed
	// names no task and is refused for anyone (task_denied), reaching no
	// server. tasks/list goes to each server of the session the policy
	// allows it on, and answers only the caller's own tasks.
	"2025-11-25 tasks/get":    {how: router, params: `"taskId":"t"`, status: 403, code: -32003},
	"2025-11-25 tasks/result": {how: router, params: `"taskId":"t"`, status: 403, code: -32003},
	"2025-11-25 tasks/list":   {how: perServer},
	"2025-11-25 tasks/cancel": {how: router, params: `"taskId":"t"`, status: 403, code: -32003},
	// Server-to-client requests sent by a client.
	"2025-11-25 sampling/createMessage": {how: router, params: `"messages":[],"maxTokens":1`, status: 200, code: -32601},
	"2025-11-25 elicitation/create":     {how: router, params: `"message":"m","requestedSchema":{"type":"object"}`, status: 200, code: -32601},
	"2025-11-25 roots/list":             {how: router, status: 200, code: -32601},
	// Notifications. cancelled goes to the server of the request it
	// cancels (none here: an unknown requestId); roots/list_changed to
	// every server the session has an upstream session with.
	"2025-11-25 notifications/initialized":            {how: dropped, status: 202},
	"2025-11-25 notifications/cancelled":              {how: dropped, params: `"requestId":424242`, status: 202},
	"2025-11-25 notifications/roots/list_changed":     {how: perServer},
	"2025-11-25 notifications/progress":               {how: dropped, params: `"progressToken":"x","progress":1`, status: 202},
	"2025-11-25 notifications/message":                {how: dropped, params: `"level":"info","data":"x"`, status: 202},
	"2025-11-25 notifications/tools/list_changed":     {how: dropped, status: 202},
	"2025-11-25 notifications/prompts/list_changed":   {how: dropped, status: 202},
	"2025-11-25 notifications/resources/list_changed": {how: dropped, status: 202},
	"2025-11-25 notifications/resources/updated":      {how: dropped, params: `"uri":"{s}://r1"`, status: 202},
	"2025-11-25 notifications/elicitation/complete":   {how: dropped, params: `"elicitationId":"e"`, status: 202},
	"2025-11-25 notifications/tasks/status":           {how: dropped, params: `"taskId":"t","status":"working"`, status: 202},

	// 2026-07-28, stateless.
	"2026-07-28 server/discover":          {how: router, status: 200},
	"2026-07-28 tools/list":               {how: filtered},
	"2026-07-28 prompts/list":             {how: filtered},
	"2026-07-28 resources/list":           {how: filtered},
	"2026-07-28 resources/templates/list": {how: filtered},
	"2026-07-28 tools/call":               {how: decided, params: `"name":"{p}t1","arguments":{}`},
	"2026-07-28 prompts/get":              {how: decided, params: `"name":"{p}p1"`},
	"2026-07-28 resources/read":           {how: decided, params: `"uri":"{s}://r1"`},
	"2026-07-28 completion/complete":      {how: decided, params: `"ref":{"type":"ref/prompt","name":"{p}p1"},"argument":{"name":"a","value":"x"}`},
	// A listen for list changes goes to each server the policy allows
	// subscriptions/listen on; a resource subscription is decided as the
	// read of its URI (TestListenPerUser).
	"2026-07-28 subscriptions/listen":   {how: perServer, params: `"notifications":{"toolsListChanged":true}`},
	"2026-07-28 tasks/get":              {how: router, params: `"taskId":"t"`, status: 403, code: -32003},
	"2026-07-28 tasks/update":           {how: router, params: `"taskId":"t","inputResponses":{}`, status: 403, code: -32003},
	"2026-07-28 tasks/cancel":           {how: router, params: `"taskId":"t"`, status: 403, code: -32003},
	"2026-07-28 sampling/createMessage": {how: router, params: `"messages":[],"maxTokens":1`, status: 404, code: -32601},
	"2026-07-28 elicitation/create":     {how: router, params: `"message":"m","requestedSchema":{"type":"object"}`, status: 404, code: -32601},
	"2026-07-28 roots/list":             {how: router, status: 404, code: -32601},
	// Notifications POSTed without a session (2026-07-28): accepted (202)
	// and passed to no server, whatever the method; a cancel is redundant
	// there (closing the request's stream cancels it).
	"2026-07-28 notifications/cancelled":                  {how: dropped, params: `"requestId":424242`, status: 202},
	"2026-07-28 notifications/progress":                   {how: dropped, params: `"progressToken":"x","progress":1`, status: 202},
	"2026-07-28 notifications/message":                    {how: dropped, params: `"level":"info","data":"x"`, status: 202},
	"2026-07-28 notifications/tools/list_changed":         {how: dropped, status: 202},
	"2026-07-28 notifications/prompts/list_changed":       {how: dropped, status: 202},
	"2026-07-28 notifications/resources/list_changed":     {how: dropped, status: 202},
	"2026-07-28 notifications/resources/updated":          {how: dropped, params: `"uri":"{s}://r1"`, status: 202},
	"2026-07-28 notifications/subscriptions/acknowledged": {how: dropped, status: 202},
	"2026-07-28 notifications/tasks":                      {how: dropped, params: `"taskId":"t","status":"working"`, status: 202},
}

// methodVariants are requests beyond one per method: a 2026-07-28 retry
// of a tools/call with the answers to an InputRequiredResult (MRTR) is
// authorized like any request.
var methodVariants = map[string]handling{
	// An MRTR retry carries the server's requestState back: to a 2026
	// server it is opaque and passed on (after the policy); a 2025 one's
	// calls are held by the router, which refuses a requestState it did not
	// seal (TestMRTR).
	"2026-07-28 tools/call (MRTR retry)": {how: decided, modernOnly: true, params: `"name":"{p}t1","arguments":{},"inputResponses":{"q":{"action":"accept","content":{}}},"requestState":"opaque"`},
}

// specMethods reads mcpparse/testdata/methods.txt: "revision method" ->
// the directions the schema gives it.
func specMethods(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(repoFile("mcpparse/testdata/methods.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) < 3 {
			t.Fatalf("methods.txt: %q", sc.Text())
		}
		k := fields[0] + " " + fields[1]
		out[k] = append(out[k], fields[2])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// rpcAnswer is a JSON-RPC answer, from a JSON or an SSE body (the last
// data line).
type rpcAnswer struct {
	Result map[string]json.RawMessage `json:"result"`
	Error  *struct {
		Code int `json:"code"`
		Data struct {
			Reason string `json:"reason"`
		} `json:"data"`
	} `json:"error"`
}

func decodeRPC(body []byte) (rpcAnswer, bool) {
	b := string(body)
	if strings.HasPrefix(b, "event:") || strings.HasPrefix(b, "data:") || strings.HasPrefix(b, "id:") {
		for line := range strings.Lines(b) {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				b = d
			}
		}
	}
	var a rpcAnswer
	return a, json.Unmarshal([]byte(b), &a) == nil
}

// TestEveryMethod sends a message of every method of revisions 2025-11-25
// (in a session) and 2026-07-28 (stateless), as the schemas list them
// (mcpparse/testdata/methods.txt), through front -> authz -> router (dev
// provider, token exchange) to a go-sdk server of each generation, as
// alice, whom the policy allows everything, and bob, whom it denies
// everything, and checks each is handled as methodHandling says: the
// policy decides every request that reaches a server (bob's is refused and
// no server hears of it; alice's reaches it), or filters what a list shows,
// or the router answers by itself and no server hears of it, or (a method
// for every server of a session) it reaches just the servers the policy
// allows it on. Rows marked pending are today's
// behaviour of what other work is changing. Server-to-client methods are
// also sent the way they go, by the 2025 server to a go-sdk client, within
// a call (serverToClient).
func TestEveryMethod(t *testing.T) {
	spec := specMethods(t)
	for k := range spec {
		if _, ok := methodHandling[k]; !ok {
			t.Errorf("%s is in the spec's methods but not in methodHandling", k)
		}
	}
	for k := range methodHandling {
		if _, ok := spec[k]; !ok {
			t.Errorf("%s is in methodHandling but not in the spec's methods", k)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	p := startIdP(t, "")
	legacy := startGenServer(t, "mcp-test/weather", "legacy", []string{"t1"}, []string{"w://r1"}, []string{"p1"}, addCallback)
	modern := startGenServer(t, "mcp-test/kubernetes-mcp", "modern", []string{"t1"}, []string{"k://r1"}, []string{"p1"})
	servers := []*goServer{legacy, modern}
	prefix := map[*goServer][2]string{legacy: {"weather_", "w"}, modern: {"kube_", "k"}}
	a := startAggregate(t, 1, identityConfig(p)+genServers(legacy, modern)+`policies:
  - name: engineering-only
    cel: '"engineering" in jwt.groups'
`)
	tokens := map[string]string{"alice": p.login(t, "alice"), "bob": p.login(t, "bob")}

	ctx, cancel := context.WithTimeout(t.Context(), 4*callTimeout)
	defer cancel()
	id := 100
	// send posts one message of method as caller; sid is the 2025
	// session ("" for a stateless request).
	send := func(t *testing.T, caller, revision, sid, method, params string) (int, rpcAnswer, string) {
		t.Helper()
		id++
		h := map[string]string{"Authorization": "Bearer " + tokens[caller], "MCP-Protocol-Version": revision}
		if sid != "" {
			h["Mcp-Session-Id"] = sid
		} else {
			meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + revision + `","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}`
			params = strings.TrimPrefix(meta+","+params, ",")
			params = strings.TrimSuffix(params, ",")
			h["Mcp-Method"] = method
			var named struct {
				Name   string `json:"name"`
				URI    string `json:"uri"`
				TaskID string `json:"taskId"`
			}
			_ = json.Unmarshal([]byte("{"+params+"}"), &named)
			switch method {
			case "tools/call", "prompts/get":
				h["Mcp-Name"] = named.Name
			case "resources/read":
				h["Mcp-Name"] = named.URI
			case "tasks/get", "tasks/update", "tasks/cancel":
				h["Mcp-Name"] = named.TaskID
			}
		}
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{%s}}`, id, method, params)
		if strings.HasPrefix(method, "notifications/") {
			body = fmt.Sprintf(`{"jsonrpc":"2.0","method":%q,"params":{%s}}`, method, params)
		}
		if method == "subscriptions/listen" {
			return firstEvent(ctx, t, a.front, body, h)
		}
		resp, b := post(ctx, t, a.front, body, h)
		ans, _ := decodeRPC(b)
		if sid == "" && method == "initialize" {
			return resp.StatusCode, ans, resp.Header.Get("Mcp-Session-Id")
		}
		return resp.StatusCode, ans, string(b)
	}
	// heard is what the servers received since marks, by method.
	marks := func() []int {
		var m []int
		for _, s := range servers {
			m = append(m, len(s.requests()))
		}
		return m
	}
	heard := func(since []int) []string {
		var out []string
		for i, s := range servers {
			for _, r := range s.requests()[since[i]:] {
				out = append(out, s.name+" "+r.method)
			}
		}
		return out
	}

	// One 2025 session per caller, its upstream sessions opened by a list
	// (so that what a session's message would reach, it can).
	sessions := map[string]string{}
	for caller := range tokens {
		st, _, sid := send(t, caller, "2025-11-25", "", "initialize", methodHandling["2025-11-25 initialize"].params)
		if st != 200 || sid == "" {
			t.Fatalf("%s initialize: %d", caller, st)
		}
		sessions[caller] = sid
		send(t, caller, "2025-11-25", sid, "notifications/initialized", "")
		send(t, caller, "2025-11-25", sid, "tools/list", "")
	}

	rows := map[string]handling{}
	for k, h := range methodHandling {
		rows[k] = h
	}
	for k, h := range methodVariants {
		rows[k] = h
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range rows {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		h := rows[k]
		revision, method, _ := strings.Cut(k, " ")
		method, _, _ = strings.Cut(method, " (")
		if method == "initialize" {
			continue // every 2025 session above began with one; checked below
		}
		t.Run(k, func(t *testing.T) {
			if h.pending != "" {
				t.Logf("today's behaviour; %s work under way changes it", h.pending)
			}
			targets := servers
			switch {
			case h.modernOnly:
				targets = []*goServer{modern}
			case h.how != decided:
				targets = servers[:1]
			}
			for _, target := range targets {
				params := strings.NewReplacer("{p}", prefix[target][0], "{s}", prefix[target][1]).Replace(h.params)
				for _, caller := range []string{"bob", "alice"} {
					sid := ""
					if revision == "2025-11-25" {
						sid = sessions[caller]
					}
					since := marks()
					st, ans, body := send(t, caller, revision, sid, method, params)
					if strings.HasPrefix(method, "notifications/") && (h.how != perServer || caller == "bob") {
						time.Sleep(200 * time.Millisecond) // a notification passed on would be by now
					}
					got := heard(since)
					switch h.how {
					case decided:
						if caller == "bob" {
							if st != http.StatusForbidden || ans.Error == nil || !strings.HasSuffix(ans.Error.Data.Reason, "_denied") {
								t.Errorf("bob to %s: %d %s, want 403 with a *_denied reason", target.name, st, body)
							}
							if len(got) != 0 {
								t.Errorf("bob's denied %s reached servers: %q", method, got)
							}
						} else if !slices.Contains(got, target.name+" "+method) {
							t.Errorf("alice's %s (%d %s) did not reach %s; servers heard %q", method, st, body, target.name, got)
						}
					case filtered:
						list := map[string]string{"tools/list": "tools", "prompts/list": "prompts", "resources/list": "resources", "resources/templates/list": "resourceTemplates"}[method]
						var entries []json.RawMessage
						if st != 200 || ans.Result == nil || json.Unmarshal(ans.Result[list], &entries) != nil {
							t.Fatalf("%s %s: %d %s", caller, method, st, body)
						}
						if (caller == "bob") != (len(entries) == 0) {
							t.Errorf("%s sees %d %s", caller, len(entries), list)
						}
					case router, dropped:
						if st != h.status {
							t.Errorf("%s: status %d, want %d: %s", caller, st, h.status, body)
						}
						switch {
						case h.status == http.StatusAccepted:
							if body != "" {
								t.Errorf("%s: 202 with a body %q", caller, body)
							}
						case h.code == 0 && (ans.Error != nil || ans.Result == nil):
							t.Errorf("%s: want a result: %s", caller, body)
						case h.code != 0 && (ans.Error == nil || ans.Error.Code != h.code):
							t.Errorf("%s: want error %d: %s", caller, h.code, body)
						}
						if len(got) != 0 {
							t.Errorf("%s's %s reached servers: %q", caller, method, got)
						}
					case perServer:
						if st/100 != 2 {
							t.Errorf("%s: status %d: %s", caller, st, body)
						}
						if caller == "bob" {
							if len(got) != 0 {
								t.Errorf("bob's %s reached servers: %q", method, got)
							}
							continue
						}
						waitFor(t, caller+"'s "+method+" reaching a server", 5*time.Second, func() bool {
							return slices.ContainsFunc(heard(since), func(s string) bool { return strings.HasSuffix(s, " "+method) })
						})
						if method == "subscriptions/listen" {
							// The stream closed: the session the listen held
							// with the 2025 server ends before the next row.
							waitFor(t, "the listen's 2025 session deleted", 5*time.Second, func() bool {
								return slices.Contains(heard(since), legacy.name+" DELETE")
							})
						}
					}
				}
			}
		})
	}

	t.Run("2025-11-25 server to client", func(t *testing.T) {
		serverToClient(t, a.front, tokens["alice"])
	})

	t.Run("2025-11-25 initialize", func(t *testing.T) {
		since := marks()
		h := methodHandling["2025-11-25 initialize"]
		st, _, sid := send(t, "bob", "2025-11-25", "", "initialize", h.params)
		if st != h.status || sid == "" {
			t.Errorf("initialize: %d, session %q", st, sid)
		}
		if got := heard(since); len(got) != 0 {
			t.Errorf("initialize reached servers: %q", got)
		}
	})
}

// addCallback adds the tool "callback" to a 2025 server: during the call it
// sends its client each server-to-client request of 2025-11-25 (sampling,
// elicitation, roots, ping) and the notifications a call makes (a log
// message, progress), and answers with what each request got: the method,
// or the method and the error.
func addCallback(s *mcp.Server) {
	mcp.AddTool(s, &mcp.Tool{Name: "callback"}, func(ctx context.Context, req *mcp.CallToolRequest, _ map[string]any) (*mcp.CallToolResult, any, error) {
		ss := req.Session
		var got []string
		note := func(method string, err error) {
			if err != nil {
				method += ": " + err.Error()
			}
			got = append(got, method)
		}
		_, err := ss.CreateMessage(ctx, &mcp.CreateMessageParams{Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "q"}}}, MaxTokens: 1}) //nolint:staticcheck // sampling and roots are deprecated in 2026-07-28, still served to 2025 clients
		note("sampling/createMessage", err)
		_, err = ss.Elicit(ctx, &mcp.ElicitParams{Message: "m", RequestedSchema: json.RawMessage(`{"type":"object","properties":{}}`)})
		note("elicitation/create", err)
		_, err = ss.ListRoots(ctx, nil) //nolint:staticcheck // sampling and roots are deprecated in 2026-07-28, still served to 2025 clients
		note("roots/list", err)
		note("ping", ss.Ping(ctx, nil))
		note("notifications/message", ss.Log(ctx, &mcp.LoggingMessageParams{Level: "error", Data: "x"})) //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
		note("notifications/progress", ss.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: 1}))
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strings.Join(got, ",")}}}, nil, nil
	})
}

// serverToClient: in a 2025-11-25 session, what a server sends its client
// during a call reaches a go-sdk client through front -> authz -> router:
// each server-to-client request, relayed on the call's stream (its id
// wrapped) and its answer relayed back, and the call's notifications. The
// policy decided the call; what the server sends within it is not decided
// again. (List changes and resource updates: router TestListChanged*,
// integration TestProtocol2025. The 2026-07-28 generation has no
// server-to-client request: MRTR, pending.)
func serverToClient(t *testing.T, front, token string) {
	var mu sync.Mutex
	var heard []string
	hear := func(m string) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, m)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) { //nolint:staticcheck // sampling and roots are deprecated in 2026-07-28, still served to 2025 clients
			hear("sampling/createMessage")
			return &mcp.CreateMessageResult{Role: "assistant", Model: "m", Content: &mcp.TextContent{Text: "a"}}, nil //nolint:staticcheck // sampling and roots are deprecated in 2026-07-28, still served to 2025 clients
		},
		ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			hear("elicitation/create")
			return &mcp.ElicitResult{Action: "decline"}, nil
		},
		LoggingMessageHandler: func(context.Context, *mcp.LoggingMessageRequest) { hear("notifications/message") }, //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			hear("notifications/progress")
		},
	})
	c.AddRoots(&mcp.Root{URI: "file:///work", Name: "work"}) //nolint:staticcheck // sampling and roots are deprecated in 2026-07-28, still served to 2025 clients
	cs := dial(t, c, bearerTransport(front, token), sessionOptions)
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil { //nolint:staticcheck // logging is deprecated in 2026-07-28, still served to 2025 clients
		t.Fatalf("setLevel: %v", err)
	}
	p := &mcp.CallToolParams{Name: "weather_callback", Arguments: map[string]any{}}
	p.SetProgressToken("p1")
	res, err := cs.CallTool(ctx, p)
	if err != nil || res.IsError || len(res.Content) != 1 {
		t.Fatalf("callback: %+v %v", res, err)
	}
	all := []string{"sampling/createMessage", "elicitation/create", "roots/list", "ping", "notifications/message", "notifications/progress"}
	if diff := cmp.Diff(strings.Join(all, ","), res.Content[0].(*mcp.TextContent).Text); diff != "" {
		t.Errorf("what the server's requests got (-want +got):\n%s", diff)
	}
	// The SDK answers roots/list and ping itself; the handlers saw the rest.
	waitFor(t, "the call's notifications", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(heard, "notifications/message") && slices.Contains(heard, "notifications/progress")
	})
	mu.Lock()
	defer mu.Unlock()
	for _, m := range []string{"sampling/createMessage", "elicitation/create"} {
		if !slices.Contains(heard, m) {
			t.Errorf("the client never got %s; it got %q", m, heard)
		}
	}
}

// firstEvent posts a request answered with a stream that stays open
// (subscriptions/listen) and returns its status and first SSE message,
// then closes the stream.
func firstEvent(ctx context.Context, t *testing.T, u, body string, headers map[string]string) (int, rpcAnswer, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			ans, _ := decodeRPC([]byte(data))
			return resp.StatusCode, ans, data
		}
	}
	b, _ := io.ReadAll(resp.Body)
	ans, _ := decodeRPC(b)
	return resp.StatusCode, ans, string(b)
}
