package mrtr

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// Answer is a client's answer to an input request: its result or its
// error, as sent.
type Answer struct {
	Result, Err json.RawMessage
}

// WaitKey names an answer awaited from a session (by its key: so its
// caller) to the input request id, by the id's value (idKey).
func WaitKey(session string, id json.RawMessage) string {
	k, _ := idKey(id)
	return session + "\x00" + k
}

// idKey is the value of an id, so that ids spelled differently compare
// equal: "s" and the decoded string, or "n" and the integer in decimal
// (see mcpparse.AppendIDKey). ok is false for anything else.
func idKey(id json.RawMessage) (key string, ok bool) {
	var buf [64]byte
	k, ok := mcpparse.AppendIDKey(buf[:0], id)
	return string(k), ok
}

// maxSafeID bounds integer ids: 2^53-1 (see mcpparse.AppendIDKey).
const maxSafeID = 1<<53 - 1

// Wait registers the answer awaited under key (naming the session and the
// request's id) and returns where it arrives; Forget ends the wait.
func (t *Table) Wait(key string) <-chan Answer {
	ch := make(chan Answer, 1)
	t.mu.Lock()
	t.waiting[key] = ch
	t.mu.Unlock()
	return ch
}

// Forget ends the waits of keys.
func (t *Table) Forget(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.waiting, k)
	}
}

// Deliver hands a over to the wait of key, if there is one; an answer
// after the first is dropped.
func (t *Table) Deliver(key string, a Answer) {
	t.mu.Lock()
	ch, ok := t.waiting[key]
	t.mu.Unlock()
	if ok {
		select {
		case ch <- a:
		default: // answered twice: the first counts
		}
	}
}

// Collect waits for the answers to the input requests keys (on chans, in
// the same order), for timeout at most: an inputResponses object.
func Collect(ctx context.Context, timeout time.Duration, keys []string, chans []<-chan Answer) (json.RawMessage, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	out := []byte{'{'}
	for i, key := range keys {
		var ans Answer
		select {
		case ans = <-chans[i]:
		case <-timer.C:
			return nil, Error("the client did not answer the server's input request in time (inputTimeout)")
		case <-ctx.Done():
			return nil, Error("the call ended while waiting for the client's input")
		}
		if ans.Err != nil {
			return nil, Error("the client answered the server's " + strconv.Quote(key) + " input request with an error")
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(append(mcpparse.AppendString(out, key), ':'), ans.Result...)
	}
	return append(out, '}'), nil
}
