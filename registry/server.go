// Package registry holds the registered MCP servers as an immutable snapshot swapped atomically.
package registry

import (
	"crypto/x509"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Server is one registered MCP server.
type Server struct {
	// Name identifies the server as namespace/name (the MCPServerRegistration in a cluster).
	// It is the value of the x-mcp-servername header and the default Audience.
	Name string `yaml:"name" json:"name"`
	// Prefix is prepended to the server's tool and prompt names by the router, e.g. "kube_".
	// Prefixes may nest ("kube_" and "kube_admin_") and one server may have none: a name
	// belongs to the server with the longest prefix that leaves a non-empty name. No two
	// servers share a prefix.
	Prefix string `yaml:"prefix" json:"prefix"`
	// URL is the upstream MCP endpoint, an absolute http or https URL without credentials.
	URL string `yaml:"url" json:"url"`
	// Audience is the audience of the tokens this server accepts; empty means Name.
	Audience string `yaml:"audience,omitempty" json:"audience,omitempty"`
	// Scopes are requested in the token exchange for this server; empty means the
	// exchange's configured scopes.
	Scopes []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	// Hostname, when set, attaches the server to requests for that host (per-route
	// attachment). It is compared case-insensitively and carries no port.
	Hostname string `yaml:"hostname,omitempty" json:"hostname,omitempty"`
	// ResourcePrefixes are the resource URI prefixes the server owns; no two servers may
	// own overlapping prefixes.
	ResourcePrefixes []string `yaml:"resourcePrefixes,omitempty" json:"resourcePrefixes,omitempty"`
	// Exchange names the exchange profile that makes the server's token; "" means the
	// default profile (exchange's top-level keys). With Targets, it is used for nothing
	// that names a target: each target names its own.
	Exchange string `yaml:"exchange,omitempty" json:"exchange,omitempty"`
	// Targets, when set, picks the profile per call from one tool argument, for a
	// server that fronts several targets behind one endpoint (kubernetes-mcp-server's
	// context argument).
	Targets *Targets `yaml:"targets,omitempty" json:"targets,omitempty"`

	// What an MCPServerRegistration says beyond where the server is (Kuadrant's
	// credentialRef, caCertSecretRef, userSpecificList, category, hint and tags).
	// The data plane must honour each one; see docs/kuadrant.md.

	// Credential is a static credential for the upstream: the whole value of the
	// Authorization header sent to it (Kuadrant's credentialRef), sent as a static
	// exchange profile's is, whether callers are identified or not. It excludes
	// Exchange and Targets. It never prints or marshals its value. Only the kube
	// source sets it.
	Credential *Credential `yaml:"-" json:"-"`
	// CACert is a PEM bundle of the CAs that the upstream's TLS certificate must chain
	// to, instead of the system roots; it requires an https URL. Only the kube source
	// sets it.
	CACert []byte `yaml:"-" json:"-"`
	// UserSpecificList says the server's lists depend on the caller: they must be
	// fetched with the caller's own credentials and never shared between callers.
	UserSpecificList bool `yaml:"userSpecificList,omitempty" json:"userSpecificList,omitempty"`
	// Category, Hint and Tags describe the server to clients choosing tools.
	Category []string `yaml:"category,omitempty" json:"category,omitempty"`
	Hint     string   `yaml:"hint,omitempty" json:"hint,omitempty"`
	Tags     []string `yaml:"tags,omitempty" json:"tags,omitempty"`
}

// Targets maps the values of one tool argument to exchange profiles.
type Targets struct {
	// Argument is the tools/call argument that names the target, matched as argument
	// keys are (folded: "Context" and "context" are one). Required.
	Argument string `yaml:"argument" json:"argument"`
	// Default is the target of a call without the argument and of every request that
	// names no tool (lists, initialize); it must be a key of Values. Required.
	Default string `yaml:"default" json:"default"`
	// Values maps each allowed value to its target. A value not here is denied like an
	// unknown tool.
	Values map[string]Target `yaml:"values" json:"values"`
}

// Target is one target of a server.
type Target struct {
	// Exchange names the exchange profile of the target's token; "" means the default.
	Exchange string `yaml:"exchange" json:"exchange"`
}

// Target returns the target named by value (value "" is Default) and its name; ok is
// false for a value with no target. A server without Targets has one target, "", of its
// own Exchange.
func (s *Server) Target(value string) (name string, t Target, ok bool) {
	if s.Targets == nil {
		return "", Target{Exchange: s.Exchange}, value == ""
	}
	if value == "" {
		value = s.Targets.Default
	}
	t, ok = s.Targets.Values[value]
	return value, t, ok
}

// Credential is a static upstream credential. It prints, logs and marshals as where
// it came from, never as its value.
type Credential struct {
	source, value string
}

// NewCredential returns the credential value read from source (such as "Secret
// ns/name key token"). source must not contain the value.
func NewCredential(source, value string) *Credential {
	return &Credential{source: source, value: value}
}

// Value is the credential itself, the whole Authorization header value.
func (c *Credential) Value() string { return c.value }

// Source says where the credential came from.
func (c *Credential) Source() string { return c.source }

// String names the credential's source only.
func (c Credential) String() string { return "credential from " + c.source }

// GoString names the credential's source only.
func (c Credential) GoString() string { return c.String() }

// MarshalText names the credential's source only.
func (c Credential) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Equal reports whether c and d are the same credential from the same source.
func (c *Credential) Equal(d *Credential) bool {
	if c == nil || d == nil {
		return c == d
	}
	return *c == *d
}

// validHeaderValue reports whether v can be sent as an HTTP header value: visible
// ASCII, spaces and tabs, not starting or ending with white space.
func validHeaderValue(v string) bool {
	if v == "" || v != strings.Trim(v, " \t") {
		return false
	}
	for i := 0; i < len(v); i++ {
		if b := v[i]; (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}

// maxPrefixLen leaves room for at least one character of a 128-character MCP tool name.
const maxPrefixLen = 127

var (
	// Kubernetes DNS-1123 label (a namespace) and subdomain (an object name).
	dnsLabel     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// The MCP tool-name characters, not starting with a separator. (Kuadrant's CRD is
	// stricter, ^[a-z0-9][a-z0-9_]*$; the file registry allows the whole tool-name set.)
	prefixChars = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// check validates one server on its own and returns it normalized: Audience defaulted,
// Hostname lower-cased, ResourcePrefixes copied. Problems between servers are found by
// NewSnapshot.
func check(s Server) (Server, []problem) {
	var probs []problem
	add := func(field, format string, a ...any) {
		probs = append(probs, problem{field, fmt.Sprintf(format, a...)})
	}

	if err := checkName(s.Name); err != "" {
		add("name", "%q %s", s.Name, err)
	}
	switch {
	case s.Prefix == "":
	case len(s.Prefix) > maxPrefixLen:
		add("prefix", "longer than %d characters", maxPrefixLen)
	case !prefixChars.MatchString(s.Prefix):
		add("prefix", "%q must match %s", s.Prefix, prefixChars)
	}
	if err := checkURL(s.URL); err != "" {
		add("url", "%s", err)
	}
	if s.Audience == "" {
		s.Audience = s.Name
	}
	if s.Hostname != "" {
		s.Hostname = strings.ToLower(s.Hostname)
		if len(s.Hostname) > 253 || !dnsSubdomain.MatchString(s.Hostname) {
			add("hostname", "%q must be a DNS name without port or wildcard", s.Hostname)
		}
	}
	if s.Credential != nil && !validHeaderValue(s.Credential.Value()) {
		// Never quote the value.
		add("credential", "%s is not a valid header value", s.Credential.Source())
	}
	if s.Credential != nil && (s.Exchange != "" || s.Targets != nil) {
		// One way to the upstream's Authorization: the registration's own
		// credential, or the profile's token, never a guess between them.
		add("credential", "%s and an exchange profile or targets both make the upstream's Authorization: set one", s.Credential.Source())
	}
	if len(s.CACert) > 0 {
		if u, err := url.Parse(s.URL); err == nil && u.Scheme != "https" {
			add("caCert", "needs an https url")
		}
		if !x509.NewCertPool().AppendCertsFromPEM(s.CACert) {
			add("caCert", "holds no PEM certificate")
		}
	}
	for i, c := range s.Category {
		if c == "" {
			add(fmt.Sprintf("category[%d]", i), "empty")
		}
	}
	for i, t := range s.Tags {
		if t == "" {
			add(fmt.Sprintf("tags[%d]", i), "empty")
		}
	}
	s.ResourcePrefixes = append([]string(nil), s.ResourcePrefixes...)
	s.Scopes = slices.Clone(s.Scopes)
	s.CACert = slices.Clone(s.CACert)
	s.Category = slices.Clone(s.Category)
	s.Tags = slices.Clone(s.Tags)
	for i, p := range s.ResourcePrefixes {
		if p == "" {
			add(fmt.Sprintf("resourcePrefixes[%d]", i), "empty")
		}
	}
	if t := s.Targets; t != nil {
		c := *t
		c.Values = maps.Clone(t.Values)
		s.Targets = &c
		switch {
		case t.Argument == "":
			add("targets.argument", "required: the tool argument that names the target")
		case !utf8.ValidString(t.Argument) || len(t.Argument) > 128:
			add("targets.argument", "must be valid UTF-8 of at most 128 bytes")
		}
		if len(t.Values) == 0 {
			add("targets.values", "at least one value is required")
		}
		if _, ok := t.Values[t.Default]; !ok {
			add("targets.default", "%q must be a key of targets.values", t.Default)
		}
		for _, v := range slices.Sorted(maps.Keys(t.Values)) {
			if v == "" {
				add("targets.values", "an empty value")
			}
		}
	}
	return s, probs
}

// problem is what is wrong with one field of a server.
type problem struct {
	field, msg string
}

// checkName returns what is wrong with a namespace/name, or "".
func checkName(name string) string {
	ns, n, ok := strings.Cut(name, "/")
	switch {
	case name == "":
		return "is required"
	case !ok:
		return "must be namespace/name"
	case len(ns) > 63 || !dnsLabel.MatchString(ns):
		return "has a namespace that is not a DNS-1123 label"
	case len(n) > 253 || !dnsSubdomain.MatchString(n):
		return "has a name that is not a DNS-1123 subdomain"
	}
	return ""
}

// checkURL returns what is wrong with an upstream URL, or "". The URL itself is never
// quoted: it could carry credentials.
func checkURL(raw string) string {
	if raw == "" {
		return "is required"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "does not parse"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an absolute http or https URL"
	case u.Opaque != "" || u.Hostname() == "":
		return "must have a host"
	case u.User != nil:
		return "must not carry credentials"
	}
	return ""
}
