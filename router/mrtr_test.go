//nolint:staticcheck // sampling and roots are deprecated in 2026-07-28 (SEP-2577), still served: these tests bridge them.
package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/forward"
	"github.com/mcp-authz/mcp-authz/router/mrtr"
	"github.com/mcp-authz/mcp-authz/router/session"
)

// wireLog records what a server received and answered, byte for byte.
type wireLog struct {
	mu        sync.Mutex
	exchanges []*exchange
	ended     []string // tools whose call ended without an answer (cancelled)
}

// exchange is one POST: its body, and its answer (JSON or SSE) so far.
type exchange struct {
	request []byte
	answer  bytes.Buffer // guarded by wireLog.mu
}

func (l *wireLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		x := &exchange{request: body}
		l.mu.Lock()
		l.exchanges = append(l.exchanges, x)
		l.mu.Unlock()
		h.ServeHTTP(&teeWriter{ResponseWriter: w, log: l, x: x}, r)
	})
}

// calls returns the tools/call bodies the server received.
func (l *wireLog) calls() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, x := range l.exchanges {
		if bytes.Contains(x.request, []byte(`"tools/call"`)) {
			out = append(out, x.request)
		}
	}
	return out
}

// lastAnswer is what the server answered the last POST so far.
func (l *wireLog) lastAnswer() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.exchanges[len(l.exchanges)-1].answer.String()
}

func (l *wireLog) cancelled() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ended)
}

// teeWriter copies what a handler writes into its exchange.
type teeWriter struct {
	http.ResponseWriter
	log *wireLog
	x   *exchange
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.log.mu.Lock()
	w.x.answer.Write(b)
	w.log.mu.Unlock()
	return w.ResponseWriter.Write(b)
}

func (w *teeWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var answerSchema = &jsonschema.Schema{Type: "object", Properties: map[string]*jsonschema.Schema{"answer": {Type: "string"}}}

// inputServer is a go-sdk server of one generation whose tools need the
// client's input: "modern" (2026-07-28 only, stateless) asks with an
// InputRequiredResult (SEP-2322) and reads the retry's inputResponses and
// requestState; "legacy" (2025 revisions only, sessions) asks with
// server-to-client requests during the call. Tools: confirm (elicitation),
// sample (sampling), roots, twice (two elicitations in a row) and forever
// (never satisfied). Each answers its input, the requestState it got
// (modern) and the Authorization of the final request.
func inputServer(t *testing.T, gen string) (*httptest.Server, *wireLog) {
	log := &wireLog{}
	opts := &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25", "2025-06-18", "2025-03-26"}}
	if gen == "modern" {
		opts = &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: gen, Version: "1"}, opts)
	ended := func(tool string) {
		log.mu.Lock()
		log.ended = append(log.ended, tool)
		log.mu.Unlock()
	}
	ask := func(text string) *mcp.ElicitParams {
		return &mcp.ElicitParams{Message: text, RequestedSchema: answerSchema}
	}
	sampling := &mcp.CreateMessageParams{MaxTokens: 10, Messages: []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: "capital of France?"}}}}
	tools := map[string]func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (string, error){}
	if gen == "modern" {
		need := func(req *mcp.CallToolRequest, key string, ir mcp.InputRequest, state string) (mcp.InputResponse, *mcp.CallToolResult) {
			if r, ok := req.Params.InputResponses[key]; ok {
				return r, nil
			}
			return nil, &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{key: ir}, RequestState: state}
		}
		mtool := func(name string, h func(req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, string)) {
			mcp.AddTool(s, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
				res, out := h(req, in)
				if res != nil {
					return res, nil, nil
				}
				return text(out + "|" + req.Params.RequestState + "|" + req.Extra.Header.Get("Authorization")), nil, nil
			})
		}
		mtool("confirm", func(req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, string) {
			r, res := need(req, "confirm", ask(in.Text), "state:"+in.Text)
			if res != nil {
				return res, ""
			}
			e := r.(*mcp.ElicitResult)
			return nil, fmt.Sprint("confirm:", e.Action, ":", e.Content["answer"])
		})
		mtool("sample", func(req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, string) {
			r, res := need(req, "llm", sampling, "")
			if res != nil {
				return res, ""
			}
			m := r.(*mcp.CreateMessageWithToolsResult)
			return nil, fmt.Sprint("sample:", m.Model, ":", m.Content[0].(*mcp.TextContent).Text)
		})
		mtool("roots", func(req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, string) {
			r, res := need(req, "roots", &mcp.ListRootsParams{}, "")
			if res != nil {
				return res, ""
			}
			var uris []string
			for _, root := range r.(*mcp.ListRootsResult).Roots {
				uris = append(uris, root.URI)
			}
			return nil, "roots:" + strings.Join(uris, ",")
		})
		mtool("twice", func(req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, string) {
			switch req.Params.RequestState {
			case "":
				return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"first": ask("first?")}, RequestState: "1"}, ""
			case "1":
				a := req.Params.InputResponses["first"].(*mcp.ElicitResult).Content["answer"]
				return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"second": ask("second?")}, RequestState: fmt.Sprint("2:", a)}, ""
			}
			return nil, fmt.Sprint("twice:", strings.TrimPrefix(req.Params.RequestState, "2:"), ",", req.Params.InputResponses["second"].(*mcp.ElicitResult).Content["answer"])
		})
		mtool("forever", func(req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, string) {
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"again": ask("again?")}, RequestState: "x"}, ""
		})
	} else {
		tools["confirm"] = func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (string, error) {
			e, err := req.Session.Elicit(ctx, ask(in.Text))
			if err != nil {
				return "", err
			}
			return fmt.Sprint("confirm:", e.Action, ":", e.Content["answer"]), nil
		}
		tools["sample"] = func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (string, error) {
			m, err := req.Session.CreateMessage(ctx, sampling)
			if err != nil {
				return "", err
			}
			return fmt.Sprint("sample:", m.Model, ":", m.Content.(*mcp.TextContent).Text), nil
		}
		tools["roots"] = func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (string, error) {
			r, err := req.Session.ListRoots(ctx, nil)
			if err != nil {
				return "", err
			}
			var uris []string
			for _, root := range r.Roots {
				uris = append(uris, root.URI)
			}
			return "roots:" + strings.Join(uris, ","), nil
		}
		tools["twice"] = func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (string, error) {
			var got []string
			for _, q := range []string{"first?", "second?"} {
				e, err := req.Session.Elicit(ctx, ask(q))
				if err != nil {
					return "", err
				}
				got = append(got, fmt.Sprint(e.Content["answer"]))
			}
			return "twice:" + strings.Join(got, ","), nil
		}
		tools["forever"] = func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (string, error) {
			for {
				if _, err := req.Session.Elicit(ctx, ask("again?")); err != nil {
					return "", err
				}
			}
		}
	}
	for name, f := range tools {
		mcp.AddTool(s, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			out, err := f(ctx, req, in)
			if err != nil {
				if ctx.Err() != nil {
					ended(name)
				}
				return nil, nil, err
			}
			return text(out + "||" + req.Extra.Header.Get("Authorization")), nil, nil
		})
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: gen == "modern"})
	srv := httptest.NewServer(log.wrap(h))
	t.Cleanup(srv.Close)
	return srv, log
}

// inputClient is what the tests' clients answer: elicitation "yes" (then
// "no"), sampling "Paris" from model m1, roots file:///r1.
type inputClient struct {
	mu     sync.Mutex
	asked  []string // elicitation messages, sampling prompts, "roots"
	answer func(msg string) (*mcp.ElicitResult, error)
}

func (ic *inputClient) note(s string) {
	ic.mu.Lock()
	ic.asked = append(ic.asked, s)
	ic.mu.Unlock()
}

func (ic *inputClient) options(disableMRTR bool) *mcp.ClientOptions {
	o := &mcp.ClientOptions{
		ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
			ic.note(req.Params.Message)
			if ic.answer != nil {
				return ic.answer(req.Params.Message)
			}
			a := "yes"
			if req.Params.Message == "second?" {
				a = "no"
			}
			return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"answer": a}}, nil
		},
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			ic.note("sampling")
			return &mcp.CreateMessageResult{Model: "m1", Role: "assistant", Content: &mcp.TextContent{Text: "Paris"}}, nil
		},
	}
	if disableMRTR {
		o.MultiRoundTrip = &mcp.MultiRoundTripOptions{Disabled: true}
	}
	return o
}

// inputConnect connects a go-sdk client speaking version through url as
// subject, with roots file:///r1.
func inputConnect(t *testing.T, url string, key assertion.Key, subject, version string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "input-client", Version: "1"}, opts)
	c.AddRoots(&mcp.Root{URI: "file:///r1"})
	cs, _ := dial(t, url, key, subject, version, c)
	return cs
}

// callText calls tool and returns its text, or the error.
func callText(t *testing.T, cs *mcp.ClientSession, tool, arg string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"text": arg}})
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", errors.New(resultText(t, res))
	}
	if res.NeedsInput() {
		return "", errors.New("the client got an InputRequiredResult")
	}
	return resultText(t, res), nil
}

// inputCases are what each tool of inputServer answers the tests' client.
var inputCases = []struct{ name, tool, want string }{
	{"elicitation", "up_confirm", "confirm:accept:yes"},
	{"sampling", "up_sample", "sample:m1:Paris"},
	{"roots", "up_roots", "roots:file:///r1"},
	{"two rounds", "up_twice", "twice:yes,no"},
}

// TestInputAcrossGenerations: a tool that needs the client's input (SEP-2322
// on one side, server-to-client requests on the other) completes through the
// router for clients and servers of both generations, with the client's own
// handlers answering, and the upstream token (never the caller's) on the
// final request.
func TestInputAcrossGenerations(t *testing.T) {
	for _, gen := range generations {
		t.Run(gen.name, func(t *testing.T) {
			up, log := inputServer(t, gen.server)
			e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
			ic := &inputClient{}
			// A 2025 client knows nothing of InputRequiredResult: go-sdk's
			// own handling of it is off.
			cs := inputConnect(t, e.front.URL, e.key, "alice", gen.client, ic.options(gen.client < "2026"))
			for _, tc := range inputCases {
				t.Run(tc.name, func(t *testing.T) {
					got, err := callText(t, cs, tc.tool, "sure?")
					if err != nil {
						t.Fatal(err)
					}
					parts := strings.Split(got, "|")
					if parts[0] != tc.want || parts[2] != "Bearer up-ns/up" {
						t.Errorf("got %q, want %s with the upstream token", got, tc.want)
					}
				})
			}
			if gen.server == "modern" {
				if n := len(log.calls()); n != 9 {
					t.Errorf("the server got %d calls, want 9 (each asks once, twice twice)", n)
				}
			}
		})
	}
}

// sseData is the last data of an SSE answer, or the body.
func sseData(body string) string {
	if !strings.HasPrefix(body, "event:") && !strings.HasPrefix(body, "data:") {
		return body
	}
	last := ""
	for line := range strings.Lines(body) {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			last = strings.TrimSpace(d)
		}
	}
	return last
}

// rawResult is a JSON-RPC answer with its result's members as sent.
type rawResult struct {
	ID     json.RawMessage            `json:"id"`
	Result map[string]json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func parseRaw(t *testing.T, body string) rawResult {
	t.Helper()
	var a rawResult
	if err := json.Unmarshal([]byte(sseData(body)), &a); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	return a
}

// callBody is a 2026-07-28 tools/call of name with more params members,
// from a client that declares elicitation, sampling and roots.
func callBody(id int, name, more string) string {
	p := `"name":"` + name + `","arguments":{"text":"sure?"}`
	if more != "" {
		p += "," + more
	}
	b := strings.Replace(statelessBody("tools/call", "2026-07-28", p), `"id":7`, fmt.Sprintf(`"id":%d`, id), 1)
	return strings.Replace(b, `"io.modelcontextprotocol/clientCapabilities":{}`, `"io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"sampling":{},"roots":{}}`, 1)
}

// callRaw posts a 2026-07-28 tools/call body as subject to url.
func callRaw(t *testing.T, url string, key assertion.Key, subject, name, body string) rawResult {
	t.Helper()
	r := do(t, url, key, http.MethodPost, "", subject, body, statelessHeaders2026("tools/call", name, "2026-07-28"))
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	return parseRaw(t, r.body)
}

// member is params member name of a body, as sent.
func member(t *testing.T, body []byte, name string) json.RawMessage {
	t.Helper()
	var m struct {
		Params map[string]json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m.Params[name]
}

// TestInputPassThrough: between a 2026-07-28 client and server the router
// passes inputRequests and requestState to the client byte for byte, and
// the retry's inputResponses and requestState to the server byte for byte,
// with only the tool's prefix stripped. The retry is a request of its own:
// it needs an assertion for its own body, and goes to the server of the
// tool it names, whatever its requestState says.
func TestInputPassThrough(t *testing.T) {
	up, log := inputServer(t, "modern")
	other, otherLog := inputServer(t, "modern")
	e := newEnv(t, nil,
		registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL},
		registry.Server{Name: "ns/other", Prefix: "other_", URL: other.URL},
	)
	first := callRaw(t, e.front.URL, e.key, "alice", "up_confirm", callBody(1, "up_confirm", ""))
	if string(first.Result["resultType"]) != `"input_required"` {
		t.Fatalf("first answer: %v", first.Result)
	}
	upAnswer := parseRaw(t, log.lastAnswer())
	for _, k := range []string{"inputRequests", "requestState"} {
		if !bytes.Equal(first.Result[k], upAnswer.Result[k]) {
			t.Errorf("%s changed on the way:\n server %s\n client %s", k, upAnswer.Result[k], first.Result[k])
		}
	}
	state := first.Result["requestState"]
	responses := `{"confirm":{"action":"accept","content":{"answer":"ok"}}}`
	retry := callBody(2, "up_confirm", `"inputResponses":`+responses+`,"requestState":`+string(state))

	t.Run("retry", func(t *testing.T) {
		a := callRaw(t, e.front.URL, e.key, "alice", "up_confirm", retry)
		if a.Error != nil || !strings.Contains(string(a.Result["content"]), "confirm:accept:ok|state:sure?|Bearer up-ns/up") {
			t.Fatalf("retry answered %+v", a)
		}
		calls := log.calls()
		got := calls[len(calls)-1]
		if string(member(t, got, "inputResponses")) != responses || !bytes.Equal(member(t, got, "requestState"), state) || string(member(t, got, "name")) != `"confirm"` {
			t.Errorf("the server got %s", got)
		}
	})
	t.Run("retry needs its own assertion", func(t *testing.T) {
		n := len(log.calls())
		r := do(t, e.front.URL, e.key, http.MethodPost, "", "alice", callBody(1, "up_confirm", ""), func(req *http.Request) {
			statelessHeaders2026("tools/call", "up_confirm", "2026-07-28")(req)
			// The first request's assertion on the retry's body.
			v := req.Header.Get(assertion.Header)
			req.Body = io.NopCloser(strings.NewReader(retry))
			req.ContentLength = int64(len(retry))
			req.Header.Set(assertion.Header, v)
		})
		if r.status != http.StatusUnauthorized || len(log.calls()) != n {
			t.Errorf("status %d, server calls %d -> %d", r.status, n, len(log.calls()))
		}
	})
	t.Run("retry naming another tool", func(t *testing.T) {
		n := len(log.calls())
		body := strings.Replace(retry, "up_confirm", "other_confirm", 1)
		a := callRaw(t, e.front.URL, e.key, "alice", "other_confirm", body)
		if a.Error != nil || !strings.Contains(string(a.Result["content"]), "confirm:accept:ok|state:sure?|Bearer up-ns/other") {
			t.Fatalf("answered %+v", a)
		}
		calls := otherLog.calls()
		if len(log.calls()) != n || len(calls) != 1 || !bytes.Equal(member(t, calls[0], "requestState"), state) {
			t.Errorf("the retry did not go (only) to the tool it names: up %d -> %d, other %d", n, len(log.calls()), len(calls))
		}
	})
}

// TestInputBridgeLimits: what a 2025 client's call to a 2026-07-28 server
// that needs input ends with when it cannot complete: a clear error past
// maxInputRounds, for a capability the client did not declare, for an
// error the client answers, and past inputTimeout.
func TestInputBridgeLimits(t *testing.T) {
	up, log := inputServer(t, "modern")
	e := newEnv(t, func(c *Config) { c.MaxInputRounds = 3; c.InputTimeout = 300 * time.Millisecond },
		registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
	for _, tc := range []struct {
		name  string
		tool  string
		opts  func(ic *inputClient) *mcp.ClientOptions
		want  string
		calls int
	}{
		{"rounds", "up_forever", func(ic *inputClient) *mcp.ClientOptions { return ic.options(true) }, "more than 3 times (maxInputRounds)", 4},
		{"undeclared", "up_sample", func(ic *inputClient) *mcp.ClientOptions {
			o := ic.options(true)
			o.CreateMessageHandler = nil
			return o
		}, "a capability the client did not declare", 1},
		{"client error", "up_confirm", func(ic *inputClient) *mcp.ClientOptions {
			ic.answer = func(string) (*mcp.ElicitResult, error) { return nil, errors.New("no way") }
			return ic.options(true)
		}, `answered the server's "confirm" input request with an error`, 1},
		{"timeout", "up_confirm", func(ic *inputClient) *mcp.ClientOptions {
			ic.answer = func(string) (*mcp.ElicitResult, error) {
				time.Sleep(time.Second) // the client answers late: past inputTimeout is what is under test
				return &mcp.ElicitResult{Action: "decline"}, nil
			}
			return ic.options(true)
		}, "did not answer the server's input request in time (inputTimeout)", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(log.calls())
			cs := inputConnect(t, e.front.URL, e.key, "alice", "2025-11-25", tc.opts(&inputClient{}))
			_, err := callText(t, cs, tc.tool, "sure?")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if got := len(log.calls()) - n; got != tc.calls {
				t.Errorf("server calls %d, want %d", got, tc.calls)
			}
		})
	}
}

// heldRaw starts a 2026-07-28 call of up_confirm as subject through url and
// returns the router's requestState for it.
func heldRaw(t *testing.T, url string, key assertion.Key, subject string, id int) string {
	t.Helper()
	a := callRaw(t, url, key, subject, "up_confirm", callBody(id, "up_confirm", ""))
	var reqs map[string]struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(a.Result["inputRequests"], &reqs)
	var state string
	_ = json.Unmarshal(a.Result["requestState"], &state)
	if string(a.Result["resultType"]) != `"input_required"` || reqs[mrtr.InputKey].Method != "elicitation/create" || state == "" {
		t.Fatalf("first answer %+v", a)
	}
	return state
}

// retryRaw is the retry of a held up_confirm call (answer "ok") as subject.
func retryRaw(t *testing.T, url string, key assertion.Key, subject, name, state string) rawResult {
	t.Helper()
	more := `"inputResponses":{"` + mrtr.InputKey + `":{"action":"accept","content":{"answer":"ok"}}},"requestState":` + string(mustJSON(t, state))
	return callRaw(t, url, key, subject, name, callBody(9, name, more))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInputHeld: a 2026-07-28 client's call to a server that speaks only
// 2025 revisions and asks during the call. The router answers with an
// InputRequiredResult whose requestState it seals, holds the upstream call,
// and resumes it with the retry, once, for the same caller, server and
// tool; anything else gets a clear error and changes nothing, and a held
// call nobody resumes is cancelled upstream.
func TestInputHeld(t *testing.T) {
	up, log := inputServer(t, "legacy")
	srv := registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL}
	e := newEnv(t, func(c *Config) { c.MaxInputRounds = 3 }, srv)
	ok := func(t *testing.T, a rawResult) {
		t.Helper()
		if a.Error != nil || !strings.Contains(string(a.Result["content"]), "confirm:accept:ok||Bearer up-ns/up") || string(a.Result["resultType"]) != `"complete"` {
			t.Fatalf("retry answered %+v", a)
		}
	}
	refused := func(t *testing.T, a rawResult, want string) {
		t.Helper()
		if a.Error == nil || a.Error.Code != forward.CodeInvalidParams || !strings.Contains(a.Error.Message, want) {
			t.Fatalf("answered %+v, want -32602 %q", a, want)
		}
	}

	t.Run("resumed once", func(t *testing.T) {
		state := heldRaw(t, e.front.URL, e.key, "alice", 1)
		ok(t, retryRaw(t, e.front.URL, e.key, "alice", "up_confirm", state))
		refused(t, retryRaw(t, e.front.URL, e.key, "alice", "up_confirm", state), "not held by this router replica")
	})
	t.Run("refused retries change nothing", func(t *testing.T) {
		state := heldRaw(t, e.front.URL, e.key, "alice", 1)
		sid := initRaw(t, e.front.URL, e.key, "alice")
		tampered := []byte(state)
		tampered[len(tampered)/2] ^= 1
		for _, tc := range []struct{ name, subject, tool, state, want string }{
			{"another caller", "bob", "up_confirm", state, "invalid requestState"},
			{"another tool", "alice", "up_sample", state, "invalid requestState"},
			{"tampered", "alice", "up_confirm", string(tampered), "invalid requestState"},
			{"a session id", "alice", "up_confirm", sid, "invalid requestState"},
			{"not base64", "alice", "up_confirm", "%%%", "invalid requestState"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				refused(t, retryRaw(t, e.front.URL, e.key, tc.subject, tc.tool, tc.state), tc.want)
			})
		}
		a := callRaw(t, e.front.URL, e.key, "alice", "up_confirm", callBody(4, "up_confirm", `"inputResponses":{}`))
		refused(t, a, "inputResponses without requestState")
		ok(t, retryRaw(t, e.front.URL, e.key, "alice", "up_confirm", state))
	})
	t.Run("asked again without inputResponses", func(t *testing.T) {
		state := heldRaw(t, e.front.URL, e.key, "alice", 1)
		a := callRaw(t, e.front.URL, e.key, "alice", "up_confirm", callBody(3, "up_confirm", `"requestState":`+string(mustJSON(t, state))))
		var again string
		_ = json.Unmarshal(a.Result["requestState"], &again)
		if string(a.Result["resultType"]) != `"input_required"` || again == "" || again == state {
			t.Fatalf("answered %+v", a)
		}
		ok(t, retryRaw(t, e.front.URL, e.key, "alice", "up_confirm", again))
	})
	t.Run("another replica", func(t *testing.T) {
		r2 := newRouter(t, Config{SessionKeyFiles: []string{e.keyFile}}, Deps{Registry: e.reg, Authorizer: e.auth, AssertionKey: e.key})
		front2 := newServer(t, r2)
		state := heldRaw(t, e.front.URL, e.key, "alice", 1)
		refused(t, retryRaw(t, front2, e.key, "alice", "up_confirm", state), "another replica holds it")
		ok(t, retryRaw(t, e.front.URL, e.key, "alice", "up_confirm", state))
	})
	t.Run("rounds", func(t *testing.T) {
		a := callRaw(t, e.front.URL, e.key, "alice", "up_forever", callBody(1, "up_forever", ""))
		for range 3 {
			var state string
			_ = json.Unmarshal(a.Result["requestState"], &state)
			if state == "" {
				break
			}
			a = retryRaw(t, e.front.URL, e.key, "alice", "up_forever", state)
		}
		if a.Error == nil || !strings.Contains(a.Error.Message, "more than 3 times (maxInputRounds)") {
			t.Fatalf("answered %+v", a)
		}
		waitFor(t, "the upstream's cancellation of forever", func() bool { return slices.Contains(log.cancelled(), "forever") })
	})
}

// TestInputHeldLate: a held call nobody resumes within inputTimeout is
// cancelled upstream (notifications/cancelled, its answer closed), and its
// late retry gets a clear error.
func TestInputHeldLate(t *testing.T) {
	up, log := inputServer(t, "legacy")
	e := newEnv(t, func(c *Config) { c.InputTimeout = 200 * time.Millisecond },
		registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
	state := heldRaw(t, e.front.URL, e.key, "alice", 1)
	waitFor(t, "the upstream's cancellation of confirm", func() bool { return slices.Contains(log.cancelled(), "confirm") })
	a := retryRaw(t, e.front.URL, e.key, "alice", "up_confirm", state)
	if a.Error == nil || !strings.Contains(a.Error.Message, "requestState expired") {
		t.Errorf("late retry answered %+v", a)
	}
}

// TestInputAnswerBoundToSession: a 2025 client's answer to an input request
// the router sent reaches the call waiting for it only from that call's
// session: another caller, or another session of the same caller, that
// posts an answer with the same id is answered 202 and changes nothing.
func TestInputAnswerBoundToSession(t *testing.T) {
	e := newEnv(t, nil)
	alice := initRaw(t, e.front.URL, e.key, "alice")
	s, err := session.Open(e.router.sealer, alice)
	if err != nil {
		t.Fatal(err)
	}
	id := json.RawMessage(`"` + mrtr.IDPrefix + `x1"`)
	ch := e.router.input.Wait(mrtr.WaitKey(s.Key(), id))
	answer := `{"jsonrpc":"2.0","id":` + string(id) + `,"result":{"action":"accept","content":{"answer":"forged"}}}`
	for _, tc := range []struct{ name, subject, sid string }{
		{"another caller", "bob", initRaw(t, e.front.URL, e.key, "bob")},
		{"another session", "alice", initRaw(t, e.front.URL, e.key, "alice")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := do(t, e.front.URL, e.key, http.MethodPost, tc.sid, tc.subject, answer, nil); r.status != http.StatusAccepted {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			select {
			case a := <-ch:
				t.Fatalf("delivered %s", a.Result)
			default:
			}
		})
	}
	if r := do(t, e.front.URL, e.key, http.MethodPost, alice, "alice", answer, nil); r.status != http.StatusAccepted {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	select {
	case a := <-ch:
		if !strings.Contains(string(a.Result), "forged") {
			t.Errorf("delivered %s", a.Result)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session's own answer was not delivered")
	}
}
