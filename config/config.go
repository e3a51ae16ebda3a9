// Package config reads, checks and watches the mcp-authz configuration file.
package config

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.yaml.in/yaml/v3"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/front"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
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
	// Gateway is the built-in front that stands in for Envoy.
	Gateway *front.Config `yaml:"gateway,omitempty" json:"gateway,omitempty"`
	// Router is the aggregating MCP endpoint.
	Router *router.Config `yaml:"router,omitempty" json:"router,omitempty"`
	// Metrics serves Prometheus metrics and health probes.
	Metrics *Metrics `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	// Log configures the process log.
	Log Log `yaml:"log" json:"log"`
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

// Load reads and checks the file at path as Parse does. Its error lists
// every problem found, each with its line.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	sum := digest(path, data)
	f, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	f.sum = sum
	return f, nil
}

// Parse decodes and checks a configuration, taking relative paths from
// dir, so that a file that loads is a file that serves: unknown keys are
// errors, servers and policies are compiled, and each section is built by
// its own constructor (which reaches no network but reads the key and
// secret files named). Its error lists every problem found, in the order
// of the file, each starting with its line.
func Parse(data []byte, dir string) (*File, error) {
	var f File
	var errs []error
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&f)
	var typeErr *yaml.TypeError
	switch {
	case errors.As(err, &typeErr):
		// Unknown keys and mistyped values: the rest of the file decoded,
		// so its other problems are reported too.
		for _, e := range typeErr.Errors {
			errs = append(errs, typeError(e))
		}
	case err != nil && !errors.Is(err, io.EOF):
		// Not YAML. The message names the line, except at the end of the
		// input ("found unexpected end of stream").
		if !strings.Contains(err.Error(), "line ") {
			err = &lineError{line: bytes.Count(data, []byte("\n")) + 1, err: err}
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		errs = append(errs, &lineError{line: extra.Line, err: errors.New("a second document: the configuration is one document")})
	}
	f.Dir = dir
	f.resolve()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	errs = append(errs, f.check(&root)...)
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b error) int { return cmp.Compare(errLine(a), errLine(b)) })
		return nil, errors.Join(errs...)
	}
	return &f, nil
}

// lineError is a problem located in the file. Lines of the cause after its
// first are indented, so that each problem starts with its line.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string {
	return fmt.Sprintf("line %d: %s", e.line, strings.ReplaceAll(e.err.Error(), "\n", "\n    "))
}

func (e *lineError) Unwrap() error { return e.err }

// typeError locates one of yaml's "line N: ..." decoding errors.
func typeError(s string) error {
	var n int
	if m := typeErrorLine.FindStringSubmatch(s); m != nil {
		if n, _ = strconv.Atoi(m[1]); n > 0 {
			return &lineError{line: n, err: errors.New(m[2])}
		}
	}
	return errors.New(s)
}

var typeErrorLine = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)

// errLine is the line of a located error, 0 otherwise.
func errLine(err error) int {
	var le *lineError
	if errors.As(err, &le) {
		return le.line
	}
	return 0
}

// check compiles what the request path will use, so that a file that loads
// is a file that runs. Each error names its line.
func (f *File) check(root *yaml.Node) []error {
	var errs []error
	at := func(err error, path ...any) {
		errs = append(errs, &lineError{line: line(root, path...), err: err})
	}
	switch f.DefaultPolicy {
	case "", "deny", "allow":
	default:
		at(fmt.Errorf("defaultPolicy %q: want deny or allow", f.DefaultPolicy), "defaultPolicy")
	}
	if _, err := f.Snapshot(); err != nil {
		// registry names the server of each problem by index.
		for _, e := range split(err) {
			path := []any{"servers"}
			if m := serverIndex.FindStringSubmatch(e.Error()); m != nil {
				i, _ := strconv.Atoi(m[1])
				path = append(path, i)
			}
			at(e, path...)
		}
	}
	policyErrs := len(errs)
	for i, p := range f.Policies {
		if _, err := policy.Compile(policy.Config{Policies: []policy.Policy{p}, BaseDir: f.Dir}); err != nil {
			err = fmt.Errorf("policies[%d]: %w", i, err)
			if n, ok := inlineLine(root, i, p, err); ok {
				errs = append(errs, &lineError{line: n, err: err})
				continue
			}
			at(err, "policies", i)
		}
	}
	if len(errs) == policyErrs {
		// What only the whole set shows, such as two policies of one name.
		if _, err := f.PolicySet(); err != nil {
			at(fmt.Errorf("policies: %w", err), "policies")
		}
	}
	if f.Exchange != nil && f.Identity == nil {
		at(errors.New("exchange needs identity: the exchanged token is validated against its issuer"), "exchange")
	}
	f.checkSections(at)
	switch f.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		at(fmt.Errorf("log.level %q: want debug, info, warn or error", f.Log.Level), "log", "level")
	}
	switch f.Log.Format {
	case "", "json", "text":
	default:
		at(fmt.Errorf("log.format %q: want json or text", f.Log.Format), "log", "format")
	}
	return errs
}

// serverIndex finds the server a registry error is about.
var serverIndex = regexp.MustCompile(`servers\[(\d+)\]`)

// split returns the errors joined in err, or err alone.
func split(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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
	if f.Exchange != nil {
		f.Exchange.ClientSecretFile = f.Path(f.Exchange.ClientSecretFile)
	}
	if f.Kubernetes != nil {
		f.Kubernetes.Kubeconfig = f.Path(f.Kubernetes.Kubeconfig)
	}
}

// checkSections builds each section's part with its own constructor, none
// of which serves or reaches the network, so that what serve would refuse
// is found here. The key and secret files the sections name are read.
func (f *File) checkSections(at func(error, ...any)) {
	if f.Authz != nil {
		if _, err := authz.New(*f.Authz, authz.Deps{Registry: &registry.Registry{}, Policy: &policy.Engine{}}); err != nil {
			at(err, "authz")
		}
		if f.Authz.AssertionKeyFile != "" {
			if _, err := assertion.LoadKey(f.Authz.AssertionKeyFile); err != nil {
				at(fmt.Errorf("authz: %w", err), "authz", "assertionKeyFile")
			}
		}
	}
	if f.Gateway != nil {
		if _, err := front.New(*f.Gateway, authv3.NewAuthorizationClient(nil), nil); err != nil {
			at(err, "gateway")
		}
	}
	if f.Router != nil {
		rc := *f.Router
		if rc.AssertionKeyFile == "" && f.Authz != nil {
			// authz in the same process gives the router its key.
			rc.AssertionKey = assertion.Ed25519PublicKey(make(ed25519.PublicKey, ed25519.PublicKeySize))
		}
		if _, err := router.New(rc, &registry.Registry{}, nil, nil); err != nil {
			at(err, "router")
		}
	}
	if f.Identity != nil {
		if _, err := identity.New(context.Background(), *f.Identity, nil); err != nil {
			path := []any{"identity"}
			if m := issuerIndex.FindStringSubmatch(err.Error()); m != nil {
				i, _ := strconv.Atoi(m[1])
				path = append(path, "issuers", i)
			}
			at(err, path...)
		}
	}
	if f.Exchange != nil {
		if _, err := exchange.New(*f.Exchange, nil, checkOnly{}); err != nil {
			at(err, "exchange")
		}
	}
}

// issuerIndex finds the issuer an identity error is about.
var issuerIndex = regexp.MustCompile(`issuers\[(\d+)\]`)

// checkOnly stands for the identity verifier in an exchange client that is
// built to be checked, never used.
type checkOnly struct{}

func (checkOnly) VerifyAudience(context.Context, string, string) (*identity.Identity, error) {
	return nil, errors.New("config: check only")
}

// Path resolves p against the file's directory. Load and Parse have
// resolved the key and secret files of the sections already.
func (f *File) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.Dir, p)
}

// line finds the line of a node by its path of mapping keys and sequence
// indexes: the line of its key when the path ends with a key, of the item
// when it ends with an index. It falls back to the deepest node found.
func line(root *yaml.Node, path ...any) int {
	key, n := find(root, path...)
	if key != nil {
		return key.Line
	}
	return n.Line
}

// find returns the deepest node along path and, if the last step was a
// mapping key, its key.
func find(root *yaml.Node, path ...any) (key, n *yaml.Node) {
	n = root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		k, next := child(n, p)
		if next == nil {
			break
		}
		key, n = k, next
	}
	return key, n
}

// inlineLine is the line in the file of an error in the text of the inline
// CEL or Rego of policies[i] (reported as "<name>.cel:3:1" or
// "<name>.rego:5:"), when the text is literal ("|") or one line.
func inlineLine(root *yaml.Node, i int, p policy.Policy, err error) (int, bool) {
	field := "cel"
	switch {
	case p.Rego != "":
		field = "rego"
	case p.CEL == "":
		return 0, false
	}
	m := regexp.MustCompile(regexp.QuoteMeta(p.Name+"."+field) + `:(\d+)`).FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	n, _ := strconv.Atoi(m[1])
	key, v := find(root, "policies", i, field)
	if key == nil || n < 1 {
		return 0, false
	}
	switch {
	case v.Style == yaml.LiteralStyle:
		return v.Line + n, true // the text starts under the "|"
	case n == 1 && v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 && !strings.Contains(v.Value, "\n"):
		return v.Line, true
	}
	return 0, false
}

// child returns the node p names in n and, for a mapping key, the key.
func child(n *yaml.Node, p any) (key, value *yaml.Node) {
	switch k := p.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil, nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				return n.Content[i], n.Content[i+1]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && k >= 0 && k < len(n.Content) {
			return nil, n.Content[k]
		}
	}
	return nil, nil
}
