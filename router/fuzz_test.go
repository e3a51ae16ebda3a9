package router

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// FuzzSSE: the event reader never panics and never returns more than its
// bound per event.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("event: message\ndata: {\"a\":1}\n\n"))
	f.Add([]byte("data: a\r\ndata: b\r\n\r\n: comment\n\nid: 1\n"))
	f.Add([]byte("data:" + string(bytes.Repeat([]byte("x"), 100)) + "\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := upstream.NewSSEReader(bytes.NewReader(in), 64)
		for range 1000 {
			data, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, upstream.ErrEventTooLarge) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if len(data) > 64 {
				t.Fatalf("event of %d bytes over the bound", len(data))
			}
		}
	})
}
