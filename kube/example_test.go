package kube_test

import (
	"context"
	"log"
	"log/slog"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/mcp-authz/mcp-authz/kube"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// engineSink hands each policy set to a policy.Engine, keeping the previous
// set when the new one does not compile.
type engineSink struct{ engine *policy.Engine }

func (s engineSink) SetPolicies(ps []policy.Policy) error {
	set, err := policy.Compile(policy.Config{Policies: ps})
	if err != nil {
		return err
	}
	s.engine.Store(set)
	return nil
}

// Example wires a Source the way the mcp-authz binary does in a cluster: the
// registry starts from the file snapshot and follows the cluster once it is
// reached; policies go to the engine authz decides with.
func Example() {
	var reg registry.Registry
	// reg.Store(fileSnapshot) here, to serve until the API server answers.
	engine := policy.NewEngine(nil)

	rc, err := ctrl.GetConfig() // in-cluster, or $KUBECONFIG
	if err != nil {
		log.Fatal(err)
	}
	src, err := kube.New(kube.Config{}, kube.Deps{RestConfig: rc, Registry: &reg, Policies: engineSink{engine}, Logger: slog.Default()})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = src.Start(ctx) }() // runs until ctx ends; retries on its own
}
