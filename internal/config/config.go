// Package config reads, checks and watches the mcp-authz configuration file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/exchange"
	"github.com/mcp-authz/mcp-authz/gateway"
	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router"
)

// File is the configuration file. A section left out turns its part off:
// no gateway means Envoy is the front, no identity admits anonymous callers,
// no exchange passes tokens through unchanged.
type File struct {
	// Authz is the ext_authz gRPC server; on unless left out with a gateway
	// that points elsewhere.
	Authz *authz.Config `yaml:"authz,omitempty"`
	// Gateway is the built-in front that stands in for Envoy.
	Gateway *gateway.Config `yaml:"gateway,omitempty"`
	// Router is the aggregating MCP endpoint.
	Router *router.Config `yaml:"router,omitempty"`
	// Metrics serves Prometheus metrics and health probes.
	Metrics *Metrics `yaml:"metrics,omitempty"`
	// Log configures the process log.
	Log Log `yaml:"log"`
	// Identity validates callers' tokens.
	Identity *identity.Config `yaml:"identity,omitempty"`
	// Exchange trades callers' tokens for per-server tokens (RFC 8693).
	Exchange *exchange.Config `yaml:"exchange,omitempty"`
	// Servers is the file registry. Reloaded when the file changes.
	Servers []registry.Server `yaml:"servers"`
	// Policies decide who may call which tool. Reloaded when the file, or a
	// policy file it names, changes.
	Policies []policy.Policy `yaml:"policies"`
	// DefaultPolicy applies to a server no policy names: "deny" (default) or
	// "allow".
	DefaultPolicy string `yaml:"defaultPolicy"`

	// Dir is the directory of the file; relative paths are taken from it.
	Dir string `yaml:"-"`
}

// Metrics configures the metrics and probe listener.
type Metrics struct {
	// Listen is the address of /metrics, /healthz and /readyz.
	// Default 127.0.0.1:9090.
	Listen string `yaml:"listen"`
}

// Log configures the process log.
type Log struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is json (default) or text.
	Format string `yaml:"format"`
}

// Load reads and checks the file at path. Its error lists every problem
// found, each with its line.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return f, nil
}

// Parse decodes and checks a configuration. Unknown keys are errors.
func Parse(data []byte, dir string) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	f.Dir = dir
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if errs := f.check(&root); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &f, nil
}

// check compiles what the request path will use, so that a file that loads
// is a file that runs. Each error names its line.
func (f *File) check(root *yaml.Node) []error {
	var errs []error
	at := func(path ...any) string { return fmt.Sprintf("line %d", line(root, path...)) }
	switch f.DefaultPolicy {
	case "", "deny", "allow":
	default:
		errs = append(errs, fmt.Errorf("%s: defaultPolicy %q: want deny or allow", at("defaultPolicy"), f.DefaultPolicy))
	}
	for i, s := range f.Servers {
		if _, err := registry.NewSnapshot([]registry.Server{s}); err != nil {
			errs = append(errs, fmt.Errorf("%s: servers[%d]: %w", at("servers", i), i, err))
		}
	}
	if len(errs) == 0 {
		if _, err := f.Snapshot(); err != nil {
			errs = append(errs, fmt.Errorf("%s: servers: %w", at("servers"), err))
		}
	}
	for i, p := range f.Policies {
		if _, err := policy.Compile(policy.Config{Policies: []policy.Policy{p}, BaseDir: f.Dir}); err != nil {
			errs = append(errs, fmt.Errorf("%s: policies[%d]: %w", at("policies", i), i, err))
		}
	}
	switch f.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("%s: log.level %q: want debug, info, warn or error", at("log", "level"), f.Log.Level))
	}
	switch f.Log.Format {
	case "", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("%s: log.format %q: want json or text", at("log", "format"), f.Log.Format))
	}
	return errs
}

// Snapshot is the file registry.
func (f *File) Snapshot() (*registry.Snapshot, error) {
	return registry.NewSnapshot(f.Servers)
}

// PolicySet compiles the policies.
func (f *File) PolicySet() (*policy.Set, error) {
	return policy.Compile(policy.Config{Policies: f.Policies, Default: f.DefaultPolicy, BaseDir: f.Dir})
}

// Path resolves p against the file's directory.
func (f *File) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(f.Dir, p)
}

// line finds the line of a node by its path of mapping keys and sequence
// indexes; it falls back to the deepest node found.
func line(root *yaml.Node, path ...any) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		next := child(n, p)
		if next == nil {
			break
		}
		n = next
	}
	return n.Line
}

func child(n *yaml.Node, p any) *yaml.Node {
	switch k := p.(type) {
	case string:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				return n.Content[i+1]
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && k < len(n.Content) {
			return n.Content[k]
		}
	}
	return nil
}
