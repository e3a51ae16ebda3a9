// Package kube feeds the registry and the policy set from MCPServerRegistration, HTTPRoute, Service and MCPAuthPolicy resources.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	authzv1alpha1 "github.com/mcp-authz/mcp-authz/api/authz/v1alpha1"
	mcpv1 "github.com/mcp-authz/mcp-authz/api/v1"
	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
)

// Config configures a Source. The zero value watches every namespace, reaches
// servers through their Services and writes status under leader election in the
// namespace the pod runs in.
type Config struct {
	// Namespaces limits the watch to these namespaces; empty means all.
	Namespaces []string `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	// ClusterDomain is the cluster's DNS domain for Service URLs; "" means cluster.local.
	ClusterDomain string `yaml:"clusterDomain,omitempty" json:"clusterDomain,omitempty"`
	// GatewayPort, when non-zero, sends upstream calls through the gateway rather
	// than straight to the Service: a server's URL becomes
	// GatewayScheme://<the route's first exact hostname>:GatewayPort<path>.
	GatewayPort int `yaml:"gatewayPort,omitempty" json:"gatewayPort,omitempty"`
	// GatewayScheme is "http" (when "") or "https"; used only with GatewayPort.
	GatewayScheme string `yaml:"gatewayScheme,omitempty" json:"gatewayScheme,omitempty"`
	// AttachHostnames sets each server's Hostname to its route's first exact
	// hostname, so that requests for that host go to that server (per-route
	// attachment). Two registrations whose routes share a hostname conflict.
	AttachHostnames bool `yaml:"attachHostnames,omitempty" json:"attachHostnames,omitempty"`
	// AllowExternalNameServices lets a route's backendRef be a Service of type
	// ExternalName, whose externalName anyone who may edit the Service can point at
	// any host. Off (the default), such registrations are refused
	// (ExternalNameNotAllowed); an Istio Hostname backendRef names an external
	// server explicitly instead.
	AllowExternalNameServices bool `yaml:"allowExternalNameServices,omitempty" json:"allowExternalNameServices,omitempty"`
	// LeaderElectionNamespace holds the status writer's Lease; "" means the pod's
	// namespace (which only exists in a cluster).
	LeaderElectionNamespace string `yaml:"leaderElectionNamespace,omitempty" json:"leaderElectionNamespace,omitempty"`
	// LeaderElectionID names the Lease; "" means mcp-authz.authz.mcp-authz.dev.
	LeaderElectionID string `yaml:"leaderElectionID,omitempty" json:"leaderElectionID,omitempty"`
	// RetryInterval is the wait before reconnecting after the API server could not
	// be reached or the watch stopped; 0 means 5s.
	RetryInterval time.Duration `yaml:"retryInterval,omitempty" json:"retryInterval,omitempty"`
	// Profiles are the names of the exchange profiles mcp-authz defines
	// (exchange.profiles), which an MCPAuthPolicy's tokenExchange.profile may name;
	// set by the process from its exchange configuration. Empty: a policy naming a
	// profile is refused.
	Profiles []string `yaml:"-" json:"-"`
}

// Deps are the Source's runtime dependencies: what a configuration file
// cannot say.
type Deps struct {
	// RestConfig reaches the API server. Required.
	RestConfig *rest.Config
	// Registry receives the snapshots. Required.
	Registry *registry.Registry
	// Policies receives the policies; nil: policy resources only affect
	// audiences.
	Policies PolicySink
	// Logger receives the controllers' logs; nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c, each an *field.Error whose path is
// the field's YAML key ("gatewayPort").
func (c Config) Validate() error {
	var errs []error
	if c.GatewayScheme != "" && c.GatewayScheme != "http" && c.GatewayScheme != "https" {
		errs = append(errs, field.Errorf("gatewayScheme", "%q: want http or https", c.GatewayScheme))
	}
	if c.GatewayPort < 0 || c.GatewayPort > 65535 {
		errs = append(errs, field.Errorf("gatewayPort", "%d: want 1-65535, or 0 for none", c.GatewayPort))
	}
	return errors.Join(errs...)
}

// PolicySink receives the policies built from MCPAuthPolicy resources each time
// they change. It compiles them as a set and keeps its previous set on error.
type PolicySink interface {
	SetPolicies(ps []policy.Policy) error
}

// Source keeps a registry and a policy sink in step with the cluster. Every
// replica builds its own snapshot; only the leader writes status.
type Source struct {
	cfg    Config
	rest   *rest.Config
	reg    *registry.Registry
	sink   PolicySink
	log    *slog.Logger
	scheme *runtime.Scheme
	ready  atomic.Bool

	// mu guards the last servers and policies handed on, and the compile cache.
	mu           sync.Mutex
	lastServers  []registry.Server
	lastPolicies []policy.Policy
	pushed       bool
	compiledByID map[types.UID]*compiledPolicy
}

// compiledPolicy caches the outcome of compiling one policy resource's rules.
type compiledPolicy struct {
	generation int64
	err        error           // the current generation's compile error
	good       []policy.Policy // the rules of the last generation that compiled
}

// New returns a Source that stores snapshots into d.Registry and policies
// into d.Policies. Nothing is contacted, and nothing started, before Start.
func New(c Config, d Deps) (*Source, error) {
	rc, reg, sink := d.RestConfig, d.Registry, d.Policies
	if rc == nil || reg == nil {
		return nil, errors.New("kube: new: a rest config and a registry are required")
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("kube: new: %w", err)
	}
	sc, err := Scheme()
	if err != nil {
		return nil, err
	}
	s := &Source{
		cfg: c, rest: rc, reg: reg, sink: sink, scheme: sc,
		log:          d.Logger,
		compiledByID: map[types.UID]*compiledPolicy{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Scheme returns a scheme with every type the Source reads.
func Scheme() (*runtime.Scheme, error) {
	sc := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, gwv1.Install, gwv1beta1.Install, mcpv1.AddToScheme, authzv1alpha1.AddToScheme,
	} {
		if err := add(sc); err != nil {
			return nil, fmt.Errorf("kube: scheme: %w", err)
		}
	}
	return sc, nil
}

// Ready reports whether a snapshot has been built from the cluster since Start.
func (s *Source) Ready() bool { return s.ready.Load() }

// Start watches the cluster until ctx ends. If the API server cannot be reached,
// or the watch or the leader election fails, it retries after RetryInterval;
// meanwhile the registry keeps serving the snapshot it last had (the one stored
// before Start, e.g. from a file, until the cluster has been read).
func (s *Source) Start(ctx context.Context) error {
	retry := s.cfg.RetryInterval
	if retry <= 0 {
		retry = 5 * time.Second
	}
	for ctx.Err() == nil {
		if err := s.run(ctx); ctx.Err() == nil {
			s.log.Warn("kube: watch stopped; retrying", "error", err, "in", retry)
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
	return nil
}

// run builds a manager with the two controllers and runs it until it fails or
// ctx ends.
func (s *Source) run(ctx context.Context) error {
	opts := manager.Options{
		Scheme:                        s.scheme,
		Logger:                        logr.FromSlogHandler(s.log.Handler()),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              s.cfg.LeaderElectionID,
		LeaderElectionNamespace:       s.cfg.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	}
	if opts.LeaderElectionID == "" {
		opts.LeaderElectionID = "mcp-authz.authz.mcp-authz.dev"
	}
	// Only the Secrets labelled for registrations are read and cached, never others.
	opts.Cache.ByObject = map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Label: labels.SelectorFromSet(labels.Set{SecretLabel: "true"})},
	}
	if len(s.cfg.Namespaces) > 0 {
		opts.Cache.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range s.cfg.Namespaces {
			opts.Cache.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := ctrl.NewManager(s.rest, opts)
	if err != nil {
		return fmt.Errorf("kube: manager: %w", err)
	}
	// Every event, whatever its object, means "rebuild": one fixed request that
	// the work queue coalesces.
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "all"}}}
	})
	watch := func(name string, needLeader bool, r reconcile.Reconciler) error {
		return ctrl.NewControllerManagedBy(mgr).
			Named(name).
			Watches(&mcpv1.MCPServerRegistration{}, all).
			Watches(&gwv1.HTTPRoute{}, all).
			Watches(&corev1.Service{}, all).
			Watches(&corev1.Secret{}, all).
			Watches(&gwv1beta1.ReferenceGrant{}, all).
			Watches(&authzv1alpha1.MCPAuthPolicy{}, all).
			WithOptions(controller.Options{
				NeedLeaderElection: ptr.To(needLeader),
				SkipNameValidation: ptr.To(true), // a new manager per attempt
			}).
			Complete(r)
	}
	// The snapshot builder runs on every replica; the status writer on the leader.
	if err := watch("mcp-authz-snapshot", false, reconcile.Func(s.build(mgr.GetClient()))); err != nil {
		return fmt.Errorf("kube: controller: %w", err)
	}
	if err := watch("mcp-authz-status", true, reconcile.Func(s.writeStatus(mgr.GetClient()))); err != nil {
		return fmt.Errorf("kube: controller: %w", err)
	}
	return mgr.Start(ctx)
}

// read lists every input from the cache.
func (s *Source) read(ctx context.Context, c client.Reader) (*inputs, error) {
	var (
		regs   mcpv1.MCPServerRegistrationList
		routes gwv1.HTTPRouteList
		svcs   corev1.ServiceList
		secs   corev1.SecretList
		grants gwv1beta1.ReferenceGrantList
		pols   authzv1alpha1.MCPAuthPolicyList
	)
	for _, l := range []client.ObjectList{&regs, &routes, &svcs, &secs, &grants, &pols} {
		if err := c.List(ctx, l); err != nil {
			return nil, fmt.Errorf("kube: list: %w", err)
		}
	}
	in := &inputs{
		registrations: regs.Items,
		policies:      pols.Items,
		routes:        make(map[types.NamespacedName]*gwv1.HTTPRoute, len(routes.Items)),
		services:      make(map[types.NamespacedName]*corev1.Service, len(svcs.Items)),
		secrets:       make(map[types.NamespacedName]*corev1.Secret, len(secs.Items)),
		grants:        grants.Items,
	}
	for i := range secs.Items {
		sec := &secs.Items[i]
		// The cache holds only labelled Secrets; check again rather than trust it.
		if sec.Labels[SecretLabel] == "true" {
			in.secrets[types.NamespacedName{Namespace: sec.Namespace, Name: sec.Name}] = sec
		}
	}
	for i := range routes.Items {
		r := &routes.Items[i]
		in.routes[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}] = r
	}
	for i := range svcs.Items {
		sv := &svcs.Items[i]
		in.services[types.NamespacedName{Namespace: sv.Namespace, Name: sv.Name}] = sv
	}
	return in, nil
}

// build returns the snapshot builder's reconcile function: compute the whole
// view from the cache and hand on what changed.
func (s *Source) build(c client.Reader) func(context.Context, reconcile.Request) (reconcile.Result, error) {
	return func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
		in, err := s.read(ctx, c)
		if err != nil {
			return reconcile.Result{}, err
		}
		v := s.compute(in)
		snap, err := registry.NewSnapshot(v.servers)
		if err != nil {
			// compute admits only servers that pass together; keep the last snapshot.
			s.log.Error("kube: snapshot rejected; keeping the last one", "error", err)
			return reconcile.Result{}, nil
		}

		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.ready.Load() || !reflect.DeepEqual(v.servers, s.lastServers) {
			s.reg.Store(snap)
			s.lastServers = v.servers
			s.log.Info("kube: registry updated", "servers", len(v.servers))
		}
		if s.sink != nil && (!s.pushed || !reflect.DeepEqual(v.policies, s.lastPolicies)) {
			if err := s.sink.SetPolicies(v.policies); err != nil {
				s.log.Error("kube: policy set rejected; the previous set stays", "error", err)
			} else {
				s.lastPolicies, s.pushed = v.policies, true
			}
		}
		s.ready.Store(true)
		return reconcile.Result{}, nil
	}
}

// compiled returns the rules of a policy resource as policies (without
// servers). When its current generation does not compile, it returns the last
// generation that did (nil if none) with the error.
func (s *Source) compiled(p *authzv1alpha1.MCPAuthPolicy) ([]policy.Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := s.compiledByID[p.UID]
	if cp != nil && cp.generation == p.Generation {
		return cp.good, cp.err
	}
	rules := make([]policy.Policy, 0, len(p.Spec.Rules))
	for _, r := range p.Spec.Rules {
		rules = append(rules, policy.Policy{
			Name: p.Namespace + "/" + p.Name + "/" + r.Name,
			CEL:  r.CEL,
			Rego: r.Rego,
		})
	}
	if cp == nil {
		cp = &compiledPolicy{}
		s.compiledByID[p.UID] = cp
	}
	cp.generation = p.Generation
	if _, err := policy.Compile(policy.Config{Policies: rules}); err != nil {
		cp.err = fmt.Errorf("rules do not compile: %w", err)
	} else {
		cp.err, cp.good = nil, rules
	}
	return cp.good, cp.err
}
