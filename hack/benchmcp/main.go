// Command benchmcp is a small go-sdk MCP server over Streamable HTTP,
// answering JSON: the upstream of make bench's HTTP load (tool echo) and
// make run's second example server, mcp-test/weather (tool get_forecast,
// a made-up forecast). With -tools N it also has N echo tools (tool_00...);
// -listen takes several addresses, each a server of its own (its own
// sessions) in this one process, so that one process's RSS is that of all
// of them. With -stateless they speak MCP 2026-07-28 (stateless: no
// sessions; a request of an earlier revision is served without one). GET
// /stats on any address answers {"sessions":N,"calls2026":M,"posts":P}: the
// sessions opened on all of them, the tools/call they got as 2026-07-28
// requests (MCP-Protocol-Version header), and every POST they got. Dev and
// benchmark use only.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// version2026 is the stateless revision of MCP.
const version2026 = "2026-07-28"

type echoIn struct {
	Text string `json:"text"`
}

type forecastIn struct {
	City string `json:"city" jsonschema:"the city"`
}

func echo(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
}

func newServer(tools int) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "benchmcp", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echoes its text."}, echo)
	mcp.AddTool(s, &mcp.Tool{Name: "get_forecast", Description: "A made-up weather forecast for a city."},
		func(_ context.Context, _ *mcp.CallToolRequest, in forecastIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Forecast for " + in.City + ": sunny, 21°C."}}}, nil, nil
		})
	for i := range tools {
		mcp.AddTool(s, &mcp.Tool{Name: fmt.Sprintf("tool_%02d", i), Description: "Echoes its text, as echo does."}, echo)
	}
	return s
}

func main() {
	addrs := flag.String("listen", "127.0.0.1:8092", "HTTP `addresses`, comma-separated, one server each; the endpoint is /mcp")
	tools := flag.Int("tools", 0, "`number` of echo tools (tool_00, tool_01...) beside echo and get_forecast")
	stateless := flag.Bool("stateless", false, "serve MCP 2026-07-28 without sessions (go-sdk's stateless mode) instead of sessions of the 2025 revisions")
	flag.Parse()
	var sessions, calls2026, posts atomic.Int64
	errc := make(chan error)
	for _, addr := range strings.Split(*addrs, ",") {
		s := newServer(*tools)
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
			&mcp.StreamableHTTPOptions{JSONResponse: true, Stateless: *stateless})
		mux := http.NewServeMux()
		mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fresh := r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == ""
			if r.Method == http.MethodPost {
				posts.Add(1)
			}
			if r.Method == http.MethodPost && r.Header.Get("Mcp-Method") == "tools/call" && r.Header.Get("MCP-Protocol-Version") == version2026 {
				calls2026.Add(1)
			}
			h.ServeHTTP(w, r)
			if fresh && w.Header().Get("Mcp-Session-Id") != "" {
				sessions.Add(1) // an initialize that opened a session
			}
		}))
		mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"sessions":%d,"calls2026":%d,"posts":%d}`+"\n", sessions.Load(), calls2026.Load(), posts.Load())
		})
		srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.ListenAndServe() }()
	}
	log.Fatal(<-errc)
}
