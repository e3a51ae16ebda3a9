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
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/devidp"
	"github.com/mcp-authz/mcp-authz/internal/devidp/realms"
)

const usage = `devidp: a Keycloak-shaped OpenID provider for DEVELOPMENT AND TESTS ONLY.
Users and secrets come in clear from the realm files; never let it guard anything real.

Usage:
  devidp [--config dev/realm.yaml]... [--listen 127.0.0.1:8180] [--token-lifetime 1h]
         [--keys FILE] [--tls [--ca-out FILE] | --tls-cert FILE --tls-key FILE]

Each --config is one realm; all are served on one listener, as one Keycloak
serves several realms (dev/realm-a.yaml and dev/realm-b.yaml trust each other).
Endpoints (realm R): /realms/R/.well-known/openid-configuration,
/realms/R/protocol/openid-connect/{token,certs,userinfo};
POST /admin/realms/R/rotate-keys (loopback) or SIGHUP rotates every realm's signing key.

Flags:
`

// configs is a repeatable --config flag.
type configs []string

func (c *configs) String() string     { return strings.Join(*c, ",") }
func (c *configs) Set(v string) error { *c = append(*c, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// flags are the command line, parsed.
type flags struct {
	configs                configs
	listen, keys           string
	lifetime               time.Duration
	tls                    bool
	tlsCert, tlsKey, caOut string
}

// run serves until ctx ends and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f flags
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.Var(&f.configs, "config", "realm file (YAML), repeatable (default dev/realm.yaml)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8180", "loopback address to listen on")
	fs.DurationVar(&f.lifetime, "token-lifetime", 0, "access token lifetime of every realm (0: each realm file's, else 300s)")
	fs.StringVar(&f.keys, "keys", "", "file keeping the signing keys across restarts (JSON, mode 0600, private keys in clear; created when missing)")
	fs.BoolVar(&f.tls, "tls", false, "serve HTTPS with a certificate from a test CA made at start")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM key of --tls-cert")
	fs.StringVar(&f.caOut, "ca-out", "", "with HTTPS, write the CA certificate clients must trust (PEM) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(f.configs) == 0 {
		f.configs = configs{"dev/realm.yaml"}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(ctx, f, log, stdout); err != nil {
		log.Error("devidp stopped", "error", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, f flags, log *slog.Logger, stdout io.Writer) error {
	host, _, err := net.SplitHostPort(f.listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--listen %q: a dev provider listens on a loopback IP only", f.listen)
	}
	cfg := realms.Config{KeysFile: f.keys}
	switch {
	case f.tls && (f.tlsCert != "" || f.tlsKey != ""):
		return errors.New("--tls makes its own certificate: leave out --tls-cert and --tls-key")
	case f.tls || f.tlsCert != "" || f.tlsKey != "":
		cfg.TLS = &realms.TLSConfig{CertFile: f.tlsCert, KeyFile: f.tlsKey, CAFile: f.caOut}
	case f.caOut != "":
		return errors.New("--ca-out needs --tls or --tls-cert")
	}
	for _, path := range f.configs {
		rc, err := devidp.LoadConfig(path)
		if err != nil {
			return err
		}
		if f.lifetime != 0 {
			rc.TokenLifetime = f.lifetime
		}
		cfg.Realms = append(cfg.Realms, rc)
	}
	s, err := realms.New(cfg, f.listen)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	for _, p := range s.Realms() {
		log.Info("devidp serving (development and tests only)", "issuer", p.Issuer())
	}
	if f.caOut != "" {
		log.Info("clients must trust the CA", "caFile", f.caOut)
	}
	curl := "curl -s"
	if cfg.TLS != nil && f.caOut != "" {
		curl += " --cacert " + f.caOut
	}
	fmt.Fprintf(stdout, `Get a token (users and passwords are in %s, e.g. alice/alice):
  %s %s -d grant_type=password -d client_id=mcp-cli -d username=alice -d password=alice
`, strings.Join(f.configs, ", "), curl, s.Realms()[0].TokenURL())

	for {
		select {
		case <-hup:
			for _, p := range s.Realms() {
				if err := p.RotateKeys(); err != nil {
					log.Error("key rotation failed", "issuer", p.Issuer(), "error", err)
				}
			}
			log.Info("signing keys rotated (SIGHUP)")
		case err := <-done:
			log.Info("devidp shut down")
			return err
		}
	}
}
