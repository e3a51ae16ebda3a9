package expiry

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func key(name string) [32]byte { return sha256.Sum256([]byte(name)) }

func nkey(n int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return sha256.Sum256(b[:])
}

// put is one call of Put: name is the key, and the value is name and
// until joined, so that a replaced value shows.
type put struct {
	name      string
	at, until time.Duration // after start
}

func (p put) value() string { return p.name + "@" + p.until.String() }

// contents returns the values of the names' entries, expired or not,
// sorted, after checking that map and heap agree.
func contents(t *testing.T, c *Cache[string], puts []put) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) != len(c.h) {
		t.Fatalf("map holds %d entries, heap %d", len(c.m), len(c.h))
	}
	for i, e := range c.h {
		if e.index != i || c.m[e.key] != e {
			t.Fatalf("heap[%d] has index %d, in the map: %v", i, e.index, c.m[e.key] == e)
		}
		if i > 0 && c.h[(i-1)/2].until > e.until {
			t.Fatalf("heap[%d] expires before its parent", i)
		}
	}
	var got []string
	seen := map[string]bool{}
	for _, p := range puts {
		if e, ok := c.m[key(p.name)]; ok && !seen[p.name] {
			seen[p.name] = true
			got = append(got, e.v)
		}
	}
	slices.Sort(got)
	return got
}

func TestPut(t *testing.T) {
	tests := []struct {
		name string
		size int
		puts []put
		want []string
	}{
		{"kept", 3, []put{{"a", 0, time.Minute}, {"b", 0, 2 * time.Minute}}, []string{"a@1m0s", "b@2m0s"}},
		{"until now is not kept", 3, []put{{"a", time.Minute, time.Minute}}, nil},
		{"until before now is not kept", 3, []put{{"a", time.Minute, time.Second}}, nil},
		{"a put replaces the value under its key", 3,
			[]put{{"a", 0, time.Minute}, {"b", 0, 2 * time.Minute}, {"a", 0, 3 * time.Minute}},
			[]string{"a@3m0s", "b@2m0s"}},
		{"full: the soonest-expiring is dropped", 2,
			[]put{{"a", 0, 2 * time.Minute}, {"b", 0, time.Minute}, {"c", 0, 3 * time.Minute}},
			[]string{"a@2m0s", "c@3m0s"}},
		{"full: every expired entry is dropped first", 3,
			[]put{{"a", 0, time.Minute}, {"b", 0, 2 * time.Minute}, {"c", 0, 20 * time.Minute}, {"d", 5 * time.Minute, 6 * time.Minute}},
			[]string{"c@20m0s", "d@6m0s"}},
		{"an entry expiring at now is expired", 5,
			[]put{{"a", 0, time.Minute}, {"b", 0, 20 * time.Minute}, {"c", time.Minute, 10 * time.Minute}},
			[]string{"b@20m0s", "c@10m0s"}},
		{"not full: expired entries are dropped too", 5,
			[]put{{"a", 0, time.Minute}, {"b", 0, 20 * time.Minute}, {"c", 2 * time.Minute, 10 * time.Minute}},
			[]string{"b@20m0s", "c@10m0s"}},
		{"full: a new entry expiring sooner than all is not kept", 2,
			[]put{{"a", 0, 2 * time.Minute}, {"b", 0, 3 * time.Minute}, {"c", 0, time.Minute}},
			[]string{"a@2m0s", "b@3m0s"}},
		{"full: a new entry expiring with the soonest replaces it", 2,
			[]put{{"a", 0, 2 * time.Minute}, {"b", 0, 3 * time.Minute}, {"c", 0, 2 * time.Minute}},
			[]string{"b@3m0s", "c@2m0s"}},
		{"full: a replaced entry frees its own slot", 2,
			[]put{{"a", 0, 2 * time.Minute}, {"b", 0, 3 * time.Minute}, {"b", 0, time.Minute}},
			[]string{"a@2m0s", "b@1m0s"}},
		{"size 1", 1, []put{{"a", 0, time.Minute}, {"b", 0, 2 * time.Minute}}, []string{"b@2m0s"}},
		{"disabled: size 0", 0, []put{{"a", 0, time.Minute}}, nil},
		{"disabled: negative size", -1, []put{{"a", 0, time.Minute}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[string](tt.size)
			for _, p := range tt.puts {
				c.Put(key(p.name), p.value(), start.Add(p.at), start.Add(p.until))
			}
			if diff := cmp.Diff(tt.want, contents(t, c, tt.puts)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if got := c.Len(); got != len(tt.want) {
				t.Errorf("Len() = %d, want %d", got, len(tt.want))
			}
		})
	}
}

func TestGet(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		at      time.Duration // after start; the entry expires at a minute
		want    bool
		wantLen int
	}{
		{"before its expiry", 2, 0, true, 1},
		{"a nanosecond before its expiry", 2, time.Minute - time.Nanosecond, true, 1},
		{"at its expiry: dropped", 2, time.Minute, false, 0},
		{"after its expiry: dropped", 2, time.Hour, false, 0},
		{"disabled", 0, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[string](tt.size)
			c.Put(key("a"), "A", start, start.Add(time.Minute))
			v, ok := c.Get(key("a"), start.Add(tt.at))
			if ok != tt.want || (ok && v != "A") || (!ok && v != "") {
				t.Errorf("Get() = %q, %v, want found %v", v, ok, tt.want)
			}
			if got := c.Len(); got != tt.wantLen {
				t.Errorf("Len() after Get = %d, want %d", got, tt.wantLen)
			}
			if v, ok := c.Get(key("b"), start); ok || v != "" {
				t.Errorf("Get() of a key never put = %q, %v", v, ok)
			}
		})
	}
}

// TestFarExpiry puts expiries out of the int64 range of unix nanoseconds:
// they count as the last instant it holds, not as an undefined one.
func TestFarExpiry(t *testing.T) {
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New[string](1)
	c.Put(key("a"), "A", start, start.Add(time.Minute))
	c.Put(key("b"), "B", start, far)
	if v, ok := c.Get(key("b"), start.Add(time.Hour)); !ok || v != "B" {
		t.Errorf("Get() of an entry expiring in 3000 = %q, %v, want B", v, ok)
	}
	if _, ok := c.Get(key("a"), start); ok {
		t.Error("the entry expiring first was kept in a full cache")
	}
	c.Put(key("c"), "C", start, far.Add(time.Hour))
	if _, ok := c.Get(key("c"), start); !ok {
		t.Error("an entry expiring with the soonest (both clamped) was not kept")
	}
	if _, ok := c.Get(key("c"), far.Add(2*time.Hour)); ok {
		t.Error("an entry was served past its expiry in 3000")
	}
}

func TestPeek(t *testing.T) {
	c := New[string](2)
	c.Put(key("a"), "A", start, start.Add(time.Minute))
	// Peek has no clock: an expired entry is still returned and kept.
	if v, ok := c.Peek(key("a")); !ok || v != "A" {
		t.Errorf("Peek() = %q, %v, want A", v, ok)
	}
	if got := c.Len(); got != 1 {
		t.Errorf("Len() after Peek = %d, want 1", got)
	}
	if v, ok := c.Peek(key("b")); ok || v != "" {
		t.Errorf("Peek() of a key never put = %q, %v", v, ok)
	}
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name   string
		remove string
		want   []string
	}{
		{"the soonest, at the heap top", "a", []string{"b@2m0s", "c@3m0s"}},
		{"one in the middle", "b", []string{"a@1m0s", "c@3m0s"}},
		{"the latest", "c", []string{"a@1m0s", "b@2m0s"}},
		{"a key never put", "d", []string{"a@1m0s", "b@2m0s", "c@3m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			puts := []put{{"c", 0, 3 * time.Minute}, {"a", 0, time.Minute}, {"b", 0, 2 * time.Minute}}
			c := New[string](3)
			for _, p := range puts {
				c.Put(key(p.name), p.value(), start.Add(p.at), start.Add(p.until))
			}
			c.Remove(key(tt.remove))
			if diff := cmp.Diff(tt.want, contents(t, c, puts)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if _, ok := c.Get(key(tt.remove), start); ok {
				t.Errorf("Get(%q) after Remove found it", tt.remove)
			}
		})
	}
	// Removing from a disabled cache is a no-op.
	New[string](0).Remove(key("a"))
}

// TestConcurrent runs puts, gets and removes on one cache from several
// goroutines (meant for -race), then checks that the bound and the heap
// held.
func TestConcurrent(t *testing.T) {
	const size, workers, keys = 50, 8, 200
	c := New[int](size)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 2000 {
				n := (i*7 + w) % keys
				k := nkey(n)
				now := start.Add(time.Duration(i) * time.Millisecond)
				switch i % 4 {
				case 0, 1:
					c.Put(k, n, now, now.Add(time.Duration(n)*time.Millisecond+time.Millisecond))
				case 2:
					if v, ok := c.Get(k, now); ok && v != n {
						t.Errorf("Get() = %d, want %d", v, n)
					}
				case 3:
					c.Remove(k)
				}
			}
		})
	}
	wg.Wait()
	if got := c.Len(); got > size {
		t.Errorf("Len() = %d, want at most %d", got, size)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.h {
		if e.index != i || c.m[e.key] != e {
			t.Fatalf("heap[%d] out of step with its index or the map", i)
		}
	}
}

// BenchmarkGet is a hit in a cache of 10,000 entries.
func BenchmarkGet(b *testing.B) {
	c := New[[]byte](10_000)
	for i := range 10_000 {
		c.Put(nkey(i), []byte("v"), start, start.Add(time.Hour+time.Duration(i)))
	}
	k := nkey(5000)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(k, start); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkPut fills a full cache of 10,000 entries, each put dropping
// the soonest-expiring.
func BenchmarkPut(b *testing.B) {
	const n = 10_000
	c := New[[]byte](n)
	keys := make([][32]byte, 2*n)
	for i := range keys {
		keys[i] = nkey(i)
	}
	v := []byte("v")
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		c.Put(keys[i%len(keys)], v, start, start.Add(time.Hour+time.Duration(i)))
		i++
	}
	if c.Len() != min(i, n) {
		b.Fatalf("Len() = %d, want %d", c.Len(), min(i, n))
	}
}
