package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/syncbuf"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func jwksSize(addr string) (int, error) {
	resp, err := http.Get("http://" + addr + "/realms/mcp/protocol/openid-connect/certs")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var jwks struct{ Keys []json.RawMessage }
	err = json.NewDecoder(resp.Body).Decode(&jwks)
	return len(jwks.Keys), err
}

// TestServe runs the command on a loopback port: it serves the dev realm,
// prints the curl hint, rotates keys on SIGHUP and stops when ctx ends.
func TestServe(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncbuf.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--config", "../../dev/realm.yaml", "--listen", addr}, &stdout, &stderr)
	}()
	var n int
	var err error
	for range 100 {
		if n, err = jwksSize(addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || n != 1 {
		t.Fatalf("jwks: %d keys, %v; stderr:\n%s", n, err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "curl -s http://"+addr+"/realms/mcp/protocol/openid-connect/token -d grant_type=password -d client_id=mcp-cli") {
		t.Errorf("stdout lacks the curl hint:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "issuer=http://"+addr+"/realms/mcp") {
		t.Errorf("log lacks the issuer:\n%s", stderr.String())
	}

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if n, _ = jwksSize(addr); n == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n != 2 {
		t.Errorf("after SIGHUP the jwks has %d keys, want 2", n)
	}

	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d; stderr:\n%s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRefusesBadStart(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"non-loopback listen", []string{"--config", "../../dev/realm.yaml", "--listen", "0.0.0.0:0"}},
		{"missing config", []string{"--config", "nonexistent.yaml", "--listen", "127.0.0.1:0"}},
		{"unknown flag", []string{"--nope"}},
		{"ca-out without TLS", []string{"--listen", "127.0.0.1:0", "--ca-out", "ca.pem"}},
		{"tls and tls-cert", []string{"--listen", "127.0.0.1:0", "--tls", "--tls-cert", "c.pem", "--tls-key", "k.pem"}},
		{"missing tls-cert", []string{"--listen", "127.0.0.1:0", "--tls-cert", "nonexistent.pem", "--tls-key", "nonexistent.pem"}},
		{"same realm twice", []string{"--listen", "127.0.0.1:0", "--config", "../../dev/realm.yaml", "--config", "../../dev/realm.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := run(t.Context(), tt.args, &out, &out); code == 0 {
				t.Errorf("exit code 0; output:\n%s", out.String())
			}
		})
	}
}

// TestServeTwoRealmsTLS runs the two trust domains over HTTPS with the test
// CA written to --ca-out and the keys kept in --keys.
func TestServeTwoRealmsTLS(t *testing.T) {
	addr := freeAddr(t)
	dir := t.TempDir()
	caFile, keys := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "keys.json")
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncbuf.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"--config", "../../dev/realm-a.yaml", "--config", "../../dev/realm-b.yaml", "--listen", addr,
			"--tls", "--ca-out", caFile, "--keys", keys}, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("exit code %d; stderr:\n%s", c, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
	}()
	var client *http.Client
	for range 100 {
		if pem, err := os.ReadFile(caFile); err == nil && len(pem) > 0 {
			pool := x509.NewCertPool()
			if pool.AppendCertsFromPEM(pem) {
				client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if client == nil {
		t.Fatalf("no CA in %s; stderr:\n%s", caFile, stderr.String())
	}
	for _, realm := range []string{"domain-a", "domain-b"} {
		var d struct{ Issuer string }
		var err error
		for range 100 {
			var resp *http.Response
			if resp, err = client.Get("https://" + addr + "/realms/" + realm + "/.well-known/openid-configuration"); err == nil {
				err = json.NewDecoder(resp.Body).Decode(&d)
				resp.Body.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || d.Issuer != "https://"+addr+"/realms/"+realm {
			t.Errorf("%s discovery: %+v, %v", realm, d, err)
		}
	}
	if fi, err := os.Stat(keys); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file: %v", err)
	}
	if !strings.Contains(stdout.String(), "curl -s --cacert "+caFile+" https://"+addr+"/realms/domain-a/protocol/openid-connect/token") {
		t.Errorf("stdout lacks the curl hint:\n%s", stdout.String())
	}
}
