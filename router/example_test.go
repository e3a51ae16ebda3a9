package router_test

import (
	"log/slog"
	"net/http"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router"
)

// A router behind authz in one process: authz signs with the key, the
// router verifies it; every request to /mcp must carry authz's assertion.
func Example() {
	key, err := assertion.GenerateKey()
	if err != nil {
		panic(err)
	}
	reg := &registry.Registry{}
	snap, err := registry.NewSnapshot([]registry.Server{
		{Name: "mcp-test/kubernetes-mcp", Prefix: "kube_", URL: "http://127.0.0.1:8089/mcp"},
	})
	if err != nil {
		panic(err)
	}
	reg.Store(snap)
	r, err := router.New(router.Config{}, router.Deps{Registry: reg, AssertionKey: key, Logger: slog.Default()})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	http.Handle("/mcp", r.Handler())
}
