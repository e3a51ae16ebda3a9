//go:build integration

package integration

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/mcp-authz/mcp-authz/internal/tlstest"
)

// sampleServer is a go-sdk MCP server on loopback with one tool, whoami,
// that answers with the server's name; over TLS with cert when given; when
// apiKey is set, requests without Authorization: apiKey get 401.
func sampleServer(t *testing.T, name, apiKey string, cert *tls.Certificate) (port int) {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: name, Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "names the server"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil, nil
	})
	var h http.Handler = mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
	if apiKey != "" {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != apiKey {
				http.Error(w, "api key required", http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewUnstartedServer(h)
	if cert != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ = strconv.Atoi(p)
	return port
}

// applySamples creates the objects of Kuadrant's samples
// (manifests/examples/kuadrant-samples) in their namespace, changed only
// where this machine needs it: no Istio runs here, so the ServiceEntry is
// left out; the Services become ExternalName Services of 127.0.0.1 at the
// test servers' ports (cluster DNS does not resolve here); the external
// server's Hostname becomes localhost at its server's port; the CA Secret
// holds the test server's CA.
func applySamples(t *testing.T, cp *controlPlane, ports map[string]int, remotePort int, caPEM []byte) {
	t.Helper()
	const ns = "mcp-samples"
	for _, file := range []string{"namespace.yaml", "external.yaml", "api-key.yaml", "https.yaml", "user-specific.yaml"} {
		b, err := os.ReadFile(repoFile(filepath.Join("manifests/examples/kuadrant-samples", file)))
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(string(b)), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if u.GetKind() != "Namespace" {
				u.SetNamespace(ns)
			}
			set := func(v any, path ...string) {
				t.Helper()
				if err := unstructured.SetNestedField(u.Object, v, path...); err != nil {
					t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
				}
			}
			switch u.GetKind() {
			case "ServiceEntry":
				continue
			case "Service":
				port, ok := ports[u.GetName()]
				if !ok {
					t.Fatalf("no test server for Service %s", u.GetName())
				}
				svcPorts, _, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
				if len(svcPorts) != 1 {
					t.Fatalf("Service %s has %d ports, want 1", u.GetName(), len(svcPorts))
				}
				p := svcPorts[0].(map[string]any)
				p["port"], p["targetPort"] = int64(port), int64(port)
				set([]any{p}, "spec", "ports")
				set("ExternalName", "spec", "type")
				set("127.0.0.1", "spec", "externalName")
				unstructured.RemoveNestedField(u.Object, "spec", "selector")
			case "HTTPRoute":
				rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
				for _, r := range rules {
					for _, ref := range r.(map[string]any)["backendRefs"].([]any) {
						ref := ref.(map[string]any)
						if ref["kind"] == "Hostname" {
							ref["name"], ref["port"] = "localhost", int64(remotePort)
						} else {
							ref["port"] = int64(ports[ref["name"].(string)])
						}
					}
				}
				set(rules, "spec", "rules")
			case "Secret":
				if _, ok, _ := unstructured.NestedString(u.Object, "stringData", "ca.crt"); ok {
					set(string(caPEM), "stringData", "ca.crt")
				}
			}
			if err := cp.client.Create(t.Context(), u); err != nil {
				t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
			}
			if u.GetKind() == "HTTPRoute" {
				acceptRoute(t, cp, u)
			}
		}
	}
}

// TestKuadrantSamples is the deploy issue's item 5 "Done when": Kuadrant's
// own sample registrations (an external server behind an Istio Hostname, an
// API-key server with credentialRef, an HTTPS server with caCertSecretRef,
// a server with userSpecificList) each end Ready and their tools are
// called through front, authz and router, each from a real go-sdk MCP
// server on loopback.
//
// The external server is reached as Kuadrant's sample says, over https at
// the Hostname, but the Hostname is localhost (the loopback, without
// touching the machine's resolver) at its server's port, and its
// certificate is issued by a test CA that the mcp-authz process takes for
// a public CA: SSL_CERT_FILE, in that process's environment only, makes it
// the system roots. The HTTPS server's certificate is issued by another
// CA, which only its registration's Secret holds: it is not in the system
// roots, so a call that succeeds verified it against caCertSecretRef.
func TestKuadrantSamples(t *testing.T) {
	cp := startControlPlane(t)
	public, private := tlstest.NewCA(t, "public test CA"), tlstest.NewCA(t, "tls-server CA")
	remoteCert, tlsCert := public.ServerCert(t, "localhost"), private.ServerCert(t, "127.0.0.1")
	remotePort := sampleServer(t, "remote", "", &remoteCert)
	ports := map[string]int{
		"api-key-server":  sampleServer(t, "api-key", "Bearer test-api-key", nil),
		"tls-server":      sampleServer(t, "tls", "", &tlsCert),
		"per-user-server": sampleServer(t, "per-user", "", nil),
	}
	roots := writeFile(t, t.TempDir(), "roots.pem", string(public.PEM))

	front := startKubeStack(t, cp, []string{"SSL_CERT_FILE=" + roots})

	applySamples(t, cp, ports, remotePort, private.PEM)

	tests := []struct {
		name, registration, tool, answer string
		skip                             string
	}{
		{name: "external server behind a Hostname", registration: "remote-mcp", tool: "remote_whoami", answer: "remote"},
		{name: "API key", registration: "api-key-server", tool: "apikey_whoami", answer: "api-key"},
		{name: "own CA", registration: "tls-server", tool: "tls_whoami", answer: "tls"},
		{name: "user-specific lists", registration: "per-user-server", tool: "user_whoami", answer: "per-user"},
	}
	for _, tc := range tests {
		var ready metav1.Condition
		waitFor(t, tc.registration+" Ready", 20*time.Second, func() bool {
			c, ok, err := cp.readyCondition(t.Context(), "mcp-samples", tc.registration)
			if err != nil {
				t.Fatalf("read registration %s: %v", tc.registration, err)
			}
			ready = c
			return ok && c.Status == metav1.ConditionTrue
		})
		t.Logf("%s Ready: %s: %s", tc.registration, ready.Reason, ready.Message)
	}

	cs := connectAs(t, "http://"+front+"/mcp", "", nil)
	var tools []*mcp.Tool
	waitFor(t, "user_whoami listed", 20*time.Second, func() bool {
		tools = tools[:0]
		for tool, err := range cs.Tools(t.Context(), nil) {
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			tools = append(tools, tool)
		}
		return slices.ContainsFunc(tools, func(tl *mcp.Tool) bool { return tl.Name == "user_whoami" })
	})
	listed := func(name string) *mcp.Tool {
		i := slices.IndexFunc(tools, func(tl *mcp.Tool) bool { return tl.Name == name })
		if i < 0 {
			return nil
		}
		return tools[i]
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			if listed(tc.tool) == nil {
				t.Errorf("%s is not listed", tc.tool)
			}
			text, err := callTool(t, cs, &mcp.CallToolParams{Name: tc.tool})
			if err != nil {
				t.Fatalf("%s: %v", tc.tool, err)
			}
			if text != tc.answer {
				t.Errorf("%s answered %q, want %q", tc.tool, text, tc.answer)
			}
		})
	}
	t.Run("registration in _meta", func(t *testing.T) {
		tool := listed("user_whoami")
		if tool == nil {
			t.Fatal("user_whoami is not listed")
		}
		want := map[string]any{
			"mcp-authz.dev/category": []any{"identity"},
			"mcp-authz.dev/hint":     "Tools that depend on who calls",
			"mcp-authz.dev/tags":     []any{"per-user"},
		}
		for k, v := range want {
			if got := fmt.Sprint(tool.Meta[k]); got != fmt.Sprint(v) {
				t.Errorf("user_whoami _meta[%q] = %s, want %s", k, got, v)
			}
		}
	})
}
