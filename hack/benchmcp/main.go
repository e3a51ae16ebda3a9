// Command benchmcp is a small go-sdk MCP server over Streamable HTTP,
// answering JSON: the upstream of make bench's HTTP load (tool echo) and
// make run's second example server, mcp-test/weather (tool get_forecast,
// a made-up forecast). Dev and benchmark use only.
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type echoIn struct {
	Text string `json:"text"`
}

type forecastIn struct {
	City string `json:"city" jsonschema:"the city"`
}

func main() {
	addr := flag.String("listen", "127.0.0.1:8092", "HTTP `address`; the endpoint is /mcp")
	flag.Parse()
	s := mcp.NewServer(&mcp.Implementation{Name: "benchmcp", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echoes its text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "get_forecast", Description: "A made-up weather forecast for a city."},
		func(_ context.Context, _ *mcp.CallToolRequest, in forecastIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "Forecast for " + in.City + ": sunny, 21°C."}}}, nil, nil
		})
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{JSONResponse: true}))
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
