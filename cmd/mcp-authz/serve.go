package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/envoy"
	"github.com/mcp-authz/mcp-authz/config"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/front"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router"
)

// starter is a long-running part: it runs until ctx ends.
type starter interface {
	Start(ctx context.Context) error
}

// startFunc is a part made of a function.
type startFunc func(ctx context.Context) error

func (f startFunc) Start(ctx context.Context) error { return f(ctx) }

func serveCommand() *cobra.Command {
	var cfgPath, pprofAddr string
	c := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run what the configuration enables (authz, gateway, router, metrics) until stopped",
		Long: `Run every part the configuration enables (authz, gateway, router, metrics,
kubernetes) until SIGINT or SIGTERM. Servers and policies reload when the file
(or a policy file it names) changes. Logs go to standard error.

Exit codes: 0 stopped by a signal; 2 a bad command line or configuration, or a
part that failed.`,
		Example: `  mcp-authz serve --config dev/mcp-authz.yaml`,
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "config"); err != nil {
				return err
			}
			return serve(cmd.Context(), cfgPath, pprofAddr, cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "configuration `FILE`")
	c.Flags().StringVar(&pprofAddr, "pprof", "", "serve Go's runtime profiles (/debug/pprof/) on this loopback `ADDR` (127.0.0.1:6060); off by default")
	return c
}

// serve runs every part the configuration enables until ctx ends, and the
// runtime profiles on pprofAddr unless it is "".
func serve(ctx context.Context, cfgPath, pprofAddr string, stderr io.Writer) error {
	if pprofAddr != "" {
		if err := loopbackAddr(pprofAddr); err != nil {
			return err
		}
	}
	f, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(f.Log, stderr)
	parts, err := build(ctx, f, cfgPath, log, newMetricsRegistry())
	if err != nil {
		return err
	}
	if pprofAddr != "" {
		parts = append(parts, pprofServer(pprofAddr, log.With("part", "pprof")))
	}
	log.Info("mcp-authz starting", "version", versionString(), "config", cfgPath)
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error { return p.Start(ctx) })
	}
	err = g.Wait()
	log.Info("mcp-authz stopped")
	return err
}

// build constructs the parts of one process from its configuration; they
// register their collectors with metrics.
func build(ctx context.Context, f *config.File, path string, log *slog.Logger, metrics *prometheus.Registry) ([]starter, error) {
	if f.Authz == nil && f.Gateway == nil && f.Router == nil {
		return nil, errors.New("serve: nothing to serve: the configuration enables none of authz, gateway and router")
	}

	snap, err := f.Snapshot()
	if err != nil {
		return nil, err
	}
	reg := &registry.Registry{}
	reg.Store(snap)
	pols, err := newPolicies(f)
	if err != nil {
		return nil, err
	}
	engine := pols.engine

	tp, flush, err := newTracing(ctx, f)
	if err != nil {
		return nil, err
	}
	httpClient := &http.Client{Timeout: 10 * time.Second}
	traceHTTP(httpClient, tp)
	deps := authz.Deps{Registry: reg, Policy: engine, Logger: log.With("part", "authz"), Metrics: metrics, Tracer: tp}
	var verifier *identity.Verifier
	if f.Identity != nil {
		if verifier, err = identity.New(*f.Identity, identity.Deps{HTTPClient: httpClient}); err != nil {
			return nil, err
		}
		deps.Verifier = verifier
	}
	if f.Exchange != nil {
		if verifier == nil {
			return nil, errors.New("config: exchange needs identity: the exchanged token is validated against its issuer")
		}
		if deps.Exchanger, err = exchange.New(*f.Exchange, exchange.Deps{HTTPClient: httpClient, Verifier: verifier}); err != nil {
			return nil, err
		}
	}
	key, err := assertionKey(f)
	if err != nil {
		return nil, err
	}
	if f.Authz != nil && key != nil {
		deps.Signer = assertion.NewSigner(key)
	}
	var trail *audit.Writer
	if f.Audit == nil {
		metrics.MustRegister(audit.DroppedCounter())
	}
	if f.Audit != nil {
		if trail, err = audit.New(*f.Audit, audit.Deps{Logger: log.With("part", "audit"), Metrics: metrics}); err != nil {
			return nil, err
		}
		deps.Audit = trail
	}
	var authzCfg authz.Config
	if f.Authz != nil {
		authzCfg = *f.Authz
	}
	az, err := authz.New(authzCfg, deps)
	if err != nil {
		return nil, err
	}
	ext := envoy.New(envoy.Config{Listen: authzCfg.Listen, Logger: deps.Logger}, az)

	parts := []starter{watcher(f, path, reg, pols, metrics, log.With("part", "config"))}
	if trail != nil {
		parts = append(parts, trail)
	}
	if flush != nil {
		parts = append(parts, flush)
	}
	ready := func() bool { return true }
	if f.Kubernetes != nil {
		src, err := kubeSource(f.Kubernetes, f.Exchange, reg, pols, log.With("part", "kubernetes"))
		if err != nil {
			return nil, err
		}
		parts = append(parts, src)
		ready = src.Ready
	}
	if f.Authz != nil {
		parts = append(parts, ext)
	}
	var rt *router.Router
	if f.Router != nil {
		rd := router.Deps{Registry: reg, Authorizer: az, Tracer: tp, Audit: trail, Logger: log.With("part", "router")}
		if key != nil && f.Router.AssertionKeyFile == "" {
			rd.AssertionKey = key
		}
		if rt, err = router.New(*f.Router, rd); err != nil {
			return nil, err
		}
		metrics.MustRegister(rt)
		parts = append(parts, rt)
	}
	if f.Gateway != nil {
		fr, closeFront, err := newFront(f, authzCfg, az, rt, tp, log.With("part", "front"))
		if err != nil {
			return nil, err
		}
		parts = append(parts, startFunc(func(ctx context.Context) error {
			defer closeFront()
			return fr.Start(ctx)
		}))
	}
	if f.Metrics != nil {
		parts = append(parts, metricsServer(f.Metrics.Listen, metrics, ready, log))
	}
	return parts, nil
}

// newFront builds the built-in front. When authz runs in this process and
// the front names no other address for it, the front calls it in process;
// otherwise over gRPC, as Envoy does. When the router (rt, else nil) runs in
// this process and the front's upstream is its listen address, the front
// hands it the allowed requests in process; otherwise over HTTP. release
// closes the gRPC connection.
func newFront(f *config.File, authzCfg authz.Config, az *authz.Server, rt *router.Router, tp trace.TracerProvider, log *slog.Logger) (fr *front.Front, release func(), err error) {
	gc := *f.Gateway
	d := front.Deps{Tracer: tp, Logger: log}
	if rt != nil && servesRouter(gc.Upstream, f.Router.Listen) {
		log.Info("front forwards to the router in process", "router", gc.Upstream)
		d.Upstream = rt.Handler()
	}
	addr := f.Gateway.Authz
	if f.Authz != nil {
		listen := cmp.Or(authzCfg.Listen, "127.0.0.1:9001")
		if addr == "" || addr == listen {
			log.Info("front calls authz in process", "authz", listen)
			d.Authz = az
			fr, err := front.New(gc, d)
			return fr, func() {}, err
		}
	}
	addr = cmp.Or(addr, authzCfg.Listen, front.DefaultAuthz)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("front: authz %s: %w", addr, err)
	}
	d.Checker = front.GRPC(authv3.NewAuthorizationClient(conn))
	fr, err = front.New(gc, d)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return fr, func() { _ = conn.Close() }, nil
}

// servesRouter reports whether the front's upstream URL is the router's
// listen address (routerListen, "" for its default) with no path: what the
// front then sends over loopback HTTP, it can hand the router in process.
func servesRouter(upstream, routerListen string) bool {
	u, err := url.Parse(upstream)
	return err == nil && u.Scheme == "http" && u.User == nil && u.RawQuery == "" &&
		(u.Path == "" || u.Path == "/") && u.Host == cmp.Or(routerListen, "127.0.0.1:8081")
}

// watcher reloads the servers and policies of the configuration at path,
// loaded as f, into reg and pols. With Kubernetes on, the cluster owns the
// registry and only the file's policies reload.
func watcher(f *config.File, path string, reg *registry.Registry, pols *policies, metrics prometheus.Registerer, log *slog.Logger) starter {
	errs := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mcp_authz_config_reload_errors_total",
		Help: "Configuration reloads refused; the previous configuration stayed in force.",
	})
	ok := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mcp_authz_config_last_reload_successful",
		Help: "Whether the last configuration reload was applied (1) or refused (0).",
	})
	ok.Set(1)
	metrics.MustRegister(errs, ok)
	return &config.Watcher{
		Path: path,
		Apply: func(nf *config.File) error {
			snap, err := nf.Snapshot()
			if err != nil {
				return err
			}
			if err := pols.SetFile(nf); err != nil {
				return err
			}
			if f.Kubernetes == nil {
				reg.Store(snap)
			}
			ok.Set(1)
			if s := f.Unreloaded(nf); len(s) > 0 {
				log.Warn("config changes that take effect on restart", "sections", s)
			}
			return nil
		},
		OnError: func(error) {
			errs.Inc()
			ok.Set(0)
		},
		Logger: log,
		Loaded: f,
	}
}

// assertionKey is the key that binds authz to the router: from a file when
// they run apart, generated when both run in this process.
func assertionKey(f *config.File) (assertion.Key, error) {
	path := ""
	if f.Authz != nil && f.Authz.AssertionKeyFile != "" {
		path = f.Authz.AssertionKeyFile
	}
	if path != "" {
		return assertion.LoadKey(path)
	}
	if f.Authz != nil && f.Router != nil {
		return assertion.GenerateKey()
	}
	return nil, nil
}

// metricsServer serves /metrics and the probes; /readyz answers 503 until
// ready says so (the cluster's registrations are in).
func metricsServer(addr string, g prometheus.Gatherer, ready func() bool, log *slog.Logger) starter {
	if addr == "" {
		addr = "127.0.0.1:9090"
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "not ready: waiting for the cluster's registrations", http.StatusServiceUnavailable)
			return
		}
		ok(w, r)
	})
	return httpServer{srv: &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}, log: log, name: "metrics"}
}

// httpServer runs an http.Server as a part.
type httpServer struct {
	srv  *http.Server
	log  *slog.Logger
	name string // the part, in its log lines and errors
}

func (h httpServer) Start(ctx context.Context) error {
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", h.srv.Addr)
	if err != nil {
		return fmt.Errorf("%s: listen: %w", h.name, err)
	}
	h.log.Info(h.name+" listening", "addr", lis.Addr().String())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(sctx)
	}()
	if err := h.srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
