package router

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/internal/tlstest"
	"github.com/mcp-authz/mcp-authz/registry"
)

// serveTLS serves s over TLS on loopback with a certificate of ca.
func serveTLS(t *testing.T, s *mcp.Server, ca *tlstest.CA) *httptest.Server {
	t.Helper()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.ServerCert(t, "127.0.0.1")}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestUpstreamOwnCA: a server registered with a CA of its own (Kuadrant's
// caCertSecretRef) is reached over TLS verified against that CA alone: its
// tools are listed and called. With another CA, or with none (the system
// roots do not hold the test CA), it fails closed: left out of the list,
// its calls answered with an error. A changed CA applies at once.
func TestUpstreamOwnCA(t *testing.T) {
	good, wrong := tlstest.NewCA(t, "good CA"), tlstest.NewCA(t, "wrong CA")
	tlsSrv := serveTLS(t, alphaMCP(), good)
	plain := betaServer(t)
	reg := func(ca []byte) []registry.Server {
		return []registry.Server{
			{Name: "ns/tls", Prefix: "tls_", URL: tlsSrv.URL, CACert: ca},
			{Name: "ns/beta", Prefix: "beta_", URL: plain.URL},
		}
	}
	e := newEnv(t, func(c *Config) { c.ListRefresh = time.Millisecond }, reg(good.PEM)...)
	tests := []struct {
		name string
		ca   []byte
		ok   bool
	}{
		{name: "own CA", ca: good.PEM, ok: true},
		{name: "wrong CA", ca: wrong.PEM, ok: false},
		{name: "no CA: system roots", ca: nil, ok: false},
		{name: "both, one right", ca: append(slices.Clone(wrong.PEM), good.PEM...), ok: true},
		{name: "own CA again", ca: good.PEM, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.store(reg(tc.ca)...)
			cs, _ := e.client("alice", nil)
			tools := toolNames(t, cs)
			if got := slices.Contains(tools, "tls_echo"); got != tc.ok {
				t.Errorf("tls_echo listed: %v, want %v (tools %q)", got, tc.ok, tools)
			}
			if !slices.Contains(tools, "beta_add") {
				t.Errorf("beta_add not listed: %q", tools)
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "tls_echo", Arguments: map[string]any{"text": "hi"}})
			switch {
			case tc.ok && err != nil:
				t.Fatalf("tls_echo: %v", err)
			case tc.ok:
				if got := resultText(t, res); got != "hi|Bearer up-ns/tls" {
					t.Errorf("tls_echo answered %q", got)
				}
			case err == nil && !res.IsError:
				t.Errorf("tls_echo succeeded with %s: %+v", tc.name, res.Content)
			}
		})
	}
}
