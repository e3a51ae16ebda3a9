package catalog

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/registry"
)

// countingSource answers every tools/list with one tool and counts the
// lists it was asked for. A stand-in for the router: what is tested is
// the cache's bookkeeping, not the upstream exchange (which the router's
// tests run against real servers).
type countingSource struct{ lists atomic.Int64 }

func (*countingSource) Credential(context.Context, Caller, string) (string, error) { return "", nil }

func (s *countingSource) Request(context.Context, Caller, *registry.Server, string, string, []byte) (json.RawMessage, string, error) {
	s.lists.Add(1)
	return json.RawMessage(`{"tools":[{"name":"a","inputSchema":{"type":"object"}}]}`), "2025-11-25", nil
}

type quietReporter struct{}

func (quietReporter) Failed(*registry.Server, string, error)                {}
func (quietReporter) TooLarge(*registry.Server, string, string, int64, int) {}
func (quietReporter) Shadowed(*registry.Server, string, []string)           {}

// TestFetchTakesListPutSinceLook: a caller that found no list while
// another caller's fetch was in flight, and reached the fetch only after
// that one had put its list, takes that list rather than fetching again
// (with its own upstream session); a list put before it looked, now
// stale, is fetched again; and a refetch (RefreshTool) always fetches.
func TestFetchTakesListPutSinceLook(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	src := &countingSource{}
	snap, err := registry.NewSnapshot([]registry.Server{{Name: "ns/a", Prefix: "a_", URL: "http://127.0.0.1:1/mcp"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	c, err := New(Config{
		ListTimeout: time.Second, ListRefresh: time.Minute, MaxListBytes: 1 << 20, MaxListItems: 100,
		MaxAggregateBytes: 1 << 20, MaxAggregateItems: 100, CacheBytes: 1 << 20, MaxResponseBytes: 1 << 20,
		Now: func() time.Time { return now },
	}, Deps{Registry: reg, Source: src, Reporter: quietReporter{}})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := snap.Server("ns/a")
	caller := Caller{Subject: "alice"}
	look := func() (listKey, uint64) {
		key, _, _, seen := c.lists.lookup(Tools, srv, "", authContext("", "alice", ""), now)
		return key, seen
	}
	fetch := func(key listKey, seen uint64) *serverList {
		return c.fetchCached(t.Context(), Tools, caller, snap, srv, key, "", seen)
	}

	keyA, seenA := look()
	keyB, seenB := look() // B looks while A's fetch is still to come
	la := fetch(keyA, seenA)
	if lb := fetch(keyB, seenB); lb != la {
		t.Errorf("B got another list than the one A put")
	}
	if n := src.lists.Load(); n != 1 {
		t.Errorf("%d lists fetched for two callers of one context, want 1", n)
	}

	now = now.Add(2 * time.Minute) // A's list is stale now
	keyC, seenC := look()
	if l := fetch(keyC, seenC); l == la {
		t.Error("a stale list put before the look was taken")
	}
	if n := src.lists.Load(); n != 2 {
		t.Errorf("%d lists fetched, want 2 once the first was stale", n)
	}

	keyD, _ := look()
	fetch(keyD, refetch)
	if n := src.lists.Load(); n != 3 {
		t.Errorf("%d lists fetched, want 3 after a refetch of a fresh list", n)
	}
}
