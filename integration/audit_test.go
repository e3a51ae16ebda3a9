//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// traced adds a W3C traceparent header to every request.
type traced struct {
	next        http.RoundTripper
	traceparent string
}

func (t traced) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("traceparent", t.traceparent)
	return t.next.RoundTrip(req)
}

// TestAuditTrail: alice's tools/call through front -> authz -> router ->
// a real go-sdk server, with a traceparent, is one decision event and one
// upstream event in the audit file (mode 0600), with the same trace id;
// no token is in the file.
func TestAuditTrail(t *testing.T) {
	p := startIdP(t, "")
	kube := startGoServer(t, "mcp-test/kubernetes-mcp", "pods_list", "pods_delete")
	routerAddr := freePort(t)
	trail := filepath.Join(t.TempDir(), "audit.jsonl")
	s := startStack(t, "http://"+routerAddr, identityConfig(p)+fmt.Sprintf(`router:
  listen: %s
audit:
  output: %s
servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s
`, routerAddr, trail, kube.url)+routerPolicy)
	waitPort(t, routerAddr, s.proc)

	alice := p.login(t, "alice")
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	cs := connect(t, &mcp.StreamableClientTransport{
		Endpoint: s.url(), MaxRetries: -1,
		HTTPClient: &http.Client{Transport: traced{bearer{token: alice}, "00-" + trace + "-00f067aa0ba902b7-01"}},
	}, nil)
	if _, err := callTool(t, cs, &mcp.CallToolParams{Name: "kube_pods_list", Arguments: map[string]any{"namespace": "secret-value"}}); err != nil {
		t.Fatalf("kube_pods_list: %v", err)
	}

	var decision, upstream map[string]any
	var data []byte
	if !until(time.Now().Add(10*time.Second), func() bool {
		var err error
		if data, err = os.ReadFile(trail); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var e map[string]any
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("audit line %q: %v", sc.Text(), err)
			}
			if e["method"] != "tools/call" || e["tool"] != "pods_list" {
				continue
			}
			switch e["kind"] {
			case "decision":
				decision = e
			case "upstream":
				upstream = e
			}
		}
		return decision != nil && upstream != nil
	}) {
		t.Fatalf("no decision and upstream event for the tools/call in 10s:\n%s", data)
	}
	t.Logf("decision event: %s", mustJSON(t, decision))
	t.Logf("upstream event: %s", mustJSON(t, upstream))
	for name, e := range map[string]map[string]any{"decision": decision, "upstream": upstream} {
		if e["schema"] != "mcp-authz.audit/v1" || e["trace_id"] != trace || e["server"] != "mcp-test/kubernetes-mcp" ||
			e["issuer"] != p.issuer || e["subject"] == "" || e["subject"] == nil {
			t.Errorf("%s event: %v", name, e)
		}
	}
	if decision["subject"] != upstream["subject"] {
		t.Errorf("subjects differ: %v, %v", decision["subject"], upstream["subject"])
	}
	if decision["decision"] != "allow" || decision["reason"] != "allowed" || decision["client_id"] == nil {
		t.Errorf("decision event: %v", decision)
	}
	if upstream["status"] != 200.0 {
		t.Errorf("upstream event status: %v", upstream["status"])
	}
	if _, ok := decision["steps"]; !ok {
		t.Errorf("decision event names no exchange step: %v", decision)
	}
	for _, secret := range []string{alice, "secret-value", "Bearer"} {
		if strings.Contains(string(data), secret) {
			t.Errorf("the audit trail holds %.20q", secret)
		}
	}
	fi, err := os.Stat(trail)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", fi.Mode().Perm())
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
