package authz

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcp-authz/mcp-authz/policy"
)

// TestVisible: the list filter is the policy evaluated as tools/call of each
// target; a repeated filtering is answered from the cache, and a policy
// reload is seen at once.
func TestVisible(t *testing.T) {
	s := newTestServer(t, Config{}, policy.Policy{Name: "no-delete", CEL: `mcp.tool.name != "pods_delete"`})
	targets := []policy.Target{
		{Server: "mcp-test/kubernetes-mcp", Tool: "pods_list"},
		{Server: "mcp-test/kubernetes-mcp", Tool: "pods_delete"},
		{Server: "mcp-test/everything", Tool: "echo"},
	}
	for i := range 2 {
		got, err := s.Visible(t.Context(), "", targets)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]bool{true, false, true}, got); diff != "" {
			t.Errorf("call %d (-want +got):\n%s", i, diff)
		}
	}
	if s.seen.Len() != 1 {
		t.Errorf("cached filterings = %d, want 1", s.seen.Len())
	}
	set, err := policy.Compile(policy.Config{Policies: []policy.Policy{{Name: "echo-only", CEL: `mcp.tool.name == "echo"`}}})
	if err != nil {
		t.Fatal(err)
	}
	s.policy.(*policy.Engine).Store(set)
	got, err := s.Visible(t.Context(), "", targets)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]bool{false, false, true}, got); diff != "" {
		t.Errorf("after a reload (-want +got):\n%s", diff)
	}
}
