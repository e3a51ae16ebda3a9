package mrtr

// A 2026-07-28 client and a server of an earlier revision: the server's
// requests during a call (elicitation, sampling, roots) become
// InputRequiredResults, and the upstream call is held for the retry.
//
// A held call lives on the replica that holds it and nowhere else: a retry
// that reaches another replica (it can open requestState: the keys are
// shared) is refused with a clear error and the client calls again; the
// held call ends after the table's timeout, which cancels it upstream (its
// HTTP request ends). Nothing of it is in requestState but a random handle
// and the binding, sealed under an AAD of its own. Each requestState
// resumes once: the next round gets a new handle.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Held is a stateless caller's upstream call. While it waits for the
// client's retry it is held: the client's HTTP request has ended, the
// upstream answer stays open, and only the retry, the table's timeout or
// the call's own timeout end it.
type Held struct {
	cancel context.CancelFunc // ends the upstream call
	// detach stops the current client request from ending the call.
	detach func() bool
	// abandon tells the server the call is cancelled; nil until started.
	abandon func()

	mu sync.Mutex
	// owner is the client request serving the call (the router's, compared
	// by identity); nil while it is held (waiting in a Table for the retry
	// that takes it).
	owner  any
	body   io.Closer           // the upstream answer
	sr     *upstream.SSEReader // reading body
	callID json.RawMessage     // the id the call went upstream with
	upID   json.RawMessage     // the server's request the retry answers
	ask    []byte              // that request as an input request (Ask)
	up     upstream.Session    // the session the call runs on
	bind   State               // what the retry's requestState must be
	timer  *time.Timer         // the table's timeout
	rounds int
}

// NewHeld is a call that owner, the client request whose context is ctx,
// serves: ctx ending cancels it, until the call is held.
func NewHeld(ctx context.Context, cancel context.CancelFunc, owner any) *Held {
	return &Held{cancel: cancel, owner: owner, detach: context.AfterFunc(ctx, cancel)}
}

// OwnedBy reports whether owner's request serves the call: it must end it.
func (h *Held) OwnedBy(owner any) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.owner == owner
}

// Detach stops the serving request's context from ending the call.
func (h *Held) Detach() bool { return h.detach() }

// Start sets, on the first of the server's requests, the session the call
// runs on, the id it went upstream with and what abandons it, from start;
// it returns the session.
func (h *Held) Start(start func() (up upstream.Session, callID json.RawMessage, abandon func())) upstream.Session {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up.Version == "" {
		h.up, h.callID, h.abandon = start()
	}
	return h.up
}

// Await keeps what the retry continues: the upstream answer (body, read by
// sr), the server's request id and ask, that request as an input request.
func (h *Held) Await(body io.Closer, sr *upstream.SSEReader, upID json.RawMessage, ask []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.body, h.sr, h.upID, h.ask = body, sr, upID, ask
}

// Round counts a round of input and returns it with the ask.
func (h *Held) Round() (round int, ask []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rounds++
	return h.rounds, h.ask
}

// Pending is what the retry answers: the session, and the id of the
// server's request.
func (h *Held) Pending() (up upstream.Session, upID json.RawMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up, h.upID
}

// Answer is the call's upstream answer: its reader and the id the call's
// answer has.
func (h *Held) Answer() (sr *upstream.SSEReader, body io.Closer, callID json.RawMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sr, h.body, h.callID
}

// Resume makes owner, the retry whose context is ctx, serve the call.
func (h *Held) Resume(ctx context.Context, owner any) {
	h.mu.Lock()
	h.owner = owner
	h.mu.Unlock()
	h.detach = context.AfterFunc(ctx, h.cancel)
}

// End ends the upstream call before its answer: the server is told
// (notifications/cancelled) and the answer closed.
func (h *Held) End() {
	h.mu.Lock()
	abandon := h.abandon
	h.abandon = nil
	h.mu.Unlock()
	if abandon != nil {
		abandon()
	}
	h.Done()
}

// Done lets the upstream call and its answer go.
func (h *Held) Done() {
	h.detach()
	h.cancel()
	h.mu.Lock()
	body := h.body
	h.body = nil
	h.mu.Unlock()
	if body != nil {
		body.Close()
	}
}

// Table is what a replica holds for input requests: held calls by the
// handle sealed in requestState, and the answers a bridge waits for.
type Table struct {
	timeout time.Duration
	max     int

	mu sync.Mutex
	// held are the upstream calls of stateless callers waiting for the
	// retry, by handle.
	held map[string]*Held
	// waiting are the answers a bridge waits for, by the router's key.
	waiting map[string]chan Answer
}

// NewTable holds at most max calls, each for timeout.
func NewTable(timeout time.Duration, maxHeld int) *Table {
	return &Table{timeout: timeout, max: maxHeld, held: map[string]*Held{}, waiting: map[string]chan Answer{}}
}

// Hold holds h for the retry that presents st, for the table's timeout,
// and detaches it from its request. It reports false, and h stays its
// owner's, when the table is full.
func (t *Table) Hold(h *Held, st State) bool {
	t.mu.Lock()
	if len(t.held) >= t.max {
		t.mu.Unlock()
		return false
	}
	h.mu.Lock()
	h.owner, h.bind = nil, st
	h.timer = time.AfterFunc(t.timeout, func() { t.drop(st.Handle) })
	h.mu.Unlock()
	t.held[st.Handle] = h
	t.mu.Unlock()
	h.detach() // the client's request ends now, the call does not
	return true
}

// ErrNotHeld is a retry of a call this table does not hold: it ended,
// timed out, or another replica holds it.
var ErrNotHeld = errors.New("mrtr: the call is not held here")

// Take removes and returns the held call of st's handle: ErrNotHeld if it
// is gone or being dropped, ErrState (and the call stays held, its timeout
// started anew) if it is held under another binding.
func (t *Table) Take(st State) (*Held, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, ok := t.held[st.Handle]
	if !ok || !h.timer.Stop() {
		return nil, ErrNotHeld
	}
	if h.bind != st {
		h.timer = time.AfterFunc(t.timeout, func() { t.drop(st.Handle) })
		return nil, ErrState
	}
	delete(t.held, st.Handle)
	return h, nil
}

// EndAll ends every held call.
func (t *Table) EndAll() {
	t.mu.Lock()
	held := t.held
	t.held = map[string]*Held{}
	t.mu.Unlock()
	for _, h := range held {
		h.timer.Stop()
		h.End()
	}
}

// drop ends a held call nobody resumed in time.
func (t *Table) drop(handle string) {
	t.mu.Lock()
	h, ok := t.held[handle]
	delete(t.held, handle)
	t.mu.Unlock()
	if ok {
		h.End()
	}
}
