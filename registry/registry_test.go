package registry

import (
	"fmt"
	"sync"
	"testing"
)

func mustSnapshot(tb testing.TB, servers []Server) *Snapshot {
	tb.Helper()
	s, err := NewSnapshot(servers)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// generation returns a snapshot whose every server says which generation it belongs to.
func generation(tb testing.TB, g int) *Snapshot {
	return mustSnapshot(tb, []Server{
		{Name: "ns/a", Prefix: "a_", URL: "http://a/", Audience: fmt.Sprint(g)},
		{Name: "ns/b", Prefix: "b_", URL: "http://b/", Audience: fmt.Sprint(g)},
	})
}

func TestRegistryZeroValue(t *testing.T) {
	var r Registry
	if r.Load() == nil {
		t.Fatal("Load() = nil on the zero Registry")
	}
	snap := generation(t, 1)
	r.Store(snap)
	if r.Load() != snap {
		t.Error("Load() does not return the stored snapshot")
	}
	r.Store(nil)
	if got := r.Load(); got == nil || len(got.Servers()) != 0 {
		t.Errorf("after Store(nil), Load() = %v, want an empty snapshot", got)
	}
}

// TestRegistryVersion: every Store gives the current snapshot a Version
// greater than any before it, in this registry or another, so that a cache
// keyed by it (authz's list filter) sees every change; a snapshot that was
// never stored has Version 0.
func TestRegistryVersion(t *testing.T) {
	var a, b Registry
	if v := a.Load().Version(); v != 0 {
		t.Errorf("zero Registry: Version() = %d, want 0", v)
	}
	s1, s2 := generation(t, 1), generation(t, 2)
	if v := s1.Version(); v != 0 {
		t.Errorf("a snapshot never stored: Version() = %d, want 0", v)
	}
	s3 := generation(t, 3)
	steps := []struct {
		name string
		reg  *Registry
		snap func() *Snapshot // read when the step runs
	}{
		{name: "first store", reg: &a, snap: func() *Snapshot { return s1 }},
		{name: "a new snapshot", reg: &a, snap: func() *Snapshot { return s2 }},
		{name: "another registry", reg: &b, snap: func() *Snapshot { return s3 }},
		{name: "the same snapshot again", reg: &a, snap: func() *Snapshot { return s2 }},
		{name: "nil", reg: &a, snap: func() *Snapshot { return nil }},
		{name: "a snapshot the other registry holds", reg: &a, snap: b.Load},
	}
	var last uint64
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := st.reg.Load().Version()
			st.reg.Store(st.snap())
			got := st.reg.Load().Version()
			if got <= last || got <= before {
				t.Errorf("Version() = %d after Store, want more than %d (last Store) and %d (before)", got, last, before)
			}
			last = got
		})
	}
	if v := a.Load().Version(); v != last {
		t.Errorf("a.Load().Version() = %d, want %d", v, last)
	}
}

func TestRegistryConcurrentReaders(t *testing.T) {
	var r Registry
	r.Store(generation(t, 0))
	const stores = 200
	snaps := make([]*Snapshot, stores)
	for g := range snaps {
		snaps[g] = generation(t, g)
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				snap := r.Load()
				a, _, okA := snap.Resolve("a_x")
				b, okB := snap.Server("ns/b")
				if !okA || !okB || a.Audience != b.Audience {
					t.Errorf("one snapshot mixes generations: a=%v b=%v", a, b)
					return
				}
			}
		})
	}
	for _, s := range snaps {
		r.Store(s)
	}
	close(done)
	wg.Wait()
	if got := r.Load(); got != snaps[stores-1] {
		t.Errorf("Load() after the last Store = %p, want %p", got, snaps[stores-1])
	}
}

func TestRegistryChangedBroadcast(t *testing.T) {
	var r Registry
	ch := r.Changed()
	if r.Changed() != ch {
		t.Error("Changed() returned a different channel before any Store")
	}
	select {
	case <-ch:
		t.Fatal("Changed() closed before any Store")
	default:
	}

	const waiters = 8
	next := generation(t, 1)
	seen := make(chan *Snapshot, waiters)
	var ready, wg sync.WaitGroup
	ready.Add(waiters)
	for range waiters {
		wg.Go(func() {
			c := r.Changed()
			ready.Done()
			<-c
			seen <- r.Load()
		})
	}
	ready.Wait()
	r.Store(next)
	wg.Wait()
	close(seen)
	n := 0
	for s := range seen {
		n++
		if s != next {
			t.Errorf("a waiter woke to %p, want the stored snapshot %p", s, next)
		}
	}
	if n != waiters {
		t.Errorf("%d of %d waiters woke", n, waiters)
	}

	<-ch // the channel taken before the Store is closed too
	after := r.Changed()
	select {
	case <-after:
		t.Error("Changed() after a Store returned a closed channel")
	default:
	}
	r.Store(generation(t, 2))
	<-after
}

func BenchmarkResolve(b *testing.B) {
	for _, n := range []int{1, 500} {
		snap := mustSnapshot(b, many(n))
		name := fmt.Sprintf("s%d_pods_list", n/2)
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := snap.Resolve(name); !ok {
					b.Fatal("no match")
				}
			}
		})
		b.Run(fmt.Sprintf("servers=%d/miss", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := snap.Resolve("zz_pods_list"); ok {
					b.Fatal("match")
				}
			}
		})
	}
}

func BenchmarkByHost(b *testing.B) {
	snap := mustSnapshot(b, many(500))
	var r Registry
	r.Store(snap)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := r.Load().ByHost("s250.example.com:443"); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkResolveURI(b *testing.B) {
	snap := mustSnapshot(b, many(500))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := snap.ResolveURI("res://250/a/b"); !ok {
			b.Fatal("no match")
		}
	}
}

// TestStoreUnstoredSnapshot: storing the snapshot of a Registry never
// stored (the empty one every such Registry shares) stores an empty one of
// its own: every unstored Registry still has Version 0.
func TestStoreUnstoredSnapshot(t *testing.T) {
	var a, b, c Registry
	a.Store(b.Load())
	if v := a.Load().Version(); v == 0 {
		t.Error("the store gave no Version")
	}
	for name, r := range map[string]*Registry{"the one read": &b, "another": &c} {
		if v := r.Load().Version(); v != 0 {
			t.Errorf("%s unstored Registry: Version() = %d, want 0", name, v)
		}
	}
}
