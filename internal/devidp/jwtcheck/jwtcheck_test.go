package jwtcheck

import (
	"errors"
	"testing"
	"time"
)

func TestReplayCacheBounded(t *testing.T) {
	c := NewReplayCache(2)
	now := time.Now()
	for i, k := range []string{"a", "b"} {
		if err := c.Use(k, now.Add(time.Minute), now); err != nil {
			t.Fatalf("use %d: %v", i, err)
		}
	}
	if err := c.Use("a", now.Add(time.Minute), now); !errors.Is(err, ErrReplayed) {
		t.Errorf("replay: %v", err)
	}
	if err := c.Use("c", now.Add(time.Minute), now); !errors.Is(err, ErrReplayFull) {
		t.Errorf("full: %v, want refused", err)
	}
	later := now.Add(2 * time.Minute)
	if err := c.Use("c", later.Add(time.Minute), later); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	if len(c.seen) != 1 {
		t.Errorf("%d entries after pruning, want 1", len(c.seen))
	}
}
