//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// pathServer records the path every read_file call ran with.
type pathServer struct {
	url   string
	mu    sync.Mutex
	paths []string
}

func (s *pathServer) ran(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = append(s.paths, path)
}

func (s *pathServer) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths)
}

// startLenientServer is an MCP server (Streamable HTTP, JSON answers, no
// session) that decodes every message, params and tool arguments with Go's
// encoding/json into structs, as mcp-go and many hand-written Go servers do:
// "METHOD", "ARGUMENTS", "argument\u017f" and "PATH" read as method,
// arguments and path. Written here because the point is that decoder.
func startLenientServer(t *testing.T) *pathServer {
	t.Helper()
	s := &pathServer{}
	s.url = "http://" + serve(t, "", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var msg struct {
			ID     json.RawMessage
			Method string
			Params json.RawMessage
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		if msg.ID == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		var result any
		switch msg.Method {
		case "initialize":
			var p struct{ ProtocolVersion string }
			_ = json.Unmarshal(msg.Params, &p)
			result = map[string]any{
				"protocolVersion": p.ProtocolVersion,
				"capabilities":    map[string]any{"tools": map[string]any{}},
				"serverInfo":      map[string]any{"name": "lenient", "version": "1"},
			}
		case "ping":
			result = map[string]any{}
		case "tools/list":
			result = map[string]any{"tools": []any{map[string]any{
				"name": "read_file",
				"inputSchema": map[string]any{"type": "object", "properties": map[string]any{
					"path": map[string]any{"type": "string"}, "kind": map[string]any{"type": "string"},
				}},
			}}}
		case "tools/call":
			var p struct {
				Name      string
				Arguments struct{ Path, Kind string }
			}
			if err := json.Unmarshal(msg.Params, &p); err != nil || p.Name != "read_file" {
				result = map[string]any{"isError": true, "content": []any{map[string]any{"type": "text", "text": "bad call"}}}
				break
			}
			s.ran(p.Arguments.Path)
			result = map[string]any{"content": []any{map[string]any{"type": "text", "text": "read " + p.Arguments.Path}}}
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`, msg.ID)
			return
		}
		out, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})).Addr + "/mcp"
	return s
}

// startStrictServer is a go-sdk server, whose decoding is case-sensitive,
// with a read_file tool taking {path, kind}.
func startStrictServer(t *testing.T) *pathServer {
	t.Helper()
	s := &pathServer{}
	type readArgs struct {
		Path string `json:"path"`
		Kind string `json:"kind,omitempty"`
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "strict", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "read_file", Description: "reads a file"},
		func(_ context.Context, _ *mcp.CallToolRequest, in readArgs) (*mcp.CallToolResult, any, error) {
			s.ran(in.Path)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "read " + in.Path}}}, nil, nil
		})
	s.url = "http://" + serve(t, "", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)).Addr + "/mcp"
	return s
}

// TestArgumentKeyFolding is the open security issue's walk: a policy denies
// a path under /etc; every spelling of path and arguments that a lenient
// upstream reads as path (PATH, Path, pAth, escapes, ARGUMENTS, argument
// U+017F, Kelvin-sign keys) is refused with 400 or denied with 403 through
// front → authz → router, in both engines, and neither the lenient nor the
// case-sensitive upstream ever runs the tool with a path under /etc. The
// callers are anonymous (no identity section): the issue is the body.
func TestArgumentKeyFolding(t *testing.T) {
	lenient, strict := startLenientServer(t), startStrictServer(t)
	policies := map[string]string{
		"no-etc.cel": `mcp.method != "tools/call" || !has(mcp.arguments) || !has(mcp.arguments.path) ||
  type(mcp.arguments.path) == string && !mcp.arguments.path.startsWith("/etc")
`,
		"no-etc.rego": `package mcp.authz

default allow := false

allow if input.mcp.method != "tools/call"

allow if {
	input.mcp.method == "tools/call"
	not under_etc
}

under_etc if startswith(input.mcp.arguments.path, "/etc")

under_etc if not is_string(object.get(object.get(input.mcp, "arguments", {}), "path", ""))
`,
	}
	for _, file := range []string{"no-etc.cel", "no-etc.rego"} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			policy := writeFile(t, dir, file, policies[file])
			front, authzAddr, router, metrics := freePort(t), freePort(t), freePort(t), freePort(t)
			cfg := writeFile(t, dir, "mcp-authz.yaml", fmt.Sprintf(`authz:
  listen: %s
gateway:
  listen: %s
  upstream: http://%s
router:
  listen: %s
metrics:
  listen: %s
log:
  level: debug
servers:
  - name: mcp-test/lenient
    prefix: lenient_
    url: %s
  - name: mcp-test/strict
    prefix: strict_
    url: %s
policies:
  - name: no-etc
    file: %s
`, authzAddr, front, router, router, metrics, lenient.url, strict.url, policy))
			p := start(t, front, nil, filepath.Join(bin, "mcp-authz"), "serve", "--config", cfg)
			waitPort(t, authzAddr, p)
			waitPort(t, router, p)
			u := "http://" + front + "/mcp"
			h := sessionHeaders(t, u, "")

			call := func(tool, params string) string {
				return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `",` + params + `}}`
			}
			for _, tool := range []string{"lenient_read_file", "strict_read_file"} {
				for _, tc := range []struct {
					name   string
					params string
					want   int
					code   string // in the body: the JSON-RPC code of a 400, the reason of a 403
				}{
					{name: "path", params: `"arguments":{"path":"/etc/passwd"}`, want: http.StatusForbidden, code: `"reason":"tool_denied"`},
					{name: "PATH", params: `"arguments":{"PATH":"/etc/passwd"}`, want: http.StatusForbidden, code: `"reason":"tool_denied"`},
					{name: "Path", params: `"arguments":{"Path":"/etc/passwd"}`, want: http.StatusForbidden, code: `"reason":"tool_denied"`},
					{name: "pAth", params: `"arguments":{"pAth":"/etc/shadow"}`, want: http.StatusForbidden, code: `"reason":"tool_denied"`},
					{name: "escaped p\\u0061th", params: `"arguments":{"p\u0061th":"/etc/passwd"}`, want: http.StatusForbidden, code: `"reason":"tool_denied"`},
					{name: "escaped \\u0050ATH", params: `"arguments":{"\u0050ATH":"/etc/passwd"}`, want: http.StatusForbidden, code: `"reason":"tool_denied"`},
					{name: "Kelvin-sign KIND beside PATH", params: `"arguments":{"\u212aIND":"file","PATH":"/etc/passwd"}`, want: http.StatusForbidden, code: `"reason":"tool_denied"`},
					{name: "path not a string", params: `"arguments":{"Path":["/etc/passwd"]}`, want: http.StatusForbidden, code: `"reason":"tool_denied"`},
					{name: "path and PATH", params: `"arguments":{"path":"/tmp/x","PATH":"/etc/passwd"}`, want: http.StatusBadRequest, code: `"code":-32600`},
					{name: "PATH and escaped path", params: `"arguments":{"PATH":"/etc/passwd","p\u0061th":"/tmp/x"}`, want: http.StatusBadRequest, code: `"code":-32600`},
					{name: "kind and Kelvin-sign kind", params: `"arguments":{"path":"/tmp/x","kind":"file","\u212aind":"/etc"}`, want: http.StatusBadRequest, code: `"code":-32600`},
					{name: "ARGUMENTS", params: `"ARGUMENTS":{"path":"/etc/passwd"}`, want: http.StatusBadRequest, code: `"code":-32602`},
					{name: "Arguments beside arguments", params: `"arguments":{"path":"/tmp/x"},"Arguments":{"path":"/etc/passwd"}`, want: http.StatusBadRequest, code: `"code":-32600`},
					{name: "argument long s", params: "\"argument\u017f\":{\"path\":\"/etc/passwd\"}", want: http.StatusBadRequest, code: `"code":-32602`},
					{name: "argument escaped long s", params: `"argument\u017f":{"path":"/etc/passwd"}`, want: http.StatusBadRequest, code: `"code":-32602`},
					{name: "NAME", params: `"NAME":"read_file","arguments":{"path":"/etc/passwd"}`, want: http.StatusBadRequest, code: `"code":-32600`},
				} {
					t.Run(tool+"/"+tc.name, func(t *testing.T) {
						resp, body := post(t.Context(), t, u, call(tool, tc.params), h)
						if resp.StatusCode != tc.want {
							t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
						}
						if !strings.Contains(string(body), tc.code) {
							t.Errorf("body %s, want %s", body, tc.code)
						}
					})
				}
				// Controls: an allowed path runs, so the denials above are
				// the policy's and the refusals the parser's.
				resp, body := post(t.Context(), t, u, call(tool, `"arguments":{"path":"/tmp/ok"}`), h)
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "read /tmp/ok") {
					t.Errorf("%s /tmp/ok: %d %s", tool, resp.StatusCode, body)
				}
			}
			resp, body := post(t.Context(), t, u, call("lenient_read_file", `"arguments":{"PATH":"/tmp/upper"}`), h)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "read /tmp/upper") {
				t.Errorf("lenient PATH /tmp/upper: %d %s; the lenient server must read PATH as path", resp.StatusCode, body)
			}
		})
	}
	for name, s := range map[string]*pathServer{"lenient": lenient, "strict": strict} {
		got := s.calls()
		if !slices.Contains(got, "/tmp/ok") {
			t.Errorf("%s upstream ran %q, never /tmp/ok", name, got)
		}
		for _, path := range got {
			if strings.HasPrefix(path, "/etc") {
				t.Errorf("%s upstream ran read_file with %q", name, path)
			}
		}
	}
}
