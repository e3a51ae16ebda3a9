// Package origin checks a request's Origin and Host headers against
// allowlists: the DNS-rebinding protection MCP's Streamable HTTP transport
// asks of servers (403 for an Origin present and not allowed).
//
// The front, authz and the router share this one matcher, each configured
// with the same two keys (allowedOrigins, allowedHosts).
package origin

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// Config is the two allowlists. The zero value admits requests without an
// Origin (what non-browser MCP clients send) and browser requests from
// loopback origins only, with any Host.
type Config struct {
	// AllowedOrigins are the origins a browser page may call from, each
	// "scheme://host" or "scheme://host:port" (http or https; a port of
	// "*" for any port, "[::1]" for an IPv6 host), or "*" for any origin.
	// A request without an Origin header is always admitted. Empty: the
	// loopback origins, http and https on localhost, 127.0.0.0/8 and [::1]
	// with any port (make run, the quick start).
	AllowedOrigins []string `yaml:"allowedOrigins" json:"allowedOrigins"`
	// AllowedHosts are the Host (:authority) values accepted, each "host"
	// (any port), "host:port", "[v6]" or "[v6]:port". Empty: any Host.
	// Behind Istio or Envoy, list the gateway's public host names.
	AllowedHosts []string `yaml:"allowedHosts" json:"allowedHosts"`
}

// Errors Check returns: answer both with HTTP 403.
var (
	ErrOrigin = errors.New("origin not allowed")
	ErrHost   = errors.New("host not allowed")
)

// Matcher checks requests against a Config, compiled once.
type Matcher struct {
	anyOrigin bool
	origins   []endpoint // empty with !anyOrigin: loopback only
	hosts     []endpoint // empty: any
}

// endpoint is one allowlist entry: scheme ("" for hosts), lower-case host
// without brackets, port ("" any, for hosts without one and ":*" origins).
type endpoint struct{ scheme, host, port string }

// Validate reports every malformed entry, each an *field.Error at its key
// ("allowedOrigins[1]").
func (c Config) Validate() error {
	var errs []error
	for i, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		if _, err := parseOrigin(o, true); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("allowedOrigins[%d]", i), "%v", err))
		}
	}
	for i, h := range c.AllowedHosts {
		if _, err := parseHost(h); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("allowedHosts[%d]", i), "%v", err))
		}
	}
	return errors.Join(errs...)
}

// New compiles c; it fails as Validate does.
func New(c Config) (*Matcher, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Matcher{}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			m.anyOrigin = true
			continue
		}
		e, _ := parseOrigin(o, true)
		m.origins = append(m.origins, e)
	}
	for _, h := range c.AllowedHosts {
		e, _ := parseHost(h)
		m.hosts = append(m.hosts, e)
	}
	return m, nil
}

// Check checks one request: origin is its Origin header (hasOrigin false
// when absent; a present empty value is checked, and refused), host its
// Host. It returns ErrOrigin or ErrHost, or nil. A nil Matcher checks as
// the zero Config does.
func (m *Matcher) Check(origin string, hasOrigin bool, host string) error {
	if m == nil {
		m = &Matcher{}
	}
	if len(m.hosts) > 0 && !m.hostAllowed(host) {
		return ErrHost
	}
	if !hasOrigin || m.anyOrigin {
		return nil
	}
	o, err := parseOrigin(origin, false)
	if err != nil {
		return ErrOrigin
	}
	if len(m.origins) == 0 {
		if (o.scheme == "http" || o.scheme == "https") && loopback(o.host) {
			return nil
		}
		return ErrOrigin
	}
	for _, e := range m.origins {
		if e.scheme == o.scheme && e.host == o.host && (e.port == "*" || e.port == o.port) {
			return nil
		}
	}
	return ErrOrigin
}

func (m *Matcher) hostAllowed(host string) bool {
	h, err := parseHost(host)
	if err != nil {
		return false
	}
	for _, e := range m.hosts {
		if e.host == h.host && (e.port == "" || e.port == h.port) {
			return true
		}
	}
	return false
}

// loopback reports whether host (no brackets) is localhost or a loopback
// IP address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseOrigin reads an RFC 6454 serialized origin: scheme://host[:port],
// nothing more; the scheme's default port is dropped. entry allows a port
// of "*" and requires http or https.
func parseOrigin(s string, entry bool) (endpoint, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || rest == "" {
		return endpoint{}, fmt.Errorf("origin %q: want scheme://host[:port]", s)
	}
	scheme = strings.ToLower(scheme)
	if entry && scheme != "http" && scheme != "https" {
		return endpoint{}, fmt.Errorf("origin %q: want http or https", s)
	}
	if strings.ContainsAny(rest, "/?#@\\ ") {
		return endpoint{}, fmt.Errorf("origin %q: want no path, query, fragment or user", s)
	}
	star := false
	if entry {
		if r, ok := strings.CutSuffix(rest, ":*"); ok {
			rest, star = r, true
		}
	}
	e, err := parseHost(rest)
	if err != nil {
		return endpoint{}, fmt.Errorf("origin %q: %w", s, err)
	}
	e.scheme = scheme
	switch {
	case star:
		e.port = "*"
	case scheme == "http" && e.port == "80", scheme == "https" && e.port == "443":
		e.port = ""
	}
	return e, nil
}

// parseHost reads host, host:port, [v6] or [v6]:port; the host lower-cased,
// without brackets.
func parseHost(s string) (endpoint, error) {
	if s == "" {
		return endpoint{}, errors.New("empty host")
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
		if h, p, err := net.SplitHostPort(s); err == nil {
			host, port = h, p
		} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
			host = s[1 : len(s)-1]
		} else {
			return endpoint{}, fmt.Errorf("host %q: %w", s, err)
		}
		if strings.HasPrefix(s, "[") && net.ParseIP(host) == nil {
			return endpoint{}, fmt.Errorf("host %q: not an IPv6 address in brackets", s)
		}
	} else if strings.Contains(s, ":") {
		return endpoint{}, fmt.Errorf("host %q: an IPv6 address needs brackets", s)
	}
	if port != "" {
		if len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return endpoint{}, fmt.Errorf("host %q: port is not a number", s)
		}
	}
	if host == "" || strings.ContainsAny(host, "/?#@\\ *") {
		return endpoint{}, fmt.Errorf("host %q: not a host name or address", s)
	}
	host = strings.ToLower(host)
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String() // one spelling of each address
	}
	return endpoint{host: host, port: port}, nil
}
