package registry

import (
	"sync"
	"sync/atomic"
)

// empty is what a Registry holds before its first Store (Version 0).
var empty = &Snapshot{}

// versions numbers every Store in the process, so that a Version is never
// reused, even across registries.
var versions atomic.Uint64

// Registry holds the current Snapshot. Readers never lock. The zero value holds an empty
// snapshot and is ready to use; a Registry must not be copied after first use.
type Registry struct {
	snap atomic.Pointer[Snapshot]

	mu      sync.Mutex
	changed chan struct{} // closed and cleared by the next Store; nil until asked for
}

// Load returns the current snapshot, never nil.
func (r *Registry) Load() *Snapshot {
	if s := r.snap.Load(); s != nil {
		return s
	}
	return empty
}

// Store makes s the current snapshot (nil means a new empty one), gives it the next
// Version, and wakes every waiter on Changed. The empty snapshot every unstored
// Registry holds is shared, and keeps Version 0: storing it stores a new empty one.
func (r *Registry) Store(s *Snapshot) {
	if s == nil || s == empty {
		s = &Snapshot{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s.version.Store(versions.Add(1))
	r.snap.Store(s)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Changed returns a channel closed by the next Store. Call it before Load so that no
// Store is missed between the two.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}
