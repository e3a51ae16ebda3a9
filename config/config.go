// Package config reads, checks and watches the mcp-authz configuration file.
package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/front"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/audit"
	"github.com/mcp-authz/mcp-authz/internal/field"
	"github.com/mcp-authz/mcp-authz/internal/tracing"
	"github.com/mcp-authz/mcp-authz/kube"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router"
)

// File is the configuration file. A section left out turns its part off
// (an empty one, such as "authz: {}", runs it with its defaults): no gateway
// means Envoy is the front, no identity admits anonymous callers, no
// exchange passes tokens through unchanged. Load and Parse resolve the key
// and secret files the sections name against Dir.
type File struct {
	// Authz is the ext_authz gRPC server.
	Authz *authz.Config `yaml:"authz,omitempty" json:"authz,omitempty"`
	// Gateway is the built-in front that stands in for Envoy (package
	// front). The key stays "gateway", the documented contract shared by
	// the docs, examples, Helm values and tests; there is no second
	// spelling of it.
	Gateway *front.Config `yaml:"gateway,omitempty" json:"gateway,omitempty"`
	// Router is the aggregating MCP endpoint.
	Router *router.Config `yaml:"router,omitempty" json:"router,omitempty"`
	// Metrics serves Prometheus metrics and health probes.
	Metrics *Metrics `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	// Log configures the process log.
	Log Log `yaml:"log" json:"log"`
	// Audit writes the audit trail: one event per decision (authz) and per
	// upstream call (router). Omitted: no audit trail.
	Audit *audit.Config `yaml:"audit,omitempty" json:"audit,omitempty"`
	// Tracing exports OpenTelemetry spans over OTLP; absent, nothing is
	// traced.
	Tracing *tracing.Config `yaml:"tracing,omitempty" json:"tracing,omitempty"`
	// Identity validates callers' tokens.
	Identity *identity.Config `yaml:"identity,omitempty" json:"identity,omitempty"`
	// Exchange trades callers' tokens for per-server tokens (RFC 8693).
	Exchange *exchange.Config `yaml:"exchange,omitempty" json:"exchange,omitempty"`
	// Servers is the file registry. Reloaded when the file changes.
	Servers []registry.Server `yaml:"servers" json:"servers"`
	// Policies decide who may call which tool. Reloaded when the file, or a
	// policy file it names, changes.
	Policies []policy.Policy `yaml:"policies" json:"policies"`
	// DefaultPolicy applies to a server no policy names: "deny" (default) or
	// "allow".
	DefaultPolicy string `yaml:"defaultPolicy" json:"defaultPolicy"`
	// Kubernetes, when set, registers servers and policies from
	// MCPServerRegistration and MCPAuthPolicy resources. The file's servers
	// are served until the API server first answers; the file's policies
	// apply beside the cluster's.
	Kubernetes *Kubernetes `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty"`

	// Dir is the directory of the file; relative paths are taken from it.
	Dir string `yaml:"-" json:"-"`

	// sum is the digest of the file and its policy files as Load read them
	// (before compiling, so that a later change is never mistaken for this
	// version); zero from Parse.
	sum [32]byte
}

// Kubernetes configures the controller that watches the cluster.
type Kubernetes struct {
	kube.Config `yaml:",inline"`
	// Kubeconfig is a kubeconfig file; "" means in-cluster, else $KUBECONFIG.
	Kubeconfig string `yaml:"kubeconfig,omitempty" json:"kubeconfig,omitempty"`
}

// Metrics configures the metrics and probe listener.
type Metrics struct {
	// Listen is the address of /metrics, /healthz and /readyz.
	// Default 127.0.0.1:9090.
	Listen string `yaml:"listen" json:"listen"`
}

// Log configures the process log.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level" json:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format" json:"format"`
}

// Load reads and checks the file at path as Parse does. Its error is an
// *Error naming the file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	sum := digest(path, data)
	f, err := Parse(data, filepath.Dir(path))
	var e *Error
	if errors.As(err, &e) {
		e.File = path
	}
	if err != nil {
		return nil, err
	}
	f.sum = sum
	return f, nil
}

// Parse decodes and checks a configuration, taking relative paths from
// dir, so that a file that loads is a file that serves: unknown keys are
// errors, and every section is checked by its own Validate (which reaches
// no network but reads the key and secret files named, and compiles the
// policies). Its error is an *Error listing every problem, in the order of
// the file, each with its line and the path of its field.
func Parse(data []byte, dir string) (*File, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{Problems: []Problem{syntaxProblem(err, data)}}
	}
	var probs []Problem
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		probs = append(probs, Problem{Line: extra.Line, Err: errors.New("a second document: the configuration is one document")})
	}
	var f File
	decodeErr := root.Decode(&f)
	var typeErr *yaml.TypeError
	if decodeErr != nil && !errors.As(decodeErr, &typeErr) {
		// Not a fault of one field, such as excessive aliasing.
		return nil, &Error{Problems: append(probs, Problem{Err: decodeErr})}
	}
	shape := checkShape(&root, reflect.TypeFor[File]())
	if typeErr != nil && len(shape) == 0 {
		// The decoder found what the shape check did not: report it as is.
		for _, e := range typeErr.Errors {
			probs = append(probs, Problem{Err: errors.New(e)})
		}
	}
	probs = append(probs, shape...)
	f.Dir = dir
	f.resolve()
	for _, e := range flatten(f.Validate()) {
		probs = append(probs, locate(&root, e))
	}
	if len(probs) > 0 {
		slices.SortStableFunc(probs, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
		return nil, &Error{Problems: probs}
	}
	return &f, nil
}

// Validate reports every problem of the configuration, each an
// *field.Error whose path is a path of YAML keys from the top of the file
// ("identity.issuers[1].issuerURL"): each section's own Validate, placed
// under its key, and what only the whole file shows.
func (f *File) Validate() error {
	var errs []error
	if f.Authz != nil {
		errs = append(errs, field.Under("authz", f.Authz.Validate()))
	}
	if f.Gateway != nil {
		errs = append(errs, field.Under("gateway", f.Gateway.Validate()))
	}
	if f.Audit != nil {
		errs = append(errs, field.Under("audit", f.Audit.Validate()))
	}
	if f.Router != nil {
		errs = append(errs, field.Under("router", f.Router.Validate()))
		if f.Router.AssertionKeyFile == "" && f.Authz == nil {
			errs = append(errs, field.Errorf("router.assertionKeyFile", "required when authz does not run in this process: it verifies authz's x-mcp-authz assertion"))
		}
	}
	if f.Tracing != nil {
		errs = append(errs, field.Under("tracing", f.Tracing.Validate()))
	}
	if f.Identity != nil {
		errs = append(errs, field.Under("identity", f.Identity.Validate()))
	}
	if f.Exchange != nil {
		errs = append(errs, field.Under("exchange", f.Exchange.Validate()))
		if f.Identity == nil {
			errs = append(errs, field.Errorf("exchange", "needs identity: the exchanged token is validated against its issuer"))
		}
		errs = append(errs, f.checkProfiles()...)
	}
	errs = append(errs, f.checkServerProfiles()...)
	if f.Kubernetes != nil {
		errs = append(errs, field.Under("kubernetes", f.Kubernetes.Validate()))
	}
	if _, err := registry.NewSnapshot(f.Servers); err != nil {
		errs = append(errs, err) // paths start at servers
	}
	pc := policy.Config{Policies: f.Policies, Default: f.DefaultPolicy, BaseDir: f.Dir}
	errs = append(errs, pc.Validate()) // paths start at policies and defaultPolicy
	switch f.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, field.Errorf("log.level", "%q: want debug, info, warn or error", f.Log.Level))
	}
	switch f.Log.Format {
	case "", "json", "text":
	default:
		errs = append(errs, field.Errorf("log.format", "%q: want json or text", f.Log.Format))
	}
	return errors.Join(errs...)
}

// Snapshot is the file registry.
func (f *File) Snapshot() (*registry.Snapshot, error) {
	return registry.NewSnapshot(f.Servers)
}

// PolicySet compiles the policies.
func (f *File) PolicySet() (*policy.Set, error) {
	return policy.Compile(policy.Config{Policies: f.Policies, Default: f.DefaultPolicy, BaseDir: f.Dir})
}

// Unreloaded names the sections of next that differ from f's and that a
// reload does not apply: only servers, policies and defaultPolicy are
// reloaded, the rest takes effect on restart.
func (f *File) Unreloaded(next *File) []string {
	var out []string
	for _, s := range []struct {
		name      string
		was, next any
	}{
		{"authz", f.Authz, next.Authz},
		{"gateway", f.Gateway, next.Gateway},
		{"router", f.Router, next.Router},
		{"metrics", f.Metrics, next.Metrics},
		{"log", f.Log, next.Log},
		{"tracing", f.Tracing, next.Tracing},
		{"identity", f.Identity, next.Identity},
		{"exchange", f.Exchange, next.Exchange},
		{"kubernetes", f.Kubernetes, next.Kubernetes},
	} {
		if !reflect.DeepEqual(s.was, s.next) {
			out = append(out, s.name)
		}
	}
	return out
}

// resolve takes the files the sections name from the file's directory.
// Policy files stay as written: policy.Config.BaseDir resolves them.
func (f *File) resolve() {
	if f.Authz != nil {
		f.Authz.AssertionKeyFile = f.Path(f.Authz.AssertionKeyFile)
	}
	if f.Router != nil {
		f.Router.AssertionKeyFile = f.Path(f.Router.AssertionKeyFile)
		for i, p := range f.Router.SessionKeyFiles {
			f.Router.SessionKeyFiles[i] = f.Path(p)
		}
	}
	if f.Identity != nil {
		for i := range f.Identity.Issuers {
			f.Identity.Issuers[i].CAFile = f.Path(f.Identity.Issuers[i].CAFile)
		}
	}
	if f.Exchange != nil {
		f.Exchange.ClientSecretFile = f.Path(f.Exchange.ClientSecretFile)
		f.Exchange.CAFile = f.Path(f.Exchange.CAFile)
		for name, p := range f.Exchange.Profiles {
			p.CAFile = f.Path(p.CAFile)
			if p.Static != nil {
				st := *p.Static
				st.SecretFile = f.Path(st.SecretFile)
				p.Static = &st
			}
			p.Steps = slices.Clone(p.Steps)
			for i := range p.Steps {
				s := &p.Steps[i]
				for _, file := range []*string{&s.ClientSecretFile, &s.PrivateKeyFile, &s.FederatedTokenFile, &s.ActorTokenFile} {
					*file = f.Path(*file)
				}
			}
			f.Exchange.Profiles[name] = p
		}
	}
	if f.Kubernetes != nil {
		f.Kubernetes.Kubeconfig = f.Path(f.Kubernetes.Kubeconfig)
	}
	if f.Audit != nil && f.Audit.Output != "stdout" && f.Audit.Output != "stderr" {
		f.Audit.Output = f.Path(f.Audit.Output)
	}
}

// Path resolves p against the file's directory. Load and Parse have
// resolved the key and secret files of the sections already.
func (f *File) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.Dir, p)
}

// checkServerProfiles reports servers and targets naming an exchange
// profile the exchange section does not define, and profiles named with no
// exchange section at all.
func (f *File) checkServerProfiles() []error {
	var errs []error
	check := func(path, name string) {
		if name == "" {
			name = exchange.DefaultProfile
		}
		switch {
		case f.Exchange == nil && name != exchange.DefaultProfile:
			errs = append(errs, field.Errorf(path, "%q: no exchange section defines profiles", name))
		case f.Exchange != nil && !f.Exchange.HasProfile(name):
			if name == exchange.DefaultProfile {
				errs = append(errs, field.Errorf(path, "no profile named and exchange has no default profile (tokenURL): name one of exchange.profiles"))
			} else {
				errs = append(errs, field.Errorf(path, "%q is not a profile of exchange.profiles", name))
			}
		}
	}
	for i, s := range f.Servers {
		at := fmt.Sprintf("servers[%d]", i)
		if s.Targets == nil {
			check(at+".exchange", s.Exchange)
			continue
		}
		if s.Exchange != "" {
			errs = append(errs, field.Errorf(at+".exchange", "a server with targets names its profiles per target"))
		}
		for _, v := range slices.Sorted(maps.Keys(s.Targets.Values)) {
			check(at+".targets.values."+v+".exchange", s.Targets.Values[v].Exchange)
		}
	}
	return errs
}

// checkProfiles refuses a profile whose final token the caller verifier
// would accept: a token minted for an upstream must never pass as a
// caller's credential.
func (f *File) checkProfiles() []error {
	if f.Identity == nil {
		return nil
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(f.Exchange.Profiles)) {
		e := f.Exchange.Profiles[name].Expect
		if e == nil {
			continue
		}
		for _, iss := range f.Identity.Issuers {
			if iss.IssuerURL == e.Issuer && slices.Contains(iss.Audiences, e.Audience) {
				errs = append(errs, field.Errorf("exchange.profiles."+name+".expect.audience",
					"%q of %s is also accepted from callers (identity.issuers): a token made for an upstream would pass as a caller's", e.Audience, e.Issuer))
			}
		}
	}
	return errs
}
