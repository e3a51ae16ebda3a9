package policy

import (
	"context"
	"sync/atomic"
)

// Engine holds the Set in force and swaps it atomically on reload. The zero
// Engine holds none and denies everything with reason no_policy.
type Engine struct {
	set atomic.Pointer[Set]
}

// NewEngine returns an Engine holding s.
func NewEngine(s *Set) *Engine {
	e := &Engine{}
	e.set.Store(s)
	return e
}

// Store puts s in force for every later decision.
func (e *Engine) Store(s *Set) { e.set.Store(s) }

// Load returns the Set in force, nil if none.
func (e *Engine) Load() *Set { return e.set.Load() }

// Decide decides in with the Set in force.
func (e *Engine) Decide(ctx context.Context, in *Input) Decision {
	return e.set.Load().Decide(ctx, in)
}

// Filter filters targets with the Set in force.
func (e *Engine) Filter(ctx context.Context, in *Input, targets []Target) []bool {
	return e.set.Load().Filter(ctx, in, targets)
}
