// Command mcp-authz secures MCP servers behind Envoy: an ext_authz server,
// a built-in front and an aggregating MCP router in one binary.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `mcp-authz: authorization for MCP servers behind Envoy / Istio.

Usage:
  mcp-authz serve --config FILE              run what the configuration enables
  mcp-authz config check FILE                check a configuration; every error with its line
  mcp-authz policy eval --config FILE --input INPUT.json
                                             print the decision for one input document
  mcp-authz policy test DIR                  run Rego tests and CEL cases in DIR
  mcp-authz version                          print the version
`

// version is set at build time (-ldflags "-X main.version=...").
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; {
	case cmd == "serve":
		err = serve(ctx, rest, stderr)
	case cmd == "config" && len(rest) > 0 && rest[0] == "check":
		err = configCheck(rest[1:], stdout, stderr)
	case cmd == "policy" && len(rest) > 0 && rest[0] == "eval":
		err = policyEval(ctx, rest[1:], stdout, stderr)
	case cmd == "policy" && len(rest) > 0 && rest[0] == "test":
		err = policyTest(ctx, rest[1:], stdout)
	case cmd == "metrics": // not in usage: for make monitoring-check and the curious
		err = metricsList(ctx, rest, stdout, stderr)
	case cmd == "version":
		fmt.Fprintln(stdout, "mcp-authz", versionString())
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "mcp-authz: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcp-authz:", err)
		return 1
	}
	return 0
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}
