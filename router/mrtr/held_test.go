package mrtr

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// closer counts the closes of an upstream answer.
type closer struct{ n atomic.Int32 }

func (c *closer) Close() error { c.n.Add(1); return nil }

// newCall is a call served by owner, started on a session, with an answer
// and an abandon that count.
func newCall(t *testing.T, owner any) (h *Held, ctx context.Context, body *closer, abandoned *atomic.Int32) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h = NewHeld(t.Context(), cancel, owner)
	abandoned = new(atomic.Int32)
	h.Start(func() (upstream.Session, json.RawMessage, func()) {
		return upstream.Session{ID: "up", Version: "2025-11-25"}, json.RawMessage(`1`), func() { abandoned.Add(1) }
	})
	body = &closer{}
	h.Await(body, nil, json.RawMessage(`"q"`), []byte(`{"method":"roots/list","params":{}}`))
	return h, ctx, body, abandoned
}

// TestTable: a held call is taken once, by the binding it was held under;
// another binding changes nothing; the table's bound and timeout hold.
func TestTable(t *testing.T) {
	st := State{Handle: "h1", Issuer: "i", Subject: "alice", Server: "ns/a", Method: "tools/call", Name: "x", Expires: 1}
	t.Run("taken once by its binding", func(t *testing.T) {
		tab := NewTable(time.Minute, 10)
		owner := new(int)
		h, ctx, _, _ := newCall(t, owner)
		if !tab.Hold(h, st) {
			t.Fatal("not held")
		}
		if h.OwnedBy(owner) {
			t.Error("a held call still owned by its request")
		}
		bob := st
		bob.Subject = "bob"
		if got, err := tab.Take(bob); !errors.Is(err, ErrState) || got != nil {
			t.Fatalf("another binding took it: %v", err)
		}
		got, err := tab.Take(st)
		if err != nil || got != h {
			t.Fatalf("the binding did not take it: %v", err)
		}
		if _, err := tab.Take(st); !errors.Is(err, ErrNotHeld) {
			t.Errorf("taken twice: %v", err)
		}
		if ctx.Err() != nil {
			t.Error("the call ended")
		}
		retry := new(int)
		h.Resume(t.Context(), retry)
		if !h.OwnedBy(retry) || h.OwnedBy(owner) {
			t.Error("the retry does not own the call")
		}
	})
	t.Run("bounded", func(t *testing.T) {
		tab := NewTable(time.Minute, 1)
		h1, _, _, _ := newCall(t, new(int))
		h2, _, _, _ := newCall(t, new(int))
		other := st
		other.Handle = "h2"
		if !tab.Hold(h1, st) {
			t.Fatal("not held")
		}
		owner := new(int)
		h2.Resume(t.Context(), owner)
		if tab.Hold(h2, other) {
			t.Fatal("held past the bound")
		}
		if !h2.OwnedBy(owner) {
			t.Error("a call the table refused left its request")
		}
		if _, err := tab.Take(other); !errors.Is(err, ErrNotHeld) {
			t.Errorf("took %v", err)
		}
	})
	t.Run("timeout ends it", func(t *testing.T) {
		tab := NewTable(20*time.Millisecond, 10)
		h, ctx, body, abandoned := newCall(t, new(int))
		if !tab.Hold(h, st) {
			t.Fatal("not held")
		}
		// The answer is closed last (Held.Done): its close is the end.
		deadline := time.Now().Add(5 * time.Second)
		for body.n.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the held call outlived the timeout")
			}
			time.Sleep(time.Millisecond)
		}
		if ctx.Err() == nil {
			t.Error("the timed-out call's context was not ended")
		}
		if _, err := tab.Take(st); !errors.Is(err, ErrNotHeld) {
			t.Errorf("took a timed-out call: %v", err)
		}
		if body.n.Load() != 1 || abandoned.Load() != 1 {
			t.Errorf("closed %d, abandoned %d", body.n.Load(), abandoned.Load())
		}
	})
	t.Run("EndAll", func(t *testing.T) {
		tab := NewTable(time.Minute, 10)
		h, ctx, body, abandoned := newCall(t, new(int))
		if !tab.Hold(h, st) {
			t.Fatal("not held")
		}
		tab.EndAll()
		if ctx.Err() == nil || body.n.Load() != 1 || abandoned.Load() != 1 {
			t.Errorf("ended %v, closed %d, abandoned %d", ctx.Err(), body.n.Load(), abandoned.Load())
		}
		if _, err := tab.Take(st); !errors.Is(err, ErrNotHeld) {
			t.Errorf("took an ended call: %v", err)
		}
	})
	t.Run("owner request ends it until held", func(t *testing.T) {
		req, end := context.WithCancel(t.Context())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h := NewHeld(req, cancel, new(int))
		h.Detach()
		end()
		if ctx.Err() != nil {
			t.Error("a detached call ended with its request")
		}
		req2, end2 := context.WithCancel(t.Context())
		h.Resume(req2, new(int))
		end2()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Error("the resumed call outlived its request")
		}
	})
}

// TestWaits: an answer reaches only the wait of its key, the first
// counts, and Collect assembles inputResponses or gives up clearly.
func TestWaits(t *testing.T) {
	tab := NewTable(time.Minute, 10)
	a, b := tab.Wait("s\x00a"), tab.Wait("s\x00b")
	tab.Deliver("other\x00a", Answer{Result: json.RawMessage(`{"forged":1}`)})
	tab.Deliver("s\x00b", Answer{Result: json.RawMessage(`{"b":1}`)})
	tab.Deliver("s\x00b", Answer{Result: json.RawMessage(`{"b":2}`)})
	tab.Deliver("s\x00a", Answer{Result: json.RawMessage(`{"a":1}`)})
	got, err := Collect(t.Context(), time.Second, []string{"a", "b"}, []<-chan Answer{a, b})
	if err != nil || string(got) != `{"a":{"a":1},"b":{"b":1}}` {
		t.Fatalf("got %s, %v", got, err)
	}
	tab.Forget("s\x00a")
	tab.Deliver("s\x00a", Answer{Result: json.RawMessage(`{}`)})
	select {
	case v := <-a:
		t.Errorf("delivered after Forget: %s", v.Result)
	default:
	}

	ended, cancel := context.WithCancel(t.Context())
	cancel()
	errAnswer := make(chan Answer, 1)
	errAnswer <- Answer{Err: json.RawMessage(`{"code":1}`)}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		ch   <-chan Answer
		want string
	}{
		{"timeout", t.Context(), make(chan Answer), "in time (inputTimeout)"},
		{"call ended", ended, make(chan Answer), "the call ended"},
		{"error answer", t.Context(), errAnswer, `"k" input request with an error`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Collect(tc.ctx, 20*time.Millisecond, []string{"k"}, []<-chan Answer{tc.ch})
			var e Error
			if !errors.As(err, &e) || !strings.Contains(e.Error(), tc.want) {
				t.Errorf("got %s, %v; want %q", got, err, tc.want)
			}
		})
	}
}
