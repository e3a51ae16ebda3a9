package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites: writes from many goroutines while another reads
// all land whole (go test -race checks the locking).
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	const writers, lines = 8, 100
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range lines {
				if n, err := b.Write([]byte("line\n")); n != 5 || err != nil {
					t.Errorf("Write = %d, %v", n, err)
				}
			}
		})
	}
	wg.Go(func() {
		for range lines {
			_ = b.String()
			_ = b.Bytes()
		}
	})
	wg.Wait()
	if got, want := b.String(), strings.Repeat("line\n", writers*lines); got != want {
		t.Errorf("%d bytes, want %d", len(got), len(want))
	}
}

// TestBytesIsACopy: what Bytes returned does not change with later writes.
func TestBytesIsACopy(t *testing.T) {
	var b Buffer
	_, _ = b.Write([]byte("a"))
	got := b.Bytes()
	_, _ = b.Write([]byte("b"))
	got[0] = 'x'
	if string(got) != "x" || b.String() != "ab" {
		t.Errorf("Bytes %q, String %q: want x and ab", got, b.String())
	}
}
