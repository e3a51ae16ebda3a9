package relay

import (
	"sync"
	"testing"

	"github.com/mcp-authz/mcp-authz/registry"
)

// TestHub: a broadcast reaches every stream (a full one misses it, never
// blocks), End closes the streams of one session only, and Watch relays
// each server once per stream, never after Stop.
func TestHub(t *testing.T) {
	h := NewHub()
	var mu sync.Mutex
	relayed := map[string]int{}
	relay := func(srv *registry.Server) {
		mu.Lock()
		defer mu.Unlock()
		relayed[srv.Name]++
	}
	a, b := NewStream("alice"), NewStream("bob")
	a.Relay, b.Relay = relay, relay
	h.Add(a)
	h.Add(b)

	for range cap(a.Events) + 1 { // one more than a stream holds: dropped, not blocking
		h.Broadcast([]byte("x"))
	}
	if len(a.Events) != cap(a.Events) || len(b.Events) != cap(b.Events) {
		t.Errorf("events %d and %d, want %d each", len(a.Events), len(b.Events), cap(a.Events))
	}

	srv := &registry.Server{Name: "ns/s"}
	h.Watch("alice", srv)
	h.Watch("alice", srv)
	a.Stop() // waits for the relay started
	h.Watch("alice", &registry.Server{Name: "ns/late"})
	b.Stop()
	mu.Lock()
	if relayed["ns/s"] != 1 || relayed["ns/late"] != 0 {
		t.Errorf("relayed %v: want ns/s once (alice's only), nothing after Stop", relayed)
	}
	mu.Unlock()

	h.End("alice")
	select {
	case <-a.Ended():
	default:
		t.Error("alice's stream not ended")
	}
	select {
	case <-b.Ended():
		t.Error("bob's stream ended with alice's session")
	default:
	}
	h.Remove(b)
	h.Broadcast([]byte("y")) // nobody left: nothing blocks or panics
}
