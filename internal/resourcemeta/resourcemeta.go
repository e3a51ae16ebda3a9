// Package resourcemeta serves RFC 9728 OAuth protected-resource metadata, by
// which MCP clients find the authorization server after a 401.
package resourcemeta

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// wellKnownPath is where RFC 9728 puts protected-resource metadata.
const wellKnownPath = "/.well-known/oauth-protected-resource"

// Metadata is the RFC 9728 protected-resource metadata served, without
// authz, at /.well-known/oauth-protected-resource and at the
// path-suffixed form made from Resource (RFC 9728 section 3.1: for
// https://mcp.example.com/mcp, /.well-known/oauth-protected-resource/mcp).
// MCP clients find the authorization server here after a 401.
type Metadata struct {
	// Resource is the protected resource's identifier: the absolute http(s)
	// URL clients use for the MCP endpoint, without fragment (RFC 9728
	// "resource"). Required.
	Resource string `yaml:"resource" json:"resource"`

	// AuthorizationServers are the issuer URLs of the authorization servers
	// that issue tokens for Resource (RFC 9728 "authorization_servers").
	// Default none (the member is left out).
	AuthorizationServers []string `yaml:"authorizationServers" json:"authorizationServers"`

	// ScopesSupported are the scopes clients may request for Resource (RFC
	// 9728 "scopes_supported"). Default none (left out).
	ScopesSupported []string `yaml:"scopesSupported" json:"scopesSupported"`

	// BearerMethodsSupported are the ways a bearer token may be sent (RFC
	// 9728 "bearer_methods_supported"). Default ["header"], the only one
	// accepted: MCP forbids tokens in a query string, and authz reads only
	// the Authorization header.
	BearerMethodsSupported []string `yaml:"bearerMethodsSupported" json:"bearerMethodsSupported"`

	// ResourceName is a human-readable name for Resource (RFC 9728
	// "resource_name"). Default none (left out).
	ResourceName string `yaml:"resourceName" json:"resourceName"`
}

// document is the JSON served (RFC 9728 section 2 member names).
type document struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// Handler serves one rendered document at its paths.
type Handler struct {
	body  []byte
	paths []string
}

// Validate reports every problem of m, each an *field.Error whose path is
// relative to m ("resource", "authorizationServers[1]").
func (m Metadata) Validate() error {
	var errs []error
	if u, err := url.Parse(m.Resource); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" || u.User != nil {
		errs = append(errs, field.Errorf("resource", "%q: want an absolute http(s) URL without fragment or user", m.Resource))
	}
	for i, s := range m.AuthorizationServers {
		a, err := url.Parse(s)
		if err != nil || (a.Scheme != "http" && a.Scheme != "https") || a.Host == "" || a.Fragment != "" || a.RawQuery != "" {
			errs = append(errs, field.Errorf(fmt.Sprintf("authorizationServers[%d]", i), "%q: want an absolute http(s) URL without query or fragment", s))
		}
	}
	for i, s := range m.BearerMethodsSupported {
		if s != "header" {
			errs = append(errs, field.Errorf(fmt.Sprintf("bearerMethodsSupported[%d]", i), "%q: only \"header\" is supported", s))
		}
	}
	return errors.Join(errs...)
}

// New validates m and renders it once. Its error names each field under
// resourceMetadata.
func New(m Metadata) (*Handler, error) {
	if err := m.Validate(); err != nil {
		return nil, field.Under("resourceMetadata", err)
	}
	u, _ := url.Parse(m.Resource)
	if len(m.BearerMethodsSupported) == 0 {
		m.BearerMethodsSupported = []string{"header"}
	}
	body, err := json.Marshal(document(m))
	if err != nil {
		return nil, fmt.Errorf("resourceMetadata: %w", err)
	}
	paths := []string{wellKnownPath}
	if p := strings.TrimSuffix(u.EscapedPath(), "/"); p != "" {
		paths = append(paths, wellKnownPath+p)
	}
	return &Handler{body: body, paths: paths}, nil
}

// Serves reports whether path is one of the metadata's paths: the well-known
// path and its form suffixed with the resource's path.
func (m *Handler) Serves(path string) bool { return slices.Contains(m.paths, path) }

// ServeHTTP answers GET and HEAD with the document, readable from any origin
// (browser-based MCP clients fetch it cross-origin), and CORS preflights.
func (m *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "max-age=3600")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(m.body)
		}
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "*")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
