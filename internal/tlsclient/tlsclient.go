// Package tlsclient builds HTTP clients that trust a CA bundle besides (or
// instead of) the roots they had: a private-CA identity provider, token
// endpoint or MCP server.
package tlsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// ErrNoCertificate is returned for a bundle without a PEM certificate.
var ErrNoCertificate = errors.New("no PEM certificate")

// Pool returns base's certificates (the system roots when base is nil)
// plus those of pem, leaving base unchanged.
func Pool(base *x509.CertPool, pem []byte) (*x509.CertPool, error) {
	pool := base
	if pool == nil {
		var err error
		if pool, err = x509.SystemCertPool(); err != nil {
			pool = x509.NewCertPool()
		}
	} else {
		pool = pool.Clone()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, ErrNoCertificate
	}
	return pool, nil
}

// ReadPool is Pool with the bundle read from file.
func ReadPool(base *x509.CertPool, file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := Pool(base, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return pool, nil
}

// WithCAFile returns a copy of client (nil: http.DefaultClient) whose
// transport trusts file's certificates besides its own roots; its other
// settings stay.
func WithCAFile(client *http.Client, file string) (*http.Client, error) {
	if client == nil {
		client = http.DefaultClient
	}
	t, err := transport(client)
	if err != nil {
		return nil, err
	}
	pool, err := ReadPool(t.TLSClientConfig.RootCAs, file)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig.RootCAs = pool
	c := *client
	c.Transport = t
	return &c, nil
}

// transport clones client's transport, with a TLS configuration of its own.
func transport(client *http.Client) (*http.Transport, error) {
	var t *http.Transport
	switch base := client.Transport.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		t = base.Clone()
	default:
		return nil, fmt.Errorf("a CA of its own needs an *http.Transport, not %T", base)
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		t.TLSClientConfig = t.TLSClientConfig.Clone()
	}
	return t, nil
}
