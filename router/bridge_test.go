package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/tasks"
)

// teeTransport keeps every response body the client reads.
type teeTransport struct {
	base http.RoundTripper
	got  syncbuf.Buffer
}

func (t *teeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(resp.Body, &t.got), resp.Body}
	return resp, nil
}

// TestBridgedRetryTaskIDs: what a 2026-07-28 server sends before its answer
// to the router's retry of a bridged call (a 2025 client's, see
// bridgeInput) reaches the client as on any call's stream: a status
// notification about a task the caller does not know is dropped, and the
// server's own task id never reaches the client.
//
// go-sdk v1.8.0 cannot send a task status notification: the retry is
// answered by a layer in front of the real 2026-07-28 server (inputServer's),
// which serves everything else.
func TestBridgedRetryTaskIDs(t *testing.T) {
	up, _ := inputServer(t, "modern")
	layer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !bytes.Contains(body, []byte(`"inputResponses"`)) {
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, up.URL+r.URL.Path, bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			return
		}
		var m struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(body, &m)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tasks/status\",\"params\":{\"taskId\":\"up-secret\",\"status\":\"working\",%s}}\n\n", taskTimes)
		fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n", m.ID)
	}))
	t.Cleanup(layer.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: layer.URL})
	tee := &teeTransport{}
	cs, _ := e.client("alice", (&inputClient{}).options(true), func(tr *mcp.StreamableClientTransport) {
		tee.base = tr.HTTPClient.Transport
		tr.HTTPClient = &http.Client{Transport: tee}
	})
	got, err := callText(t, cs, "up_confirm", "sure?")
	if err != nil || got != "done" {
		t.Fatalf("call: %q %v", got, err)
	}
	if s := tee.got.String(); strings.Contains(s, "up-secret") {
		t.Errorf("the server's own task id reached the client:\n%s", s)
	}
}

// TestHeldAskTaskIDs: when a 2026-07-28 client's call to a server of an
// earlier revision is held for input (holdForInput), the server's request
// becomes the client's inputRequests with the task id of its related-task
// _meta as the client knows it (here none: blanked), never the server's own.
func TestHeldAskTaskIDs(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "legacy", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25"}})
	mcp.AddTool(s, &mcp.Tool{Name: "related"}, func(ctx context.Context, req *mcp.CallToolRequest, _ echoIn) (*mcp.CallToolResult, any, error) {
		_, err := req.Session.Elicit(ctx, &mcp.ElicitParams{
			Meta:    mcp.Meta{tasks.RelatedTask: map[string]any{"taskId": "up-secret"}},
			Message: "name?", RequestedSchema: answerSchema,
		})
		if err != nil {
			return nil, nil, err
		}
		return text("done"), nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	t.Cleanup(up.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
	a := callRaw(t, e.front.URL, e.key, "alice", "up_related", callBody(1, "up_related", ""))
	if string(a.Result["resultType"]) != `"input_required"` || !strings.Contains(string(a.Result["inputRequests"]), "name?") {
		t.Fatalf("answer %+v", a)
	}
	if s := string(a.Result["inputRequests"]); strings.Contains(s, "up-secret") {
		t.Errorf("the server's own task id reached the client: %s", s)
	}
}

// TestBridgedAskTaskIDs: a 2026-07-28 server's input request that a 2025
// client is asked (bridgeInput) carries the task id of its related-task
// _meta as the client knows it (here none: blanked), never the server's own.
func TestBridgedAskTaskIDs(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "modern", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}})
	mcp.AddTool(s, &mcp.Tool{Name: "related"}, func(_ context.Context, req *mcp.CallToolRequest, _ echoIn) (*mcp.CallToolResult, any, error) {
		if _, ok := req.Params.InputResponses["name"]; ok {
			return text("done"), nil, nil
		}
		return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{"name": &mcp.ElicitParams{
			Meta:    mcp.Meta{tasks.RelatedTask: map[string]any{"taskId": "up-secret"}},
			Message: "name?", RequestedSchema: answerSchema,
		}}}, nil, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true}))
	t.Cleanup(up.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/up", Prefix: "up_", URL: up.URL})
	tee := &teeTransport{}
	cs, _ := e.client("alice", (&inputClient{}).options(true), func(tr *mcp.StreamableClientTransport) {
		tee.base = tr.HTTPClient.Transport
		tr.HTTPClient = &http.Client{Transport: tee}
	})
	got, err := callText(t, cs, "up_related", "")
	if err != nil || got != "done" {
		t.Fatalf("call: %q %v", got, err)
	}
	if s := tee.got.String(); !strings.Contains(s, "name?") || strings.Contains(s, "up-secret") {
		t.Errorf("the client was not asked, or got the server's own task id:\n%s", s)
	}
}
