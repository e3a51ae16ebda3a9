// Command benchmcp is a small go-sdk MCP server over Streamable HTTP,
// answering JSON: the upstream of make bench's HTTP load (tool echo) and
// make run's second example server, mcp-test/weather (tool get_forecast,
// a made-up forecast). With -tools N it also has N echo tools (tool_00...);
// -listen takes several addresses, each a server of its own (its own
// sessions) in this one process, so that one process's RSS is that of all
// of them. GET /stats on any address answers {"sessions":N}: the sessions
// opened on all of them. Dev and benchmark use only.
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
	flag.Parse()
	var sessions atomic.Int64
	errc := make(chan error)
	for _, addr := range strings.Split(*addrs, ",") {
		s := newServer(*tools)
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
			&mcp.StreamableHTTPOptions{JSONResponse: true})
		mux := http.NewServeMux()
		mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fresh := r.Method == http.MethodPost && r.Header.Get("Mcp-Session-Id") == ""
			h.ServeHTTP(w, r)
			if fresh && w.Header().Get("Mcp-Session-Id") != "" {
				sessions.Add(1) // an initialize that opened a session
			}
		}))
		mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"sessions":%d}`+"\n", sessions.Load())
		})
		srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- srv.ListenAndServe() }()
	}
	log.Fatal(<-errc)
}
