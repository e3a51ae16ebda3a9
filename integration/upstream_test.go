//go:build integration

package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// recorder is an upstream that records every request it receives and
// answers each with a JSON-RPC result. It stands where an MCP server stands
// when the front forwards straight to one server (no router): what matters
// there is exactly what reaches it.
type recorder struct {
	addr string
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	header http.Header
	body   string
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = lis.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{header: req.Header.Clone(), body: string(body)})
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}`)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *recorder) url() string { return "http://" + r.addr + "/mcp" }

// all returns what was received so far.
func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// last is the last request received; the test fails if there is none.
func (r *recorder) last(t *testing.T) recorded {
	t.Helper()
	all := r.all()
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
