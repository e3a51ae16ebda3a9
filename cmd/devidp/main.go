// Command devidp serves a Keycloak-shaped OpenID provider for development and tests only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/devidp"
)

const usage = `devidp: a Keycloak-shaped OpenID provider for DEVELOPMENT AND TESTS ONLY.
Users and secrets come in clear from the realm file; never let it guard anything real.

Usage:
  devidp [--config dev/realm.yaml] [--listen 127.0.0.1:8180] [--token-lifetime 300s]

Endpoints (realm R): /realms/R/.well-known/openid-configuration,
/realms/R/protocol/openid-connect/{token,certs,userinfo};
POST /admin/realms/R/rotate-keys (loopback) or SIGHUP rotates the signing key.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run serves until ctx ends and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	config := fs.String("config", "dev/realm.yaml", "realm file (YAML)")
	listen := fs.String("listen", "127.0.0.1:8180", "loopback address to listen on")
	lifetime := fs.Duration("token-lifetime", 0, "access token lifetime (0: the realm file's, else 300s)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, *config, *listen, *lifetime, log, stdout); err != nil {
		log.Error("devidp stopped", "error", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, config, listen string, lifetime time.Duration, log *slog.Logger, stdout io.Writer) error {
	host, _, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: a dev provider listens on a loopback IP only", listen)
	}
	cfg, err := devidp.LoadConfig(config)
	if err != nil {
		return err
	}
	if lifetime != 0 {
		cfg.TokenLifetime = lifetime
	}
	p, ln, err := devidp.Listen(cfg, listen)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Info("devidp serving (development and tests only)", "issuer", p.Issuer(), "config", config)
	fmt.Fprintf(stdout, `Get a token (users and passwords are in %s, e.g. alice/alice):
  curl -s %s -d grant_type=password -d client_id=mcp-cli -d username=alice -d password=alice
`, config, p.TokenURL())

	for {
		select {
		case <-hup:
			if err := p.RotateKeys(); err != nil {
				log.Error("key rotation failed", "error", err)
			} else {
				log.Info("signing key rotated (SIGHUP)")
			}
		case err := <-done:
			return err
		case <-ctx.Done():
			shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			log.Info("devidp shutting down")
			return srv.Shutdown(shutdown)
		}
	}
}
