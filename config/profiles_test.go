package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// profilesYAML is the exchange of TestKuadrantUseCase3's shape: realm A's
// exchange for context a, the chain A→B for context b, and a static key.
const profilesYAML = `identity:
  issuers:
    - issuerURL: https://127.0.0.1:8443/realms/domain-a
      audiences: [mcp-gateway]
exchange:
  profiles:
    hub:
      caFile: ca.pem
      steps:
        - tokenURL: https://127.0.0.1:8443/realms/domain-a/protocol/openid-connect/token
          clientID: mcp-gateway
          clientSecretFile: secret
          audience: mcp-test/kubernetes-mcp
      expect:
        issuer: https://127.0.0.1:8443/realms/domain-a
        audience: mcp-test/kubernetes-mcp
    spoke:
      caFile: ca.pem
      steps:
        - tokenURL: https://127.0.0.1:8443/realms/domain-a/protocol/openid-connect/token
          clientID: mcp-gateway
          clientSecretFile: secret
          audience: https://127.0.0.1:8443/realms/domain-b
        - grant: jwt-bearer
          tokenURL: https://127.0.0.1:8443/realms/domain-b/protocol/openid-connect/token
          clientID: mcp-gateway
          clientSecretFile: secret
          audience: kubernetes
      expect:
        issuer: https://127.0.0.1:8443/realms/domain-b
        audience: kubernetes
    apikey:
      static:
        secretFile: secret
servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: http://127.0.0.1:8089/mcp
    targets:
      argument: context
      default: a
      values:
        a: {exchange: hub}
        b: {exchange: spoke}
  - name: mcp-test/everything
    prefix: ev_
    url: http://127.0.0.1:8090/mcp
    exchange: apikey
`

func TestProfiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "secret", "s3cret\n")
	write(t, dir, "ca.pem", testCA(t))

	f, err := Parse([]byte(profilesYAML), dir)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	spoke := f.Exchange.Profiles["spoke"]
	if got := spoke.Steps[1].ClientSecretFile; got != filepath.Join(dir, "secret") {
		t.Errorf("steps[1].clientSecretFile resolved to %q", got)
	}
	if got := spoke.CAFile; got != filepath.Join(dir, "ca.pem") {
		t.Errorf("caFile resolved to %q", got)
	}
	if got := f.Exchange.Profiles["apikey"].Static.SecretFile; got != filepath.Join(dir, "secret") {
		t.Errorf("static.secretFile resolved to %q", got)
	}

	tests := []struct {
		name string
		edit func(string) string
		line int
		path string
		msg  string
	}{
		{"a server naming no profile, without a default", func(s string) string {
			return strings.Replace(s, "    exchange: apikey\n", "", 1)
		}, 45, "servers[1].exchange", `no profile named and exchange has no default profile`},
		{"an unknown profile", func(s string) string {
			return strings.Replace(s, "exchange: apikey", "exchange: apikye", 1)
		}, 48, "servers[1].exchange", `"apikye" is not a profile of exchange.profiles`},
		{"a target naming an unknown profile", func(s string) string {
			return strings.Replace(s, "{exchange: spoke}", "{exchange: spok}", 1)
		}, 44, "servers[0].targets.values.b.exchange", `"spok" is not a profile`},
		{"exchange and targets together", func(s string) string {
			return strings.Replace(s, "    targets:\n", "    exchange: hub\n    targets:\n", 1)
		}, 39, "servers[0].exchange", `names its profiles per target`},
		{"a profile token a caller could present", func(s string) string {
			return strings.Replace(s, "audience: mcp-test/kubernetes-mcp\n    spoke", "audience: mcp-gateway\n    spoke", 1)
		}, 16, "exchange.profiles.hub.expect.audience", `also accepted from callers`},
		{"a bad step", func(s string) string {
			return strings.Replace(s, "        - grant: jwt-bearer\n", "        - grant: jwt-beaver\n", 1)
		}, 24, "exchange.profiles.spoke.steps[1].grant", `"jwt-beaver": want token-exchange or jwt-bearer`},
		{"no exchange section", func(s string) string {
			i, j := strings.Index(s, "exchange:\n"), strings.Index(s, "servers:\n")
			return s[:i] + s[j:]
		}, 0, "servers[0].targets.values.a.exchange", `"hub": no exchange section defines profiles`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.edit(profilesYAML)), dir)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse: %v, want an *Error", err)
			}
			for _, p := range e.Problems {
				if p.Path == tt.path && regexp.MustCompile(tt.msg).MatchString(p.Err.Error()) && (tt.line == 0 || p.Line == tt.line) {
					return
				}
			}
			t.Errorf("no problem at line %d, %s matching %q in:\n%v", tt.line, tt.path, tt.msg, err)
		})
	}
}

// testCA is the PEM of a self-signed CA certificate (a caFile's content;
// never used to connect here).
func testCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "config test CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
