// Command noopauthz is the baseline of make bench: an ext_authz gRPC server
// that answers OK to every Check without looking at it, with the same gRPC
// stack (reflection included) as mcp-authz. Dev and benchmark use only.
package main

import (
	"context"
	"flag"
	"log"
	"net"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
)

type noop struct {
	authv3.UnimplementedAuthorizationServer
}

func (noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
	}, nil
}

func main() {
	addr := flag.String("listen", "127.0.0.1:9101", "gRPC `address`")
	flag.Parse()
	lis, err := new(net.ListenConfig).Listen(context.Background(), "tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	g := grpc.NewServer()
	authv3.RegisterAuthorizationServer(g, noop{})
	reflection.Register(g)
	log.Fatal(g.Serve(lis))
}
