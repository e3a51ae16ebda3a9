//go:build integration

package integration

import (
	"fmt"
	"net/http"
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
	waitFor(t, "the edited policy to allow kube_pods_delete", 10*time.Second, func() bool { return status(t, s, "", "kube_pods_delete") == http.StatusOK })

	replaceFile(t, policyPath, `mcp.tool.name in [`) // does not compile
	waitFor(t, "the broken edit to be refused", 10*time.Second, func() bool {
		_, body := get(t, "http://"+s.metrics+"/metrics")
		return metric(body, "mcp_authz_config_reload_errors_total") >= 1
	})
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
