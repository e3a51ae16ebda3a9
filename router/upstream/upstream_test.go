package upstream

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// roundTripperFunc is an http.RoundTripper that is not an *http.Transport.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestOwnCA: a server with a CA of its own is reached through a client of
// its own that trusts that CA alone, kept while the CA stays the same and
// replaced when it changes; what cannot be done that way is refused, never
// done with the shared client.
func TestOwnCA(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/mcp", http.StatusTemporaryRedirect)
	}))
	defer tlsSrv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	otherCA := selfSigned(t) // httptest's servers all share one certificate

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name   string
			rt     http.RoundTripper
			target Target
		}{
			{name: "http url", target: Target{Server: "ns/a", URL: "http://127.0.0.1/mcp", CACert: ca}},
			{name: "no PEM", target: Target{Server: "ns/a", URL: tlsSrv.URL, CACert: []byte("not a certificate")}},
			{name: "transport of another kind", rt: roundTripperFunc(http.DefaultTransport.RoundTrip),
				target: Target{Server: "ns/a", URL: tlsSrv.URL, CACert: ca}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := New(Config{Transport: tc.rt})
				resp, err := c.Post(t.Context(), tc.target, Headers{}, []byte(`{}`))
				if !errors.Is(err, ErrTLSConfig) {
					if resp != nil {
						resp.Body.Close()
					}
					t.Fatalf("Post: %v, want ErrTLSConfig", err)
				}
			})
		}
	})

	t.Run("pinned", func(t *testing.T) {
		c := New(Config{})
		a := Target{Server: "ns/a", URL: tlsSrv.URL, CACert: ca}
		h1, err := c.transportFor(a)
		if err != nil {
			t.Fatal(err)
		}
		if h1 == c.rt {
			t.Fatal("a server with its own CA shares the default transport")
		}
		tr := c.pinned["ns/a"].tr
		if tr.TLSClientConfig.InsecureSkipVerify || !tr.TLSClientConfig.RootCAs.Equal(pool(t, ca)) {
			t.Fatal("the client does not trust exactly the server's CA")
		}
		if h2, _ := c.transportFor(Target{Server: "ns/a", URL: tlsSrv.URL, CACert: append([]byte(nil), ca...)}); h2 != h1 {
			t.Error("the same CA built a new client")
		}
		if hb, _ := c.transportFor(Target{Server: "ns/b", URL: tlsSrv.URL, CACert: ca}); hb == h1 {
			t.Error("two servers share one client")
		}
		if h3, _ := c.transportFor(Target{Server: "ns/a", URL: tlsSrv.URL, CACert: otherCA}); h3 == h1 {
			t.Error("a changed CA kept the old client")
		}

		// Verified against the CA: the server's redirect is its answer,
		// not followed (to plain HTTP here).
		resp, err := c.Post(t.Context(), a, Headers{}, []byte(`{}`))
		if err != nil {
			t.Fatalf("Post with the server's CA: %v", err)
		}
		Drain(resp)
		if resp.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("status %d, want the redirect itself", resp.StatusCode)
		}
		// With another server's CA, the handshake fails.
		resp, err = c.Post(t.Context(), Target{Server: "ns/a", URL: tlsSrv.URL, CACert: otherCA}, Headers{}, []byte(`{}`))
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			if resp != nil {
				resp.Body.Close()
			}
			t.Errorf("Post with another CA: %v, want an unknown authority", err)
		}
	})
}

// TestRetain: the transport of a server with a CA of its own goes, its
// idle connections closed, once the server left or dropped its CA; those of
// servers kept stay as they were.
func TestRetain(t *testing.T) {
	var closed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c := New(Config{})
	for _, name := range []string{"ns/gone", "ns/kept"} {
		resp, err := c.Post(t.Context(), Target{Server: name, URL: srv.URL, CACert: ca}, Headers{}, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		Drain(resp)
	}
	kept := c.pinned["ns/kept"]
	c.Retain(func(name string) bool { return name == "ns/kept" })
	if _, ok := c.pinned["ns/gone"]; ok {
		t.Error("the transport of a server that left is kept")
	}
	if c.pinned["ns/kept"] != kept {
		t.Error("the transport of a server kept was replaced")
	}
	deadline := time.Now().Add(5 * time.Second)
	for closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // the server sees the close after the client
	}
	if n := closed.Load(); n != 1 {
		t.Errorf("%d connections closed, want the one of the server that left", n)
	}
}

func pool(t *testing.T, pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no PEM")
	}
	return p
}

// selfSigned is a CA certificate of its own, as PEM.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestNoRedirect: a server's redirect is its answer. The request, with the
// credential minted for that server, never goes to the URL it names, on
// the same host or another.
func TestNoRedirect(t *testing.T) {
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	}))
	defer other.Close()
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" {
					reached.Add(1)
					return
				}
				to := other.URL + "/mcp"
				if status == http.StatusTemporaryRedirect {
					to = "/moved" // the same host
				}
				http.Redirect(w, r, to, status)
			}))
			defer srv.Close()
			c := New(Config{})
			resp, err := c.Post(t.Context(), Target{Server: "ns/a", URL: srv.URL + "/mcp"}, Headers{Auth: "Bearer for-a"}, []byte(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			Drain(resp)
			if resp.StatusCode != status {
				t.Errorf("status %d, want the redirect itself (%d)", resp.StatusCode, status)
			}
			if n := reached.Load(); n != 0 {
				t.Fatalf("the redirect was followed %d times", n)
			}
		})
	}
}

// TestWrapTransport: the wrapper (tracing's) is on every request, also to a
// server with a CA of its own, which is still reached through a transport
// that trusts that CA alone.
func TestWrapTransport(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	var wrapped atomic.Int32
	c := New(Config{WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			wrapped.Add(1)
			return rt.RoundTrip(r)
		})
	}})
	for i, target := range []Target{{Server: "ns/plain", URL: plain.URL}, {Server: "ns/tls", URL: tlsSrv.URL, CACert: ca}} {
		resp, err := c.Post(t.Context(), target, Headers{}, []byte(`{}`))
		if err != nil {
			t.Fatalf("%s: %v", target.Server, err)
		}
		Drain(resp)
		if n := wrapped.Load(); n != int32(i+1) {
			t.Fatalf("%s: %d requests wrapped, want %d", target.Server, n, i+1)
		}
	}
}

// countingConn counts the writes made on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int32
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestPostOneWrite: a request to a server goes out in one write, headers
// and body together (the transport writes a body it does not know to be in
// memory after the headers, in writes of its own: a syscall more per call),
// and a request sent again on a fresh connection after its reused one
// closed carries the whole body again.
func TestPostOneWrite(t *testing.T) {
	var bodies atomic.Int32
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got, _ := io.ReadAll(r.Body); bytes.Equal(got, body) {
			bodies.Add(1)
		}
	}))
	defer srv.Close()
	var writes atomic.Int32
	tr := http.DefaultTransport.(*http.Transport).Clone()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &writes}, nil
	}
	c := New(Config{Transport: tr})
	for i := range 3 {
		before := writes.Load()
		resp, err := c.Post(t.Context(), Target{Server: "ns/a", URL: srv.URL + "/mcp"}, Headers{Auth: "Bearer for-a"}, body)
		if err != nil {
			t.Fatal(err)
		}
		Drain(resp)
		if n := writes.Load() - before; n != 1 {
			t.Errorf("request %d: %d writes, want 1", i, n)
		}
	}
	if n := bodies.Load(); n != 3 {
		t.Errorf("the server read the whole body %d times of 3", n)
	}
	req, err := c.newRequest(t.Context(), http.MethodPost, Target{URL: srv.URL}, http.Header{}, body)
	if err != nil {
		t.Fatal(err)
	}
	again, err := req.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(again); !bytes.Equal(got, body) {
		t.Errorf("GetBody gave %q", got)
	}
}
