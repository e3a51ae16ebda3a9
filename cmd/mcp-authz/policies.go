package main

import (
	"sync"

	"github.com/mcp-authz/mcp-authz/config"
	"github.com/mcp-authz/mcp-authz/policy"
)

// policies composes the file's policies and the cluster's (MCPAuthPolicy)
// into one set for the engine. Either side may change on its own; a set that
// does not compile keeps the previous one in force.
type policies struct {
	engine *policy.Engine

	mu      sync.Mutex
	file    policy.Config
	cluster []policy.Policy
}

func newPolicies(f *config.File) (*policies, error) {
	p := &policies{engine: policy.NewEngine(nil)}
	return p, p.SetFile(f)
}

// SetFile takes the policies of a (re)loaded configuration file.
func (p *policies) SetFile(f *config.File) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := policy.Config{Policies: f.Policies, Default: f.DefaultPolicy, BaseDir: f.Dir}
	if err := p.store(c, p.cluster); err != nil {
		return err
	}
	p.file = c
	return nil
}

// SetPolicies takes the cluster's policies (kube.PolicySink).
func (p *policies) SetPolicies(ps []policy.Policy) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.store(p.file, ps); err != nil {
		return err
	}
	p.cluster = ps
	return nil
}

func (p *policies) store(file policy.Config, cluster []policy.Policy) error {
	c := file
	c.Policies = append(append([]policy.Policy(nil), file.Policies...), cluster...)
	set, err := policy.Compile(c)
	if err != nil {
		return err
	}
	p.engine.Store(set)
	return nil
}
