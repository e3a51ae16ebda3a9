package router

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-authz/mcp-authz/router/forward"
)

// TestStreamsPerCaller: a caller holds at most maxStreamsPerCaller streams
// open on a replica, GET streams and subscriptions/listen together (each
// holds a stream to every server it uses): one more is answered 429 with a
// JSON-RPC error and opens nothing; another caller is not held back, and a
// stream closed makes room again.
func TestStreamsPerCaller(t *testing.T) {
	e, _, _, _ := listenEnv(t)
	e.router.cfg.MaxStreamsPerCaller = 2
	held := func(subject string) int {
		e.router.held.mu.Lock()
		defer e.router.held.mu.Unlock()
		return e.router.held.n[testIssuer+"\x00"+subject]
	}
	cs, _ := e.client("alice", nil, func(tr *mcp.StreamableClientTransport) { tr.DisableStandaloneSSE = true })
	openStream(t, e.front.URL, e.key, cs.ID(), "alice", time.Time{})
	body := listenBody(`7`, `{"toolsListChanged":true}`)
	listenCtx, closeListen := context.WithCancel(t.Context())
	openListen(listenCtx, t, e, "alice", body, time.Time{}).await(t, "notifications/subscriptions/acknowledged")
	if n := held("alice"); n != 2 {
		t.Fatalf("alice holds %d streams, want 2", n)
	}

	// One more, of either kind, is refused.
	refused := func(req *http.Request) {
		t.Helper()
		// A stream let through would never end: bound the wait.
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		r := roundTrip(t, req.WithContext(ctx))
		a := decodeAnswer(t, r)
		if r.status != http.StatusTooManyRequests || a.Error == nil || a.Error.Code != forward.CodeInvalidRequest {
			t.Errorf("%s past the bound: %d %+v, want 429 with an error", req.Method, r.status, a)
		}
	}
	refused(listenReq(t.Context(), t, e.front.URL, e.key, "alice", body, time.Time{}))
	refused(streamReq(t, e.front.URL, e.key, cs.ID(), "alice", time.Time{}))
	if got := testutil.ToFloat64(e.router.metrics.streamsRefused); got != 2 {
		t.Errorf("streams refused counted %v, want 2", got)
	}
	if n := held("alice"); n != 2 {
		t.Errorf("alice holds %d streams after the refusals, want 2", n)
	}

	// Bob is not held back by alice's streams.
	openListen(t.Context(), t, e, "bob", body, time.Time{}).await(t, "notifications/subscriptions/acknowledged")

	// A stream closed makes room.
	closeListen()
	waitFor(t, "alice's listen released", func() bool { return held("alice") == 1 })
	openListen(t.Context(), t, e, "alice", body, time.Time{}).await(t, "notifications/subscriptions/acknowledged")
}

// TestStreamsPerCallerConfig: a negative maxStreamsPerCaller is refused;
// zero means 16.
func TestStreamsPerCallerConfig(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := New(Config{MaxStreamsPerCaller: -1}, Deps{Registry: e.reg, AssertionKey: e.key}); err == nil || !strings.Contains(err.Error(), "maxStreamsPerCaller") {
		t.Errorf("New = %v, want an error naming maxStreamsPerCaller", err)
	}
	if n := e.router.cfg.MaxStreamsPerCaller; n != 16 {
		t.Errorf("default maxStreamsPerCaller %d, want 16", n)
	}
}
