package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
)

// BenchmarkConcurrentSessions runs 1,000 sessions at once on one router in
// front of two go-sdk servers: each initializes, lists, calls a tool and
// ends. Any error fails the benchmark.
func BenchmarkConcurrentSessions(b *testing.B) {
	const sessions = 1000
	key, err := assertion.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	a, bt := serve(b, alphaMCP(), true), serve(b, benchBeta(), true)
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "ns/alpha", Prefix: "alpha_", URL: a.URL},
		{Name: "ns/beta", Prefix: "beta_", URL: bt.URL},
	})
	if err != nil {
		b.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	r := newRouter(b, Config{InitTimeout: time.Minute, CallTimeout: time.Minute}, Deps{
		Registry: reg, Authorizer: &testAuthz{}, AssertionKey: key,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	front := httptest.NewServer(r.Handler())
	b.Cleanup(front.Close)
	b.Cleanup(r.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = sessions
	client := &http.Client{Transport: tr}
	sg := assertion.NewSigner(key)
	post := func(method, sid, body string) (*http.Response, string, error) {
		req, err := http.NewRequest(method, front.URL+"/mcp", strings.NewReader(body))
		if err != nil {
			return nil, "", err
		}
		var m struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal([]byte(body), &m)
		v, err := sg.Sign(assertion.Claims{Method: m.Method, Subject: "alice", BodyHash: assertion.BodyHash([]byte(body))})
		if err != nil {
			return nil, "", err
		}
		req.Header.Set(assertion.Header, v)
		req.Header.Set("Authorization", "Bearer caller-alice")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return resp, string(out), err
	}
	one := func() error {
		resp, _, err := post(http.MethodPost, "", initBody)
		if err != nil {
			return err
		}
		sid := resp.Header.Get("Mcp-Session-Id")
		call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"beta_add","arguments":{"a":1,"b":2}}}`
		for _, step := range []struct{ method, body, want string }{
			{http.MethodPost, listBody, "beta_add"},
			{http.MethodPost, call, `"text":"3"`},
			{http.MethodDelete, "", ""},
		} {
			resp, out, err := post(step.method, sid, step.body)
			if err != nil {
				return err
			}
			if resp.StatusCode/100 != 2 || !strings.Contains(out, step.want) {
				return fmt.Errorf("%s %.40s: status %d: %.200s", step.method, step.body, resp.StatusCode, out)
			}
		}
		return nil
	}
	b.ReportAllocs()
	for b.Loop() {
		var wg sync.WaitGroup
		var failed atomic.Int32
		var first atomic.Value
		for range sessions {
			wg.Go(func() {
				if err := one(); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err.Error())
				}
			})
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			b.Fatalf("%d of %d sessions failed, first: %v", n, sessions, first.Load())
		}
	}
	b.ReportMetric(sessions, "sessions/op")
}

// benchBeta is a go-sdk server with one tool, "add", speaking the given
// protocol versions (the SDK's defaults when none).
func benchBeta(versions ...string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "beta", Version: "1"}, &mcp.ServerOptions{SupportedProtocolVersions: versions})
	mcp.AddTool(s, &mcp.Tool{Name: "add"}, func(ctx context.Context, req *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, any, error) {
		return text(fmt.Sprint(in.A + in.B)), nil, nil
	})
	return s
}
