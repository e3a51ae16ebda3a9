package identity

import (
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

// caFile writes the PEM of the CA that signed p's certificate.
func caFile(t *testing.T, p *provider) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Certificate().Raw})
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestIssuerCAFile: an issuer whose certificate a private CA signed is
// trusted with its caFile, and only that issuer: another issuer of the same
// Verifier, without one, is still refused over HTTPS (fail closed, as an
// unreachable provider).
func TestIssuerCAFile(t *testing.T) {
	private, other := newTLSProvider(t), newTLSProvider(t)
	clk := newClock(start)
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	v, err := New(Config{
		Issuers: []Issuer{
			{IssuerURL: private.issuer, Audiences: []string{"mcp-gateway"}, CAFile: caFile(t, private)},
			{IssuerURL: other.issuer, Audiences: []string{"mcp-gateway"}},
		},
		Timeout: 2 * time.Second,
	}, Deps{HTTPClient: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(t.Context(), private.sign(t, "rsa-1", private.claims(clk.Now(), "mcp-gateway")))
	if err != nil {
		t.Fatalf("Verify() of the issuer with caFile: %v", err)
	}
	if id.Issuer != private.issuer {
		t.Errorf("Issuer = %q, want %q", id.Issuer, private.issuer)
	}
	if _, err := v.Verify(t.Context(), other.sign(t, "rsa-1", other.claims(clk.Now(), "mcp-gateway"))); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Verify() of the issuer without caFile: error = %v, want ErrUnavailable", err)
	}
	if tc := client.Transport.(*http.Transport).TLSClientConfig; tc != nil && tc.RootCAs != nil {
		t.Error("New() added roots to the shared client's transport")
	}
}

func TestIssuerCAFileRefused(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, want string
	}{
		{"missing", filepath.Join(dir, "absent.pem"), "no such file"},
		{"not PEM", notPEM, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Issuers: []Issuer{{IssuerURL: "https://idp.example/realms/mcp", Audiences: []string{"mcp-gateway"}, CAFile: tt.file}}}
			err := c.Validate()
			var fe *field.Error
			if !errors.As(err, &fe) || fe.Path != "issuers[0].caFile" || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error at issuers[0].caFile containing %q", err, tt.want)
			}
			if _, err := New(c, Deps{}); err == nil {
				t.Error("New() accepted the config")
			}
		})
	}
}
