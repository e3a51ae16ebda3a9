package main

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/mcp-authz/mcp-authz/config"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/kube"
	"github.com/mcp-authz/mcp-authz/registry"
)

// kubeSource is the controller that feeds reg and pols from the cluster;
// MCPAuthPolicies may name the profiles x defines.
func kubeSource(k *config.Kubernetes, x *exchange.Config, reg *registry.Registry, pols *policies, log *slog.Logger) (*kube.Source, error) {
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	var rc *rest.Config
	var err error
	if k.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	} else {
		rc, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	c := k.Config
	if x != nil {
		c.Profiles = slices.Sorted(maps.Keys(x.Profiles))
	}
	return kube.New(c, kube.Deps{RestConfig: rc, Registry: reg, Policies: pols, Logger: log})
}
