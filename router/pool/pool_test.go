package pool

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// server is a real go-sdk MCP server of one generation ("legacy": sessions,
// 2025 revisions only; "modern": stateless, 2026-07-28 only), counting the
// initializes and server/discovers it receives.
func server(t *testing.T, gen string) (*registry.Server, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	opts := &mcp.ServerOptions{SupportedProtocolVersions: []string{"2025-11-25", "2025-06-18"}}
	if gen == "modern" {
		opts = &mcp.ServerOptions{SupportedProtocolVersions: []string{upstream.Stateless}}
	}
	s := mcp.NewServer(&mcp.Implementation{Name: gen, Version: "1"}, opts)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{Stateless: gen == "modern"})
	var inits, discovers atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Mcp-Method") {
		case "initialize":
			inits.Add(1)
		case "server/discover":
			discovers.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return &registry.Server{Name: "ns/" + gen, URL: hs.URL}, &inits, &discovers
}

func newPool(t *testing.T, ended func(string) bool) (*Pool, *atomic.Int64) {
	t.Helper()
	var opened atomic.Int64
	p, err := New(Config{Size: 16, InitTimeout: 5 * time.Second}, Deps{
		Client: upstream.New(upstream.Config{MaxResponseBytes: 1 << 20, InitTimeout: 5 * time.Second}),
		Ended:  ended,
		Opened: func(context.Context, *Owner, *registry.Server, string, upstream.Session) { opened.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, &opened
}

// TestOpen: concurrent first uses of one (owner, server) share one
// initialize, told to Opened once; the session is kept for Get, and Take
// forgets it. Another owner gets a session of its own.
func TestOpen(t *testing.T) {
	srv, inits, _ := server(t, "legacy")
	p, opened := newPool(t, func(string) bool { return false })
	alice := Owner{ID: "a", Key: "a\x00alice", Version: "2025-11-25", Expiry: time.Now().Add(time.Hour)}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Go(func() {
			up, err := p.Open(t.Context(), alice, srv, "", upstream.Session{})
			if err != nil {
				t.Error(err)
			}
			ids[i] = up.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("sessions %q: want one, shared", ids)
		}
	}
	if n := inits.Load(); n != 1 {
		t.Errorf("%d initializes, want 1", n)
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("Opened told %d times, want 1", n)
	}
	if up, ok := p.Get(alice.Key, srv.Name); !ok || up.ID != ids[0] {
		t.Errorf("Get = %+v, %v", up, ok)
	}
	bob := alice
	bob.ID, bob.Key = "b", "b\x00bob"
	if _, ok := p.Get(bob.Key, srv.Name); ok {
		t.Error("bob finds alice's upstream session")
	}
	up, err := p.Open(t.Context(), bob, srv, "", upstream.Session{})
	if err != nil || up.ID == ids[0] {
		t.Errorf("bob's session %q, %v: want one of his own", up.ID, err)
	}
	if _, ok := p.Take(alice.Key, srv.Name); !ok {
		t.Error("Take found nothing")
	}
	if _, ok := p.Get(alice.Key, srv.Name); ok {
		t.Error("kept after Take")
	}
}

// TestOpenEnded: an owner that has ended or expired is never given an
// upstream session: nothing reaches the server.
func TestOpenEnded(t *testing.T) {
	srv, inits, _ := server(t, "legacy")
	p, _ := newPool(t, func(id string) bool { return id == "gone" })
	tests := []struct {
		name  string
		owner Owner
	}{
		{name: "ended", owner: Owner{ID: "gone", Key: "gone", Version: "2025-11-25", Expiry: time.Now().Add(time.Hour)}},
		{name: "expired", owner: Owner{ID: "old", Key: "old", Version: "2025-11-25", Expiry: time.Now().Add(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := p.Open(t.Context(), tt.owner, srv, "", upstream.Session{}); !errors.Is(err, ErrEnded) {
				t.Errorf("Open = %v, want ErrEnded", err)
			}
		})
	}
	if n := inits.Load(); n != 0 {
		t.Errorf("%d initializes for ended owners", n)
	}
}

// TestModern: a stateless server is told from one of an earlier revision
// by server/discover, asked once per server while the answer holds.
func TestModern(t *testing.T) {
	modern, _, modernAsked := server(t, "modern")
	legacy, _, _ := server(t, "legacy")
	p, _ := newPool(t, func(string) bool { return false })
	tests := []struct {
		name string
		srv  *registry.Server
		want bool
	}{
		{name: "modern", srv: modern, want: true},
		{name: "legacy", srv: legacy, want: false},
		{name: "modern again, remembered", srv: modern, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Modern(t.Context(), tt.srv, ""); got != tt.want {
				t.Errorf("Modern = %v, want %v", got, tt.want)
			}
		})
	}
	if n := modernAsked.Load(); n != 1 {
		t.Errorf("server/discover asked %d times, want 1", n)
	}
}

// TestModernCallerRefused: a server/discover that the server's route
// refuses or rate-limits for one caller (403, 429, as a Kuadrant policy
// answers) says nothing of the server's revision: that request counts the
// server as legacy, but the next caller's discover finds it stateless,
// never one caller's refusal remembered for everyone.
func TestModernCallerRefused(t *testing.T) {
	for _, status := range []int{http.StatusForbidden, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			modern, _, _ := server(t, "modern")
			inner, err := url.Parse(modern.URL)
			if err != nil {
				t.Fatal(err)
			}
			proxy := httputil.NewSingleHostReverseProxy(inner)
			route := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "Bearer limited" {
					http.Error(w, "refused by route", status)
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			t.Cleanup(route.Close)
			srv := &registry.Server{Name: modern.Name, URL: route.URL}
			p, _ := newPool(t, func(string) bool { return false })
			if p.Modern(t.Context(), srv, "Bearer limited") {
				t.Fatal("Modern = true for a refused discover, want false")
			}
			if !p.Modern(t.Context(), srv, "Bearer other") {
				t.Error("Modern = false after another caller's refusal, want true")
			}
		})
	}
}

// TestModernAskedOnceConcurrently: the first requests to reach a server at
// once ask it server/discover once between them, never once more for a
// request that looked before the answer was kept and asked after.
func TestModernAskedOnceConcurrently(t *testing.T) {
	for _, gen := range []string{"modern", "legacy"} {
		t.Run(gen, func(t *testing.T) {
			srv, _, asked := server(t, gen)
			for round := range 10 {
				p, _ := newPool(t, func(string) bool { return false })
				before := asked.Load()
				start := make(chan struct{})
				var wg sync.WaitGroup
				for range 64 {
					wg.Go(func() {
						<-start
						if got := p.Modern(t.Context(), srv, ""); got != (gen == "modern") {
							t.Errorf("Modern = %v", got)
						}
					})
				}
				close(start)
				wg.Wait()
				if n := asked.Load() - before; n != 1 {
					t.Fatalf("round %d: server/discover asked %d times by 64 requests, want 1", round, n)
				}
			}
		})
	}
}
