package forward

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/mrtr"
	"github.com/mcp-authz/mcp-authz/router/pool"
	"github.com/mcp-authz/mcp-authz/router/relay"
	"github.com/mcp-authz/mcp-authz/router/session"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// heard is a go-sdk server on loopback that notes every HTTP request it
// gets: "METHOD rpc-method session-id", the body of a response as its
// method.
type heard struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newHeard(t *testing.T) *heard {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "heard", Version: "1"}, nil)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	hd := &heard{}
	hd.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &m)
		what := m.Method
		if what == "" {
			what = string(body)
		}
		hd.mu.Lock()
		hd.seen = append(hd.seen, r.Method+" "+what+" "+r.Header.Get("Mcp-Session-Id"))
		hd.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hd.Close)
	return hd
}

func (h *heard) since(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen[n:]...)
}

func (h *heard) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

// countingAuthz hands each server a token of its own and counts the
// tokens asked for.
type countingAuthz struct {
	mu    sync.Mutex
	asked []string
}

func (a *countingAuthz) UpstreamAuthorization(_ context.Context, _, server string) (string, error) {
	a.mu.Lock()
	a.asked = append(a.asked, server)
	a.mu.Unlock()
	return "Bearer up-" + server, nil
}

func (a *countingAuthz) Visible(_ context.Context, _ string, targets []policy.Target) ([]bool, error) {
	out := make([]bool, len(targets))
	for i := range out {
		out[i] = true
	}
	return out, nil
}

func (a *countingAuthz) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.asked)
}

// newReplica is a Forwarder as one router replica has it: its own pool of
// upstream sessions, the registry shared.
func newReplica(t *testing.T, reg Registry, auth Authorizer) *Forwarder {
	t.Helper()
	up := upstream.New(upstream.Config{})
	p, err := pool.New(pool.Config{Size: 100, InitTimeout: 5 * time.Second}, pool.Deps{Client: up, Ended: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{CallTimeout: 5 * time.Second, InitTimeout: 5 * time.Second, SessionTTL: time.Hour}, Deps{
		Registry: reg, Authorizer: auth, Upstream: up, Answer: upstream.AnswerOptions(1 << 20), Pool: p,
		Streams: relay.NewHub(), Input: mrtr.NewTable(time.Minute, 100), Log: slog.New(slog.DiscardHandler), Now: time.Now,
		Failed: func(*registry.Server, string, error) {},
	})
}

// TestResponseOnlyOverExistingSession: a client's answer to a server
// request goes back only over an upstream session its session already has
// with the server its id names, on this replica. An answer whose id the
// client forged to name a server it never called, or one another caller
// (or this session on another replica) has a session with, opens nothing,
// obtains no credential and reaches no server: it is dropped (202), as one
// naming no server is.
func TestResponseOnlyOverExistingSession(t *testing.T) {
	asked, never := newHeard(t), newHeard(t)
	reg := &registry.Registry{}
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "ns/asked", Prefix: "asked_", URL: asked.URL},
		{Name: "ns/never", Prefix: "never_", URL: never.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.Store(snap)
	auth := &countingAuthz{}
	replica, other := newReplica(t, reg, auth), newReplica(t, reg, auth)
	newSession := func(subject string) *session.Record {
		s := &session.Record{ID: session.RandomID(), Issuer: "https://idp.test", Subject: subject, Version: "2025-11-25", Issued: time.Now().Unix()}
		s.Key()
		return s
	}
	alice, bob := newSession("alice"), newSession("bob")
	// Alice's session has called ns/asked on replica: its upstream session.
	srv, _ := reg.Load().Server("ns/asked")
	up, err := replica.UpstreamFor(t.Context(), alice, srv, "Bearer up-ns/asked")
	if err != nil || up.ID == "" {
		t.Fatalf("alice's upstream session: %+v %v", up, err)
	}
	for _, tc := range []struct {
		name    string
		fw      *Forwarder
		sess    *session.Record
		server  string
		relayed bool // else: nothing reaches either server
	}{
		{name: "its own upstream session", fw: replica, sess: alice, server: "ns/asked", relayed: true},
		{name: "a server it never called", fw: replica, sess: alice, server: "ns/never"},
		{name: "another caller's upstream session", fw: replica, sess: bob, server: "ns/asked"},
		{name: "its upstream session on another replica", fw: other, sess: alice, server: "ns/asked"},
		{name: "an unregistered server", fw: replica, sess: alice, server: "ns/gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","id":` + string(relay.WrapID(tc.server, json.RawMessage(`77`))) + `,"result":{"action":"accept"}}`
			msg, err := mcpparse.Parse([]byte(body), RequestOptions)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/mcp", strings.NewReader(body))
			c := &Call{Req: req, Claims: assertion.Claims{Issuer: tc.sess.Issuer, Subject: tc.sess.Subject}, Body: []byte(body),
				Msg: msg, Sess: tc.sess, Auth: "Bearer caller-" + tc.sess.Subject}
			fromAsked, fromNever, tokens := asked.count(), never.count(), auth.count()
			w := httptest.NewRecorder()
			tc.fw.RelayResponse(w, c)
			if w.Code != http.StatusAccepted || w.Body.Len() != 0 {
				t.Fatalf("answer %d %q, want 202 and no body", w.Code, w.Body)
			}
			gotAsked, gotNever := asked.since(fromAsked), never.since(fromNever)
			if !tc.relayed {
				if len(gotAsked)+len(gotNever) != 0 || auth.count() != tokens {
					t.Fatalf("a forged answer reached %q %q (%d tokens obtained)", gotAsked, gotNever, auth.count()-tokens)
				}
				return
			}
			want := `POST {"jsonrpc":"2.0","id":77,"result":{"action":"accept"}} ` + up.ID
			if len(gotAsked) != 1 || gotAsked[0] != want || len(gotNever) != 0 {
				t.Fatalf("servers heard %q %q, want %q", gotAsked, gotNever, want)
			}
		})
	}
}
