//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// This file holds what stands around the processes under test on the
// network: the upstreams (MCP servers written here, server-everything), the
// record of what each received, the recording proxy and the balancer.

// serve serves h until the test ends on addr, or on a free loopback port if
// addr is empty, and returns the server with Addr set to where it listens.
// A fixed addr may still be held by a server the test has just closed (a
// restart on the same address): serve waits for it to be free.
func serve(t *testing.T, addr string, h http.Handler) *http.Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	var err error
	waitFor(t, "listening on "+addr, 5*time.Second, func() bool {
		lis, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv := &http.Server{Addr: lis.Addr().String(), Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// request is what an upstream or a proxy saw of one request.
type request struct {
	method string // the JSON-RPC method; the HTTP method for a body without one
	tool   string // params.name of a tools/call
	header http.Header
	body   string
}

// authorization is the request's Authorization header.
func (r request) authorization() string { return r.header.Get("Authorization") }

// recording is the log of the requests one upstream or proxy received.
type recording struct {
	mu   sync.Mutex
	seen []request
}

// record returns h wrapped so that every request is logged before h
// serves it (with its body, read up to 1 MiB, restored).
func (rec *recording) record(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var m struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		_ = json.Unmarshal(body, &m)
		seen := request{method: m.Method, header: r.Header.Clone(), body: string(body)}
		if seen.method == "" {
			seen.method = r.Method
		}
		if m.Method == "tools/call" {
			seen.tool = m.Params.Name
		}
		rec.mu.Lock()
		rec.seen = append(rec.seen, seen)
		rec.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		h.ServeHTTP(w, r)
	})
}

// requests returns what was received so far.
func (rec *recording) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.seen)
}

// count is how many requests of method were received from index from on.
func (rec *recording) count(from int, method string) int {
	n := 0
	for _, r := range rec.requests()[from:] {
		if r.method == method {
			n++
		}
	}
	return n
}

// calls returns the tools/call requests of tool.
func (rec *recording) calls(tool string) []request {
	var out []request
	for _, r := range rec.requests() {
		if r.method == "tools/call" && r.tool == tool {
			out = append(out, r)
		}
	}
	return out
}

// recorder is an upstream that records every request it receives and
// answers each with a JSON-RPC result. It stands where an MCP server stands
// when the front forwards straight to one server (no router): what matters
// there is exactly what reaches it.
type recorder struct {
	recording
	addr string
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	r.addr = serve(t, "", r.record(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}`)
	}))).Addr
	return r
}

func (r *recorder) url() string { return "http://" + r.addr + "/mcp" }

// last is the last request received; the test fails if there is none.
func (r *recorder) last(t *testing.T) request {
	t.Helper()
	all := r.requests()
	if len(all) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return all[len(all)-1]
}

// kubeServer is the servers section registering url as Kuadrant's
// Kubernetes MCP server (mcp-test/kubernetes-mcp, prefix kube_).
func kubeServer(url string) string {
	return fmt.Sprintf("servers:\n  - name: mcp-test/kubernetes-mcp\n    prefix: kube_\n    url: %s\n", url)
}

// goServer is a go-sdk MCP server on a loopback listener that records
// every request it receives.
type goServer struct {
	recording
	name string
	url  string
	srv  *http.Server
}

// startGoServer runs a go-sdk server whose tools answer "<name>:<tool>".
func startGoServer(t *testing.T, name string, tools ...string) *goServer {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)
	for _, tool := range tools {
		mcp.AddTool(s, &mcp.Tool{Name: tool, Description: tool + " of " + name},
			func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + ":" + tool}}}, nil, nil
			})
	}
	return serveGoServer(t, "", name, s)
}

// serveGoServer serves s over Streamable HTTP on addr (free if empty).
// Closing srv drops every connection at once, as a killed process does; a
// new one on the same address knows none of the old sessions, as a
// restarted process does.
func serveGoServer(t *testing.T, addr, name string, s *mcp.Server) *goServer {
	t.Helper()
	g := &goServer{name: name}
	g.srv = serve(t, addr, g.record(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)))
	g.url = "http://" + g.srv.Addr + "/mcp"
	return g
}

// startStreamServer is a go-sdk server on addr whose tool "stream" sends a
// progress notification every 100 ms for the given number of steps, then
// answers "done"; its tools "ping" and "forbidden" answer their names.
func startStreamServer(t *testing.T, addr string) *goServer {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "stream", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "stream", Description: "streams progress"},
		func(ctx context.Context, req *mcp.CallToolRequest, args map[string]any) (*mcp.CallToolResult, any, error) {
			steps, _ := args["steps"].(float64)
			tok := req.Params.GetProgressToken()
			for i := 1; i <= int(steps); i++ {
				select {
				case <-ctx.Done():
					return nil, nil, ctx.Err()
				case <-time.After(100 * time.Millisecond): // the pace of the stream under test
				}
				if tok != nil {
					_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: steps})
				}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "done"}}}, nil, nil
		})
	for _, tool := range []string{"ping", "forbidden"} {
		mcp.AddTool(s, &mcp.Tool{Name: tool, Description: tool},
			func(context.Context, *mcp.CallToolRequest, map[string]any) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: tool}}}, nil, nil
			})
	}
	return serveGoServer(t, addr, "stream", s)
}

// startEverything runs @modelcontextprotocol/server-everything over
// Streamable HTTP and returns its endpoint; the test skips without it.
func startEverything(t *testing.T) (string, *proc) {
	t.Helper()
	path := os.Getenv("MCP_AUTHZ_EVERYTHING")
	if path == "" {
		t.Skip("MCP_AUTHZ_EVERYTHING is not set (make e2e sets it to server-everything's dist/index.js)")
	}
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	p := start(t, addr, []string{"PORT=" + port}, "node", path, "streamableHttp")
	return "http://" + addr + "/mcp", p
}

// recordingProxy forwards every request to a target, the path kept, and
// records it on the way. It is transparent: a request sent to the proxy's
// own address reaches the target with the target's Host, as if sent to it
// directly; any other Host (Envoy and the front forward the client's) is
// kept.
type recordingProxy struct {
	recording
	addr string
}

// startRecordingProxy runs a proxy to target, a URL whose path is ignored.
func startRecordingProxy(t *testing.T, target string) *recordingProxy {
	t.Helper()
	to, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	to.Path = ""
	p := &recordingProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(to)
			if pr.In.Host != p.addr {
				pr.Out.Host = pr.In.Host
			}
		},
		FlushInterval: -1,
	}
	p.addr = serve(t, "", p.record(rp)).Addr // set before anyone knows where to send
	return p
}

// url is the proxy's base URL (no path).
func (p *recordingProxy) url() string { return "http://" + p.addr }

// balancer stands where a Kubernetes Service, with Istio's default retry
// policy (retry on connect-failure), stands in front of router replicas:
// each request goes to the next replica in turn, and a refused connection
// is tried on the next replica, each at most once. A request that reached
// a replica is never sent again (it may have been served). It reads the
// whole request body before forwarding, as a buffering load balancer does
// (an HTTP/1 server may close a request body once the response headers are
// flushed), streams the answer back at once, and records which session ids
// each replica served.
type balancer struct {
	addr     string
	backends []string
	tr       *http.Transport
	mu       sync.Mutex
	next     int
	retried  int                       // requests refused by one replica and sent to the next
	sessions map[string]map[string]int // backend -> session id -> POSTs answered
}

func startBalancer(t *testing.T, backends ...string) *balancer {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	b := &balancer{backends: backends, tr: tr, sessions: map[string]map[string]int{}}
	b.addr = serve(t, "", http.HandlerFunc(b.serve)).Addr
	t.Cleanup(tr.CloseIdleConnections)
	return b
}

func (b *balancer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	for range b.backends {
		b.mu.Lock()
		to := b.backends[b.next%len(b.backends)]
		b.next++
		b.mu.Unlock()
		refused := false
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(&url.URL{Scheme: "http", Host: to})
				pr.Out.Host = pr.In.Host
			},
			Transport:     b.tr,
			FlushInterval: -1,
			// Count a call when its answer starts, not when the proxy
			// returns: a GET stream that a killed replica ends would
			// otherwise count as a request that replica served late.
			ModifyResponse: func(*http.Response) error {
				sid := r.Header.Get("Mcp-Session-Id")
				if r.Method != http.MethodPost || sid == "" {
					return nil
				}
				b.mu.Lock()
				defer b.mu.Unlock()
				if b.sessions[to] == nil {
					b.sessions[to] = map[string]int{}
				}
				b.sessions[to][sid]++
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				var op *net.OpError
				if errors.As(err, &op) && op.Op == "dial" {
					refused = true
					return
				}
				w.WriteHeader(http.StatusBadGateway)
			},
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		rp.ServeHTTP(w, r)
		if !refused {
			return
		}
		b.mu.Lock()
		b.retried++
		b.mu.Unlock()
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

// served returns how many POST requests of session sid each backend answered.
func (b *balancer) served(sid string) map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int{}
	for _, be := range b.backends {
		out[be] = b.sessions[be][sid]
	}
	return out
}

// servedBy returns the backends that served requests of session sid.
func (b *balancer) servedBy(sid string) []string {
	served := b.served(sid)
	var out []string
	for _, be := range b.backends {
		if served[be] > 0 {
			out = append(out, be)
		}
	}
	return out
}
