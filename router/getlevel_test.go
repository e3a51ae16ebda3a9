package router

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// restartable is a recording go-sdk server that restart makes forget every
// session, as a server restarted behind the same URL does: its old
// session ids get 404 from then on.
type restartable struct {
	*recording
	s *mcp.Server
	h atomic.Pointer[http.Handler]
}

func newRestartable(t *testing.T, s *mcp.Server) *restartable {
	t.Helper()
	rs := &restartable{recording: &recording{}, s: s}
	rs.restart()
	rs.Server = httptest.NewServer(rs.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*rs.h.Load()).ServeHTTP(w, r)
	})))
	t.Cleanup(rs.Close)
	return rs
}

func (rs *restartable) restart() {
	h := http.Handler(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return rs.s }, nil))
	rs.h.Store(&h)
}

// TestGetStreamSessionsGetLevel: an upstream session a GET stream opens
// (here: after the server forgot the session's, so the stream's GET got
// 404 and it opened a new one) is given the log level the session set,
// as one a POST opens is; on a server the policy denies logging/setLevel
// on, never (testAuthz denies it on servers named "muted").
func TestGetStreamSessionsGetLevel(t *testing.T) {
	newUp := func() *restartable {
		s := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
		mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return text(in.Text), nil, nil
		})
		return newRestartable(t, s)
	}
	open, muted := newUp(), newUp()
	e := newEnv(t, nil,
		registry.Server{Name: "ns/open", Prefix: "open_", URL: open.URL},
		registry.Server{Name: "ns/muted", Prefix: "muted_", URL: muted.URL})
	sid := initRaw(t, e.front.URL, e.key, "alice")
	// The session's upstream sessions: muted's by a call, open's by the
	// level's fan-out (which leaves muted out).
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"muted_echo","arguments":{"text":"x"}}}`
	if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", call, nil); r.status != http.StatusOK {
		t.Fatalf("call: %d %s", r.status, r.body)
	}
	level := `{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"warning"}}`
	if r := do(t, e.front.URL, e.key, http.MethodPost, sid, "alice", level, nil); r.status != http.StatusOK || !strings.Contains(r.body, `"result":{}`) {
		t.Fatalf("setLevel: %d %s", r.status, r.body)
	}
	from := map[*restartable]int{}
	for _, up := range []*restartable{open, muted} {
		up.restart()
		from[up] = len(up.requests())
	}
	// The stream's GET to each gets 404: it opens a new upstream session,
	// then GETs again on it.
	openStream(t, e.front.URL, e.key, sid, "alice", time.Time{})
	reopened := func(up *restartable) []string {
		var rpcs []string
		for _, s := range up.requests()[from[up]:] {
			switch {
			case s.http == http.MethodPost && s.rpc == "logging/setLevel":
				rpcs = append(rpcs, s.rpc+" "+strings.Join(strings.Fields(s.body), ""))
			case s.http == http.MethodPost:
				rpcs = append(rpcs, s.rpc)
			default:
				rpcs = append(rpcs, s.http)
			}
		}
		return rpcs
	}
	// Open (applyLevel) runs before the new session is used: once its GET
	// came, whatever the session was given came before it.
	for _, up := range []*restartable{open, muted} {
		waitFor(t, "a GET on the new upstream session", func() bool {
			got := reopened(up)
			i := strings.Index(strings.Join(got, ","), "initialize")
			return i >= 0 && strings.Contains(strings.Join(got, ",")[i:], "GET")
		})
	}
	if got := strings.Join(reopened(open), ","); !strings.Contains(got, `initialize,notifications/initialized,logging/setLevel {"jsonrpc":"2.0","id":`) ||
		!strings.Contains(got, `"method":"logging/setLevel","params":{"level":"warning"}}`) {
		t.Errorf("open server heard %s, want the level warning on the session the GET stream opened", got)
	}
	if got := strings.Join(reopened(muted), ","); strings.Contains(got, "setLevel") {
		t.Errorf("muted server heard %s: the policy denies setLevel there", got)
	}
}
