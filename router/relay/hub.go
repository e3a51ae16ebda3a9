package relay

import (
	"sync"

	"github.com/mcp-authz/mcp-authz/registry"
)

// Stream is one open GET stream of a client: it carries the events for its
// client and relays the GET streams of the servers its session has
// upstream sessions with.
type Stream struct {
	session string        // the key of the client session it belongs to
	Events  chan []byte   // what to send the client
	ended   chan struct{} // closed when its session ends
	// Relay, set before Add, starts relaying one server's GET stream into
	// Events; nil for a stream that relays none.
	Relay func(*registry.Server)

	mu       sync.Mutex
	relaying map[string]bool // servers relayed
	stopped  bool            // no relay starts any more
	wg       sync.WaitGroup  // the relays running
}

// NewStream returns a stream of the client session of that key.
func NewStream(session string) *Stream {
	return &Stream{session: session, Events: make(chan []byte, 64), ended: make(chan struct{}), relaying: map[string]bool{}}
}

// Ended is closed when the stream's session ends (Hub.End).
func (st *Stream) Ended() <-chan struct{} { return st.ended }

// Watch relays srv's GET stream too, once, unless the stream is stopping.
func (st *Stream) Watch(srv *registry.Server) {
	if st.Relay == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped || st.relaying[srv.Name] {
		return
	}
	st.relaying[srv.Name] = true
	st.wg.Go(func() { st.Relay(srv) })
}

// Stop starts no more relays and waits for the running ones, which end
// with the context given to them.
func (st *Stream) Stop() {
	st.mu.Lock()
	st.stopped = true
	st.mu.Unlock()
	st.wg.Wait()
}

// Hub reaches every open GET stream of this replica, by session.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[*Stream]struct{} // session key -> its streams
}

// NewHub returns a hub without streams.
func NewHub() *Hub { return &Hub{subs: map[string]map[*Stream]struct{}{}} }

// Add makes st reachable.
func (h *Hub) Add(st *Stream) {
	session := st.session
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs[session] == nil {
		h.subs[session] = map[*Stream]struct{}{}
	}
	h.subs[session][st] = struct{}{}
}

// Watch has every GET stream of session relay srv's stream too: the
// session has just opened an upstream session with srv.
func (h *Hub) Watch(session string, srv *registry.Server) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st := range h.subs[session] {
		st.Watch(srv)
	}
}

// Remove forgets st.
func (h *Hub) Remove(st *Stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs[st.session], st)
	if len(h.subs[st.session]) == 0 {
		delete(h.subs, st.session)
	}
}

// End closes the streams of a session at once.
func (h *Hub) End(session string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st := range h.subs[session] {
		close(st.ended)
	}
	delete(h.subs, session)
}

// Broadcast offers data to every stream; a stream that is full misses it.
func (h *Hub) Broadcast(data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, streams := range h.subs {
		for st := range streams {
			select {
			case st.Events <- data:
			default:
			}
		}
	}
}
