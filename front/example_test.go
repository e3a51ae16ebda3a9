package front_test

import (
	"context"
	"log"
	"log/slog"
	"os/signal"
	"syscall"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/front"
)

// The front needs an ext_authz client; dialling is the caller's job, so
// tests and the binary can each bring their own connection.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	conn, err := grpc.NewClient("127.0.0.1:9001", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	g, err := front.New(front.Config{
		Upstream: "http://127.0.0.1:8081",
		ResourceMetadata: &front.ResourceMetadata{
			Resource:             "http://127.0.0.1:8080/mcp",
			AuthorizationServers: []string{"http://127.0.0.1:8180/realms/mcp"},
		},
	}, front.Deps{Checker: front.GRPC(authv3.NewAuthorizationClient(conn)), Logger: slog.Default()})
	if err != nil {
		log.Fatal(err)
	}
	if err := g.Start(ctx); err != nil { // until SIGTERM
		log.Fatal(err)
	}
}
