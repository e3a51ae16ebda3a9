package router

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcp-authz/mcp-authz/registry"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// serverCert issues a server certificate for 127.0.0.1.
func (ca *testCA) serverCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveTLS serves s over TLS on loopback with a certificate of ca.
func serveTLS(t *testing.T, s *mcp.Server, ca *testCA) *httptest.Server {
	t.Helper()
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}, MinVersion: tls.VersionTLS12}
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
	good, wrong := newTestCA(t, "good CA"), newTestCA(t, "wrong CA")
	tlsSrv := serveTLS(t, alphaMCP(), good)
	plain := betaServer(t)
	reg := func(ca []byte) []registry.Server {
		return []registry.Server{
			{Name: "ns/tls", Prefix: "tls_", URL: tlsSrv.URL, CACert: ca},
			{Name: "ns/beta", Prefix: "beta_", URL: plain.URL},
		}
	}
	e := newEnv(t, func(c *Config) { c.ListRefresh = time.Millisecond }, reg(good.pem)...)
	tests := []struct {
		name string
		ca   []byte
		ok   bool
	}{
		{name: "own CA", ca: good.pem, ok: true},
		{name: "wrong CA", ca: wrong.pem, ok: false},
		{name: "no CA: system roots", ca: nil, ok: false},
		{name: "both, one right", ca: append(slices.Clone(wrong.pem), good.pem...), ok: true},
		{name: "own CA again", ca: good.pem, ok: true},
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
