package router

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/assertion"
)

// signingFront stands in for authz in front of the router: it signs each
// request's body as authz would, for clients that cannot sign themselves.
func signingFront(t *testing.T, target string, key assertion.Key, subject string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	s := assertion.NewSigner(key)
	p := &httputil.ReverseProxy{
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			body, _ := io.ReadAll(pr.In.Body)
			pr.Out.Body = io.NopCloser(bytes.NewReader(body))
			var m struct {
				Method string `json:"method"`
			}
			_ = json.Unmarshal(body, &m)
			v, err := s.Sign(assertion.Claims{Method: m.Method, Subject: subject, BodyHash: assertion.BodyHash(body)})
			if err == nil {
				pr.Out.Header.Set(assertion.Header, v)
			}
			pr.Out.Header.Set("Authorization", "Bearer caller-"+subject)
		},
	}
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	return front.URL
}

// TestInspector lists and calls tools through the router with the MCP
// inspector CLI (MCP_AUTHZ_INSPECTOR; its node_modules/.bin holds Node 22).
func TestInspector(t *testing.T) {
	bin := os.Getenv("MCP_AUTHZ_INSPECTOR")
	if bin == "" {
		t.Skip("MCP_AUTHZ_INSPECTOR is unset: `make tools` installs the inspector CLI (make test sets it)")
	}
	e, _, _ := twoServers(t, nil)
	front := signingFront(t, e.front.URL, e.key, "alice")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), bin, append([]string{"--cli", front + "/mcp", "--transport", "http"}, args...)...)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("inspector %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("--method", "tools/list"); !strings.Contains(out, "alpha_echo") || !strings.Contains(out, "beta_add") {
		t.Errorf("tools/list:\n%s", out)
	}
	if out := run("--method", "tools/call", "--tool-name", "beta_add", "--tool-arg", "a=2", "--tool-arg", "b=40"); !strings.Contains(out, "42") {
		t.Errorf("tools/call:\n%s", out)
	}
}
