// Package realms serves several devidp realms on one listener, HTTP or
// HTTPS, as one Keycloak serves several: development and tests only.
package realms

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/devidp"
)

// Config is one listener serving several realms, as one Keycloak serves
// several: every realm is at BaseURL/realms/<realm>, and a realm names
// another of the same server by Peer.Realm or IdentityProvider.Realm.
type Config struct {
	// Realms are the realms served; their BaseURL is set by the server.
	// Realm names must differ.
	Realms []devidp.Config
	// TLS, when set, serves HTTPS; nil serves plain HTTP.
	TLS *TLSConfig
	// KeysFile keeps every realm's signing keys in one JSON file (mode 0600,
	// private keys in clear): read at start, created or rewritten when keys
	// are made or rotated, so tokens survive a restart. "" keeps keys in
	// memory only: every start has new keys.
	KeysFile string
}

// TLSConfig is how the server serves HTTPS.
type TLSConfig struct {
	// CertFile and KeyFile are a PEM certificate (chain) and its key to
	// serve. Both empty: the server makes a test CA and a certificate from it
	// for 127.0.0.1, ::1, localhost and the listen address, valid 30 days.
	CertFile, KeyFile string
	// CAFile, when set, receives the PEM of the CA that clients must trust
	// (the generated CA; with CertFile, the last certificate of the chain).
	CAFile string
}

// Server serves several realms on one listener, HTTP or HTTPS.
type Server struct {
	baseURL string
	ln      net.Listener
	realms  map[string]*devidp.Provider
	order   []*devidp.Provider // as configured
	handler http.Handler
	caPEM   []byte
	client  *http.Client
}

// New listens on addr (a loopback address such as "127.0.0.1:0"),
// builds every realm at https://<bound address> (http without TLS) and
// returns the server; Start serves it.
func New(cfg Config, addr string) (*Server, error) {
	if len(cfg.Realms) == 0 {
		return nil, errors.New("devidp: server: no realms")
	}
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listen: %w", err)
	}
	s, err := newServer(cfg, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

func newServer(cfg Config, ln net.Listener) (*Server, error) {
	s := &Server{ln: ln, realms: map[string]*devidp.Provider{}, baseURL: "http://" + ln.Addr().String()}
	if cfg.TLS != nil {
		cert, caPEM, err := serverCert(*cfg.TLS, ln.Addr())
		if err != nil {
			return nil, fmt.Errorf("devidp: tls: %w", err)
		}
		if cfg.TLS.CAFile != "" {
			if err := os.WriteFile(cfg.TLS.CAFile, caPEM, 0o644); err != nil {
				return nil, fmt.Errorf("devidp: tls: %w", err)
			}
		}
		s.caPEM = caPEM
		s.ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		s.baseURL = "https://" + ln.Addr().String()
	}
	s.client = trusting(s.caPEM)
	o := devidp.Deps{Client: s.client}
	if cfg.KeysFile != "" {
		o.Keys = &keyFile{path: cfg.KeysFile}
	}
	mux := http.NewServeMux()
	for _, rc := range cfg.Realms {
		rc.BaseURL = s.baseURL
		p, err := devidp.New(rc, o)
		if err != nil {
			return nil, err
		}
		name := p.Realm()
		if s.realms[name] != nil {
			return nil, fmt.Errorf("devidp: realm %q: served twice", name)
		}
		s.realms[name] = p
		s.order = append(s.order, p)
		mux.Handle("/realms/"+name+"/", p.Handler())
		mux.Handle("/admin/realms/"+name+"/", p.Handler())
	}
	s.handler = mux
	return s, nil
}

// Start serves until ctx ends, then shuts down (controller-runtime's
// Runnable). It returns nil after a clean shutdown.
func (s *Server) Start(ctx context.Context) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(s.ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("devidp: serve: %w", err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			return fmt.Errorf("devidp: shutdown: %w", err)
		}
		return nil
	}
}

// Realm is the named realm's provider (Issuer, TokenURL, RotateKeys), nil
// when the server has no such realm.
func (s *Server) Realm(name string) *devidp.Provider { return s.realms[name] }

// Realms are the realms' providers, in the configured order.
func (s *Server) Realms() []*devidp.Provider { return slices.Clone(s.order) }

// BaseURL is https://host:port (http without TLS).
func (s *Server) BaseURL() string { return s.baseURL }

// Handler serves every realm; Start serves it on the listener.
func (s *Server) Handler() http.Handler { return s.handler }

// CAPEM is the PEM of the CA that signed the serving certificate (for a
// kube-apiserver's AuthenticationConfiguration certificateAuthority); nil
// without TLS.
func (s *Server) CAPEM() []byte { return s.caPEM }

// Client is an HTTP client that trusts the system roots and CAPEM.
func (s *Server) Client() *http.Client { return s.client }

// trusting is an HTTP client that trusts the system roots and the PEM
// certificates of caPEM.
func trusting(caPEM []byte) *http.Client {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(caPEM)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: t, Timeout: 10 * time.Second}
}

// serverCert loads the configured certificate or makes a test CA and a
// serving certificate for addr; it returns the certificate and the CA PEM.
func serverCert(c TLSConfig, addr net.Addr) (tls.Certificate, []byte, error) {
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return cert, nil, err
		}
		root := cert.Certificate[len(cert.Certificate)-1]
		return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root}), nil
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "devidp test CA (development and tests only)"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(30 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "devidp"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsLoopback() && !ta.IP.IsUnspecified() {
		leaf.IPAddresses = append(leaf.IPAddresses, ta.IP)
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}
