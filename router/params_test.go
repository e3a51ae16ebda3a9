package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// paramCall is one tools/call a server received: its Mcp-Param headers
// and the HTTP status it answered.
type paramCall struct {
	params map[string]string
	status int
}

// paramLog records the tools/call requests a server received.
type paramLog struct {
	mu    sync.Mutex
	calls []paramCall
}

func (l *paramLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Method") != "tools/call" && !strings.Contains(r.Header.Get("X-Mcp-Method"), "tools/call") {
			h.ServeHTTP(w, r)
			return
		}
		p := map[string]string{}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "Mcp-Param-") {
				p[k] = strings.Join(v, ",")
			}
		}
		// Recorded as the answer starts: the client may have it before
		// the handler returns.
		l.mu.Lock()
		i := len(l.calls)
		l.calls = append(l.calls, paramCall{params: p})
		l.mu.Unlock()
		h.ServeHTTP(&statusWriter{ResponseWriter: w, status: func(code int) {
			l.mu.Lock()
			l.calls[i].status = code
			l.mu.Unlock()
		}}, r)
	})
}

func (l *paramLog) get() []paramCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]paramCall(nil), l.calls...)
}

// statusWriter tells the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	status func(int)
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.status(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// regionalSchema marks region with x-mcp-header Region; zone is marked
// Zone when zoneMarked.
func regionalSchema(zoneMarked bool) json.RawMessage {
	zone := `{"type":"string"}`
	if zoneMarked {
		zone = `{"type":"string","x-mcp-header":"Zone"}`
	}
	return json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"zone":` + zone + `,"n":{"type":"integer"}}}`)
}

// paramServer is a go-sdk server of one generation (as generationServer)
// whose lists may be cached a minute, with a tool "regional"
// (regionalSchema(false)) that answers the Mcp-Param-Region and
// Mcp-Param-Zone headers it received. list, when set, rewrites the tools
// its tools/list answers (the server itself keeps its own definitions).
func paramServer(t *testing.T, gen string, list func(*mcp.Tool) *mcp.Tool) (*httptest.Server, *paramLog, *mcp.Server) {
	opts := &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25"}}
	if gen == "modern" {
		opts = &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}}
	}
	opts.SetCacheable = func(_ context.Context, _ mcp.Request, c *mcp.Cacheable) { c.TTLMs = 60_000 }
	s := mcp.NewServer(&mcp.Implementation{Name: gen, Version: "1"}, opts)
	addRegional(s, false)
	if list != nil {
		s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
			return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				res, err := next(ctx, method, req)
				if lt, ok := res.(*mcp.ListToolsResult); ok && err == nil {
					for i, tool := range lt.Tools {
						lt.Tools[i] = list(tool)
					}
				}
				return res, err
			}
		})
	}
	log := &paramLog{}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: gen == "modern"})
	srv := httptest.NewServer(log.wrap(h))
	t.Cleanup(srv.Close)
	return srv, log, s
}

// addRegional adds (or replaces) the tool "regional" of s.
func addRegional(s *mcp.Server, zoneMarked bool) {
	s.AddTool(&mcp.Tool{Name: "regional", InputSchema: regionalSchema(zoneMarked)}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return text(req.Extra.Header.Get("Mcp-Param-Region") + "|" + req.Extra.Header.Get("Mcp-Param-Zone")), nil
	})
}

// TestParamHeadersUpstream: a tools/call the router sends a 2026-07-28
// server carries the Mcp-Param header of each argument the tool marks with
// x-mcp-header, made by the router (encoded in base64 where the value is
// not plain ASCII), whatever the client's revision (a 2025 client sends
// none); a 2025 server gets none, even from a 2026 client that sent them.
func TestParamHeadersUpstream(t *testing.T) {
	for _, tc := range []struct {
		name, client, server string
		args                 map[string]any
		want                 map[string]string // Mcp-Param headers upstream
		text                 string
	}{
		{name: "2026 client, 2026 server", client: "2026-07-28", server: "modern", args: map[string]any{"region": "us", "zone": "z1", "n": 3},
			want: map[string]string{"Mcp-Param-Region": "us"}, text: "us|"},
		{name: "2026 client, 2026 server, non-ASCII", client: "2026-07-28", server: "modern", args: map[string]any{"region": "Hello, 世界"},
			want: map[string]string{"Mcp-Param-Region": "=?base64?SGVsbG8sIOS4lueVjA==?="}, text: "=?base64?SGVsbG8sIOS4lueVjA==?=|"},
		{name: "2025 client, 2026 server", client: "2025-11-25", server: "modern", args: map[string]any{"region": "us"},
			want: map[string]string{"Mcp-Param-Region": "us"}, text: "us|"},
		{name: "2025 client, 2026 server, CRLF in the value", client: "2025-11-25", server: "modern", args: map[string]any{"region": "us\r\nX-Evil: 1"},
			want: map[string]string{"Mcp-Param-Region": "=?base64?dXMNClgtRXZpbDogMQ==?="}, text: "=?base64?dXMNClgtRXZpbDogMQ==?=|"},
		{name: "2025 client, 2026 server, null", client: "2025-11-25", server: "modern", args: map[string]any{"region": nil},
			want: map[string]string{}, text: "|"},
		{name: "2026 client, 2025 server", client: "2026-07-28", server: "legacy", args: map[string]any{"region": "us"},
			want: map[string]string{}, text: "|"},
		{name: "2025 client, 2025 server", client: "2025-11-25", server: "legacy", args: map[string]any{"region": "us"},
			want: map[string]string{}, text: "|"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, log, _ := paramServer(t, tc.server, nil)
			e := newEnv(t, nil, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.URL})
			cs := connectAs(t, e.front.URL, e.key, "alice", tc.client)
			toolNames(t, cs) // a 2026 client mirrors the arguments of the tools it listed
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "m_regional", Arguments: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError || resultText(t, res) != tc.text {
				t.Errorf("result %q (error %v), want %q", resultText(t, res), res.IsError, tc.text)
			}
			calls := log.get()
			if len(calls) != 1 {
				t.Fatalf("the server got %d tools/call, want 1", len(calls))
			}
			if diff := cmp.Diff(tc.want, calls[0].params); diff != "" {
				t.Errorf("Mcp-Param headers upstream (-want +got):\n%s", diff)
			}
			if n := e.router.UpstreamFailures.Load(); n != 0 {
				t.Errorf("%d upstream failures", n)
			}
		})
	}
}

// TestParamHeadersDefinitionChanged: the server marks another argument
// with x-mcp-header after the router read its list; it refuses the call
// (HeaderMismatch), and the router reads the list again. A 2025 client's
// call (no headers of its own) is sent once more, with the new header: the
// client gets the answer. A 2026 client's headers, which follow its old
// list, lack the new one: the call is not sent again with a header value
// the client's headers do not carry (a gateway's policy read those), and
// the client gets HeaderMismatch, to list the tools again. No failure is
// counted.
func TestParamHeadersDefinitionChanged(t *testing.T) {
	for _, tc := range []struct {
		client string
		want   []paramCall // tools/call upstream
	}{
		{client: "2025-11-25", want: []paramCall{
			{params: map[string]string{"Mcp-Param-Region": "us"}, status: http.StatusBadRequest},
			{params: map[string]string{"Mcp-Param-Region": "us", "Mcp-Param-Zone": "z1"}, status: http.StatusOK},
		}},
		{client: "2026-07-28", want: []paramCall{
			{params: map[string]string{"Mcp-Param-Region": "us"}, status: http.StatusBadRequest},
		}},
	} {
		t.Run(tc.client, func(t *testing.T) {
			up, log, s := paramServer(t, "modern", nil)
			w, out := auditTo(t)
			e := newEnvWith(t, func(_ *Config, d *Deps) { d.Audit = w }, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.URL})
			cs := connectAs(t, e.front.URL, e.key, "alice", tc.client)
			toolNames(t, cs) // the router reads (and keeps) the list
			addRegional(s, true)
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "m_regional", Arguments: map[string]any{"region": "us", "zone": "z1"}})
			if len(tc.want) == 2 {
				if err != nil {
					t.Fatal(err)
				}
				if got := resultText(t, res); res.IsError || got != "us|z1" {
					t.Errorf("result %q (error %v), want us|z1", got, res.IsError)
				}
			} else if err == nil || !strings.Contains(err.Error(), "Bad Request") {
				t.Errorf("call: %v, want HeaderMismatch (400)", err)
			}
			if diff := cmp.Diff(tc.want, log.get(), cmp.AllowUnexported(paramCall{})); diff != "" {
				t.Errorf("tools/call upstream (-want +got):\n%s", diff)
			}
			if n := e.router.UpstreamFailures.Load(); n != 0 {
				t.Errorf("%d upstream failures", n)
			}
			// One audit event per tools/call the server got, with its
			// status; none for the call the router did not send again.
			waitFor(t, "the upstream events", func() bool { return len(auditLines(out)) >= len(tc.want) })
			var statuses []int
			for _, line := range auditLines(out) {
				var ev struct {
					Method string `json:"method"`
					Status int    `json:"status"`
				}
				if err := json.Unmarshal(line, &ev); err != nil {
					t.Fatal(err)
				}
				if ev.Method == "tools/call" {
					statuses = append(statuses, ev.Status)
				}
			}
			var want []int
			for _, c := range tc.want {
				want = append(want, c.status)
			}
			if !slices.Equal(statuses, want) {
				t.Errorf("audited tools/call statuses %v, want %v", statuses, want)
			}
		})
	}
}

// TestParamHeadersRefusedTwice: a server whose list never shows the mark it
// checks refuses the call and its retry: the client gets the server's
// HeaderMismatch (HTTP 400, -32020), not "upstream error", the call is sent
// twice and no more, and the server is not counted as failed.
func TestParamHeadersRefusedTwice(t *testing.T) {
	up, log, s := paramServer(t, "modern", func(tool *mcp.Tool) *mcp.Tool {
		c := *tool
		c.InputSchema = regionalSchema(false) // what it lists, not what it checks
		return &c
	})
	addRegional(s, true)
	w, out := auditTo(t)
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Audit = w }, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.URL})
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"m_regional","arguments":{"region":"us","zone":"z1"},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice", body, func(req *http.Request) {
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", "m_regional")
		req.Header.Set("Mcp-Param-Region", "us")
	})
	var got struct {
		ID    int `json:"id"`
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("%d %s: %v", r.status, r.body, err)
	}
	if r.status != http.StatusBadRequest || got.ID != 7 || got.Error.Code != -32020 {
		t.Errorf("answer %d %s, want 400 with error -32020 for id 7", r.status, r.body)
	}
	calls := log.get()
	if len(calls) != 2 || calls[0].status != http.StatusBadRequest || calls[1].status != http.StatusBadRequest {
		t.Errorf("tools/call upstream: %+v, want two refused", calls)
	}
	if n := e.router.UpstreamFailures.Load(); n != 0 {
		t.Errorf("%d upstream failures", n)
	}
	// One event per request the server got: both refused.
	waitFor(t, "the upstream events", func() bool { return len(auditLines(out)) == 2 })
	for _, line := range auditLines(out) {
		var ev struct {
			Status int    `json:"status"`
			Error  string `json:"error"`
			Tool   string `json:"tool"`
		}
		if err := json.Unmarshal(line, &ev); err != nil || ev.Status != http.StatusBadRequest || ev.Error != "" || ev.Tool != "regional" {
			t.Errorf("audit event %s (%v), want tool regional, status 400 and no error", line, err)
		}
	}
}

// TestParamHeadersHostileSchema: a server whose listed definition marks an
// argument with a header name that is not an HTTP token (a space, CR/LF
// smuggling another header, a colon, nothing), names one header twice,
// marks an argument that is not a string, an integer or a boolean, marks one
// that no chain of properties reaches (items, oneOf, $defs), or marks more
// arguments than the router sends headers for, cannot have that
// tool called through the router: the client gets a clear error and
// nothing is sent to the server. The server's real tool is valid (go-sdk
// refuses to serve such a one): only its list is rewritten, in a
// middleware of its own.
func TestParamHeadersHostileSchema(t *testing.T) {
	many := `{"type":"object","properties":{`
	for i := range 33 {
		many += fmt.Sprintf(`"a%d":{"type":"string","x-mcp-header":"H%d"},`, i, i)
	}
	many += `"region":{"type":"string"}}}`
	for _, tc := range []struct {
		name, schema string
	}{
		{name: "space", schema: `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Re gion"}}}`},
		{name: "CRLF", schema: `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region\r\nX-Evil: 1"}}}`},
		{name: "colon", schema: `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region:"}}}`},
		{name: "empty", schema: `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":""}}}`},
		{name: "one header twice", schema: `{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"zone":{"type":"string","x-mcp-header":"REGION"}}}`},
		{name: "too many", schema: many},
		{name: "a number", schema: `{"type":"object","properties":{"region":{"type":"number","x-mcp-header":"Region"}}}`},
		{name: "untyped", schema: `{"type":"object","properties":{"region":{"x-mcp-header":"Region"}}}`},
		{name: "under items", schema: `{"type":"object","properties":{"region":{"type":"string"},"tags":{"type":"array","items":{"type":"string","x-mcp-header":"Tag"}}}}`},
		{name: "under oneOf", schema: `{"type":"object","properties":{"region":{"oneOf":[{"type":"string","x-mcp-header":"Region"},{"type":"integer"}]}}}`},
		{name: "in $defs", schema: `{"type":"object","$defs":{"r":{"type":"string","x-mcp-header":"Region"}},"properties":{"region":{"$ref":"#/$defs/r"}}}`},
	} {
		for _, client := range []string{"2025-11-25", "2026-07-28"} {
			t.Run(tc.name+", "+client, func(t *testing.T) {
				up, log, _ := paramServer(t, "modern", func(tool *mcp.Tool) *mcp.Tool {
					c := *tool
					c.InputSchema = json.RawMessage(tc.schema)
					return &c
				})
				e := newEnv(t, nil, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.URL})
				// Not listed first: a 2026 go-sdk client leaves such a
				// tool out of its list, and calls it all the same.
				cs := connectAs(t, e.front.URL, e.key, "alice", client)
				_, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "m_regional", Arguments: map[string]any{"region": "us"}})
				var we *jsonrpc.Error
				if !errors.As(err, &we) || we.Code != -32603 || !strings.Contains(we.Message, "x-mcp-header") {
					t.Errorf("call: %v, want the definition refused", err)
				}
				if calls := log.get(); len(calls) != 0 {
					t.Errorf("the server got %d tools/call", len(calls))
				}
				if n := e.router.UpstreamFailures.Load(); n == 0 {
					t.Error("a definition the router cannot honour is not counted as the server's failure")
				}
				// SEP-2243: a client MUST leave such a tool out of
				// tools/list; the router does for its clients (a 2025
				// go-sdk client would list it, a 2026 one drops it itself).
				if names := toolNames(t, cs); slices.Contains(names, "m_regional") {
					t.Errorf("tools/list %q holds the tool whose definition is invalid", names)
				}
			})
		}
	}
}

// TestParamHeadersUnmirrorable: an argument marked x-mcp-header that no
// header can carry (a fraction, an object) is refused as invalid params
// before anything is sent.
func TestParamHeadersUnmirrorable(t *testing.T) {
	up, log, _ := paramServer(t, "modern", nil)
	w, out := auditTo(t)
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Audit = w }, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.URL})
	cs := connectAs(t, e.front.URL, e.key, "alice", "2025-11-25")
	for _, arg := range []any{1.5, map[string]any{"a": "b"}, []any{"us"}} {
		_, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "m_regional", Arguments: map[string]any{"region": arg}})
		var we *jsonrpc.Error
		if !errors.As(err, &we) || we.Code != -32602 {
			t.Errorf("region %v: %v, want invalid params", arg, err)
		}
	}
	if calls := log.get(); len(calls) != 0 {
		t.Errorf("the server got %d tools/call", len(calls))
	}
	waitFor(t, "the upstream events", func() bool { return len(auditLines(out)) == 3 })
	for _, line := range auditLines(out) {
		if !strings.Contains(string(line), `"error":"params_unmirrorable"`) {
			t.Errorf("audit event %s, want error params_unmirrorable", line)
		}
	}
}

// TestParamHeadersBridgedInput: a 2025 client's call to a 2026-07-28 tool
// that asks for input (SEP-2322, bridged by the router) carries the tool's
// Mcp-Param headers on the first request and on the retry with the
// client's answers.
func TestParamHeadersBridgedInput(t *testing.T) {
	up, log, s := paramServer(t, "modern", nil)
	s.AddTool(&mcp.Tool{Name: "confirm", InputSchema: regionalSchema(false)}, func(_ context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		r, ok := req.Params.InputResponses["ok"]
		if !ok {
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"ok": &mcp.ElicitParams{Message: "sure?", RequestedSchema: answerSchema}}, RequestState: "s"}, nil
		}
		return text(req.Extra.Header.Get("Mcp-Param-Region") + "|" + r.(*mcp.ElicitResult).Action), nil
	})
	e := newEnv(t, nil, registry.Server{Name: "ns/m", Prefix: "m_", URL: up.URL})
	ic := &inputClient{}
	cs := inputConnect(t, e.front.URL, e.key, "alice", "2025-11-25", ic.options(true))
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "m_confirm", Arguments: map[string]any{"region": "eu"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resultText(t, res); got != "eu|accept" {
		t.Errorf("result %q, want eu|accept", got)
	}
	want := []paramCall{
		{params: map[string]string{"Mcp-Param-Region": "eu"}, status: http.StatusOK},
		{params: map[string]string{"Mcp-Param-Region": "eu"}, status: http.StatusOK},
	}
	if diff := cmp.Diff(want, log.get(), cmp.AllowUnexported(paramCall{})); diff != "" {
		t.Errorf("tools/call upstream (-want +got):\n%s", diff)
	}
}
