//go:build integration

package integration

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPolicyThroughFront is issue 4's walk, once with the Rego and once with
// the CEL version of the shipped Keycloak-roles example: alice, who has the
// role pods_list, can call kube_pods_list and gets 403 tool_denied for
// kube_pods_delete.
func TestPolicyThroughFront(t *testing.T) {
	p := startIdP(t, "")
	for _, file := range []string{"keycloak-roles.rego", "keycloak-roles.cel"} {
		t.Run(file, func(t *testing.T) {
			up := startRecorder(t)
			dir := t.TempDir()
			policyPath := filepath.Join(dir, file)
			copyFile(t, repoFile("examples/policies/keycloak-roles/"+file), policyPath)
			s := startStack(t, up.url(), identityConfig(p)+fmt.Sprintf(`servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s
policies:
  - name: keycloak-roles
    file: %s
`, up.url(), policyPath))
			alice := "Bearer " + p.login(t, "alice")
			expect(t, s, alice, "kube_pods_list", http.StatusOK, "")
			expect(t, s, alice, "kube_pods_delete", http.StatusForbidden, "tool_denied")
		})
	}
}

// TestPolicyReload: editing the policy file changes the decision without a
// restart, and a broken edit keeps the old decision.
func TestPolicyReload(t *testing.T) {
	up := startRecorder(t)
	dir := t.TempDir()
	policyPath := writeFile(t, dir, "tools.cel", `mcp.tool.name == "pods_list"`)
	s := startStack(t, up.url(), fmt.Sprintf(`servers:
  - name: mcp-test/kubernetes-mcp
    prefix: kube_
    url: %s
policies:
  - name: tools
    file: %s
`, up.url(), policyPath))
	expect(t, s, "", "kube_pods_list", http.StatusOK, "")
	expect(t, s, "", "kube_pods_delete", http.StatusForbidden, "tool_denied")

	replaceFile(t, policyPath, `mcp.tool.name in ["pods_list", "pods_delete"]`)
	eventually(t, func() bool { return status(t, s, "", "kube_pods_delete") == http.StatusOK })

	replaceFile(t, policyPath, `mcp.tool.name in [`) // does not compile
	time.Sleep(3 * time.Second)                      // longer than a reload takes
	expect(t, s, "", "kube_pods_delete", http.StatusOK, "")
	expect(t, s, "", "kube_pods_list", http.StatusOK, "")
	if !strings.Contains(s.proc.out.String(), "config reload refused") {
		t.Error("the refused reload was not logged")
	}
	resp, body := get(t, "http://"+s.metrics+"/metrics")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "mcp_authz_config_reload_errors_total 1") {
		t.Errorf("reload error metric: %d\n%s", resp.StatusCode, grep(body, "reload"))
	}
}

func expect(t *testing.T, s *stack, authorization, tool string, wantStatus int, wantReason string) {
	t.Helper()
	h := map[string]string{}
	if authorization != "" {
		h["Authorization"] = authorization
	}
	resp, body := post(t.Context(), t, s.url(), toolCall(tool), h)
	if resp.StatusCode != wantStatus {
		t.Errorf("%s: status %d, want %d: %s", tool, resp.StatusCode, wantStatus, body)
	}
	if wantReason != "" && !strings.Contains(string(body), `"reason":"`+wantReason+`"`) {
		t.Errorf("%s: body %s, want reason %s", tool, body, wantReason)
	}
}

func status(t *testing.T, s *stack, authorization, tool string) int {
	t.Helper()
	h := map[string]string{}
	if authorization != "" {
		h["Authorization"] = authorization
	}
	resp, _ := post(t.Context(), t, s.url(), toolCall(tool), h)
	return resp.StatusCode
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

// replaceFile writes a file the way editors do: a new file renamed over it.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func grep(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
