package router

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// TestReadScopePrivate: a server that says its resources/read results are
// cacheScope "public" (SEP-2549) is not believed through the router: the
// read was allowed for this caller by policy, and another caller's may not
// be, so the client (either generation) gets "private" and no cache shared
// across authorization contexts may serve it to anyone else. The contents
// and the ttlMs pass unchanged.
func TestReadScopePrivate(t *testing.T) {
	opts := cacheFor(time.Minute, "public")
	opts.SupportedProtocolVersions = []string{"2026-07-28"}
	s := mcp.NewServer(&mcp.Implementation{Name: "pub", Version: "1"}, opts)
	s.AddResource(&mcp.Resource{URI: "file:///pub/readme", Name: "readme"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "hello"}}}, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true}))
	t.Cleanup(up.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/pub", Prefix: "pub_", URL: up.URL, ResourcePrefixes: []string{"file:///pub/"}})

	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(version, func(t *testing.T) {
			var r raw
			if version == "2026-07-28" {
				r = do(t, e.front.URL, e.key, http.MethodPost, "", "alice",
					statelessBody("resources/read", version, `"uri":"file:///pub/readme"`),
					statelessHeaders2026("resources/read", "file:///pub/readme", version))
			} else {
				sid := initRaw(t, e.front.URL, e.key, "alice")
				r = do(t, e.front.URL, e.key, http.MethodPost, sid, "alice",
					`{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"file:///pub/readme"}}`,
					func(req *http.Request) { req.Header.Set("MCP-Protocol-Version", version) })
			}
			a := decodeAnswer(t, r)
			if r.status != http.StatusOK || a.Error != nil {
				t.Fatalf("read: %d %s", r.status, r.body)
			}
			if got := string(a.Result["cacheScope"]); got != `"private"` {
				t.Errorf("cacheScope %s, want \"private\"", got)
			}
			if got := string(a.Result["ttlMs"]); got != "60000" {
				t.Errorf("ttlMs %s, want the server's 60000", got)
			}
			if !strings.Contains(string(a.Result["contents"]), "hello") {
				t.Errorf("contents %s", a.Result["contents"])
			}
		})
	}
}

// TestReadScopePrivateAfterInput: a read that needed the client's input is
// made private like any other. A 2025 client's resources/read of a
// 2026-07-28 server that first answers an InputRequiredResult is bridged by
// the router (it asks the client, then retries); the server's final answer,
// cacheScope "public", reaches the client "private" all the same.
func TestReadScopePrivateAfterInput(t *testing.T) {
	opts := cacheFor(time.Minute, "public")
	opts.SupportedProtocolVersions = []string{"2026-07-28"}
	s := mcp.NewServer(&mcp.Implementation{Name: "pub", Version: "1"}, opts)
	s.AddResource(&mcp.Resource{URI: "file:///pub/secret", Name: "secret"}, func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		if _, ok := req.Params.InputResponses["confirm"]; !ok {
			return &mcp.ReadResourceResult{
				InputRequests: mcp.InputRequestMap{"confirm": &mcp.ElicitParams{Message: "read it?", RequestedSchema: answerSchema}},
				RequestState:  "asked",
			}, nil
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "hello"}}}, nil
	})
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: true}))
	t.Cleanup(up.Close)
	e := newEnv(t, nil, registry.Server{Name: "ns/pub", Prefix: "pub_", URL: up.URL, ResourcePrefixes: []string{"file:///pub/"}})
	ic := &inputClient{}
	cs := inputConnect(t, e.front.URL, e.key, "alice", "2025-11-25", ic.options(true))
	res, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: "file:///pub/secret"})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	ic.mu.Lock()
	asked := ic.asked
	ic.mu.Unlock()
	if len(asked) != 1 || len(res.Contents) != 1 || res.Contents[0].Text != "hello" {
		t.Fatalf("asked %q, contents %+v: the read was not bridged", asked, res.Contents)
	}
	if res.CacheScope != "private" || res.TTLMs != 60000 {
		t.Errorf("cacheScope %q ttlMs %d, want \"private\" and the server's 60000", res.CacheScope, res.TTLMs)
	}
}
