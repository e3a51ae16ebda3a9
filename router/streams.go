package router

import (
	"net/http"
	"sync"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/router/forward"
)

// callerStreams counts the streams each caller holds open on this replica
// (Config.MaxStreamsPerCaller). The zero value is ready.
type callerStreams struct {
	mu sync.Mutex
	n  map[string]int // caller key -> open streams
}

// streamCaller is the key the bound counts c's streams under, "" for an
// anonymous caller (the bound does not apply: all of them would share it).
func streamCaller(c assertion.Claims) string {
	if c.Subject == "" {
		return ""
	}
	return c.Issuer + "\x00" + c.Subject
}

// acquireStream counts a stream of the caller c names, and returns the
// release that uncounts it; it answers 429 and returns false when the
// caller already holds MaxStreamsPerCaller.
func (r *Router) acquireStream(w http.ResponseWriter, c *forward.Call) (release func(), ok bool) {
	key := streamCaller(c.Claims)
	if key == "" {
		return func() {}, true
	}
	s := &r.held
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] >= r.cfg.MaxStreamsPerCaller {
		r.metrics.streamsRefused.Inc()
		forward.WriteError(w, http.StatusTooManyRequests, c.Msg.ID, forward.CodeInvalidRequest,
			"too many open streams for this caller (maxStreamsPerCaller): close one first")
		return nil, false
	}
	if s.n == nil {
		s.n = map[string]int{}
	}
	s.n[key]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.n[key]--; s.n[key] <= 0 {
			delete(s.n, key)
		}
	}, true
}
