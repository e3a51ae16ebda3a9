package relay

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// session stands in for the router (relay.Session): what it decides is
// the router's, tested there; here it records what the relay asked.
type session struct {
	allowUpdate bool
	connectErr  error
	up          upstream.Session // what Connect answers
	renewed     upstream.Session // what Reconnect answers

	mu         sync.Mutex
	reconnects []string // the ids of the sessions replaced
	updates    int      // UpdateAllowed calls
}

func (s *session) Connect(context.Context, *registry.Server) (string, upstream.Session, error) {
	return "Bearer for-alpha", s.up, s.connectErr
}

func (s *session) Reconnect(_ context.Context, _ *registry.Server, auth string, old upstream.Session) (upstream.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if auth != "Bearer for-alpha" {
		return upstream.Session{}, errors.New("reconnect with other credentials")
	}
	s.reconnects = append(s.reconnects, old.ID)
	return s.renewed, nil
}

func (s *session) UpdateAllowed(context.Context, *registry.Server, *mcpparse.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updates++
	return s.allowUpdate
}

// TaskMessage seals "server-task" as "sealed-task" and drops whatever
// names "foreign-task".
func (s *session) TaskMessage(_ *registry.Server, data []byte, _ *mcpparse.Message) ([]byte, bool) {
	return bytes.ReplaceAll(data, []byte("server-task"), []byte("sealed-task")), !bytes.Contains(data, []byte("foreign-task"))
}

// lists records the servers whose lists were made stale.
type lists struct {
	mu    sync.Mutex
	stale []string
}

func (l *lists) Invalidate(server string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stale = append(l.stale, server)
}

func (l *lists) names() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.stale, ",")
}

func newWatcher(l Lists) *Watcher {
	return &Watcher{
		Up: upstream.New(upstream.Config{}), Lists: l, Answer: upstream.AnswerOptions(1 << 20), MaxBytes: 1 << 20,
		Done: make(chan struct{}), Open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "streams"}),
	}
}

var alpha = &registry.Server{Name: "ns/alpha"}

// TestRelayFilters: of what a server sends on its GET stream, requests
// reach the client with their ids wrapped and task ids sealed (never
// dropped), notifications pass the session's checks (resources/updated
// only when allowed, task ids sealed or the message dropped), list_changed
// makes the server's lists stale, and answers and what cannot be read are
// dropped.
func TestRelayFilters(t *testing.T) {
	for _, tc := range []struct {
		name        string
		event       string
		allowUpdate bool
		want        string // "" for dropped
		wantID      string // the id a relayed request had upstream
		stale       string
	}{
		{name: "request wrapped and sealed", event: `{"jsonrpc":"2.0","id":7,"method":"elicitation/create","params":{"_meta":{"t":"server-task"}}}`, wantID: "7",
			want: `"method":"elicitation/create","params":{"_meta":{"t":"sealed-task"}}}`},
		{name: "request never dropped", event: `{"jsonrpc":"2.0","id":"a","method":"sampling/createMessage","params":{"t":"foreign-task"}}`, wantID: `"a"`,
			want: `"method":"sampling/createMessage","params":{"t":"foreign-task"}}`},
		{name: "list_changed", event: `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`,
			want: `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`, stale: "ns/alpha"},
		{name: "update allowed", allowUpdate: true, event: `{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}`,
			want: `{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}`},
		{name: "update withheld", event: `{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"file:///a"}}`},
		{name: "task sealed", event: `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"server-task"}}`,
			want: `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"sealed-task"}}`},
		{name: "foreign task dropped", event: `{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"foreign-task"}}`},
		{name: "answer dropped", event: `{"jsonrpc":"2.0","id":1,"result":{}}`},
		{name: "not JSON-RPC dropped", event: `{"method":`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &lists{}
			wt := newWatcher(l)
			s := &session{allowUpdate: tc.allowUpdate}
			out := make(chan []byte, 4)
			wt.relay(t.Context(), s, alpha, strings.NewReader("data: "+tc.event+"\n\n"), out)
			close(out)
			got := <-out
			if l.names() != tc.stale {
				t.Errorf("stale lists %q, want %q", l.names(), tc.stale)
			}
			if tc.want == "" {
				if got != nil {
					t.Fatalf("relayed %s, want it dropped", got)
				}
				return
			}
			if tc.wantID == "" {
				if string(got) != tc.want {
					t.Fatalf("relayed %s, want %s", got, tc.want)
				}
				return
			}
			m, err := mcpparse.Parse(got, wt.Answer)
			if err != nil {
				t.Fatalf("relayed %s: %v", got, err)
			}
			server, id, ok := UnwrapID(m.ID, wt.Answer)
			if !ok || server != alpha.Name || string(id) != tc.wantID || !strings.HasSuffix(string(got), tc.want) {
				t.Fatalf("relayed %s (id of %q: %s %v), want id %s wrapped and ...%s", got, server, id, ok, tc.wantID, tc.want)
			}
		})
	}
}

// TestWatchOnce: the GET goes to the server with the session's credentials
// and upstream session; a server that forgot the session (404) gets a new
// one once, a server without a GET stream (405) is left alone, and every
// other failure is tried again later.
func TestWatchOnce(t *testing.T) {
	const event = `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi"}}`
	for _, tc := range []struct {
		name       string
		status     map[string]int // by Mcp-Session-Id; missing: 200 with one event
		up         upstream.Session
		connectErr error
		retry      bool
		reconnects string
		gets       []string // the session ids of the GETs, in order
		relayed    bool
	}{
		{name: "stream", up: upstream.Session{ID: "s1", Version: "2025-11-25"}, retry: true, gets: []string{"s1"}, relayed: true},
		{name: "no GET stream", status: map[string]int{"s1": http.StatusMethodNotAllowed}, up: upstream.Session{ID: "s1"}, gets: []string{"s1"}},
		{name: "session forgotten", status: map[string]int{"s1": http.StatusNotFound}, up: upstream.Session{ID: "s1"}, retry: true,
			reconnects: "s1", gets: []string{"s1", "s2"}, relayed: true},
		{name: "forgotten twice", status: map[string]int{"s1": http.StatusNotFound, "s2": http.StatusNotFound}, up: upstream.Session{ID: "s1"}, retry: true,
			reconnects: "s1", gets: []string{"s1", "s2"}},
		{name: "404 without a session", status: map[string]int{"": http.StatusNotFound}, retry: true, gets: []string{""}},
		{name: "server error", status: map[string]int{"s1": http.StatusBadGateway}, up: upstream.Session{ID: "s1"}, retry: true, gets: []string{"s1"}},
		{name: "no credentials", connectErr: errors.New("no token"), retry: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var gets []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				id := r.Header.Get("Mcp-Session-Id")
				mu.Lock()
				gets = append(gets, id)
				mu.Unlock()
				if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer for-alpha" {
					w.WriteHeader(http.StatusBadRequest)
					return
				}
				if st, ok := tc.status[id]; ok {
					w.WriteHeader(st)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "event: message\ndata: "+event+"\n\n")
			}))
			defer srv.Close()
			wt := newWatcher(&lists{})
			s := &session{up: tc.up, renewed: upstream.Session{ID: "s2"}, connectErr: tc.connectErr}
			out := make(chan []byte, 4)
			retry := wt.watchOnce(t.Context(), s, &registry.Server{Name: "ns/alpha", URL: srv.URL}, out)
			close(out)
			mu.Lock()
			defer mu.Unlock()
			if retry != tc.retry || strings.Join(s.reconnects, ",") != tc.reconnects || !slices.Equal(gets, tc.gets) {
				t.Errorf("retry %v, reconnected %q, GETs %q; want %v, %q, %q", retry, s.reconnects, gets, tc.retry, tc.reconnects, tc.gets)
			}
			got := <-out
			if tc.relayed != (string(got) == event) {
				t.Errorf("relayed %q, want relayed %v", got, tc.relayed)
			}
		})
	}
}

// TestServe: a client's GET stream carries its events and ends at once
// when its session ends, when it expires and at shutdown; the gauge counts
// it while it is open.
func TestServe(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(h *Hub, expired chan time.Time, done chan struct{})
	}{
		{name: "session ended", end: func(h *Hub, _ chan time.Time, _ chan struct{}) { h.End("alice") }},
		{name: "expired", end: func(_ *Hub, expired chan time.Time, _ chan struct{}) { expired <- time.Now() }},
		{name: "shutdown", end: func(_ *Hub, _ chan time.Time, done chan struct{}) { close(done) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done, expired := make(chan struct{}), make(chan time.Time, 1)
			wt := newWatcher(&lists{})
			wt.Done = done
			h := NewHub()
			served := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(served)
				st := NewStream("alice")
				h.Add(st)
				defer h.Remove(st)
				wt.Serve(r.Context(), w, st, expired)
			}))
			defer srv.Close()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			h.Broadcast([]byte("{\n\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}"))
			br := bufio.NewReader(resp.Body)
			var got string
			for range 3 {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("stream %q: %v", got, err)
				}
				got += line
			}
			if want := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n"; got != want {
				t.Fatalf("stream %q, want %q", got, want)
			}
			if n := testutil.ToFloat64(wt.Open); n != 1 {
				t.Errorf("%v streams open, want 1", n)
			}
			tc.end(h, expired, done)
			select {
			case <-served:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream did not end")
			}
			if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
				t.Errorf("after the end: %q, %v", rest, err)
			}
			if n := testutil.ToFloat64(wt.Open); n != 0 {
				t.Errorf("%v streams open after the end, want 0", n)
			}
		})
	}
}
