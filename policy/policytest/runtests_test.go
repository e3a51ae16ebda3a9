package policytest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/format"
)

func TestRunTestsExamples(t *testing.T) {
	var out bytes.Buffer
	failed, err := RunTests(t.Context(), filepath.Join("..", "..", "examples", "policies"), &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("RunTests: %v", err)
	}
	if failed != 0 {
		t.Fatalf("RunTests: %d failed", failed)
	}
	if !strings.Contains(out.String(), "PASS: ") {
		t.Errorf("no summary line in output")
	}
}

func TestRunTestsFailures(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		wantFailed int
		wantLine   string
	}{
		{
			name: "rego test fails",
			files: map[string]string{
				"p.rego":      "package mcp.authz\n\ndefault allow := false\n",
				"p_test.rego": "package mcp.authz_test\n\nimport data.mcp.authz\n\ntest_allows if authz.allow\n\ntest_denies if not authz.allow\n",
			},
			wantFailed: 1,
			wantLine:   "data.mcp.authz_test.test_allows: FAIL",
		},
		{
			name: "cel case fails",
			files: map[string]string{
				"p.cel": `jwt.sub == "admin"`,
				"p_test.yaml": "policies: [p.cel]\ncases:\n" +
					"  - name: admin\n    input: {identity: {sub: admin}}\n    allow: true\n" +
					"  - name: wrong expectation\n    input: {identity: {sub: bob}}\n    allow: true\n",
			},
			wantFailed: 1,
			wantLine:   "wrong expectation [p.cel]: FAIL",
		},
		{
			name: "reason mismatch fails",
			files: map[string]string{
				"cases.yaml": "cases:\n  - name: r\n    expression: 'jwt.missing == \"x\"'\n    input: {identity: {sub: x}}\n    allow: false\n    reason: policy_error\n" +
					"  - name: r2\n    expression: 'false'\n    input: {}\n    allow: false\n    reason: policy_error\n",
			},
			wantFailed: 1,
			wantLine:   "r2 [expression]: FAIL",
		},
		{
			name: "broken policy is an error",
			files: map[string]string{
				"p.cel":       `jwt.sub`,
				"p_test.yaml": "policies: [p.cel]\ncases:\n  - name: any\n    input: {}\n    allow: false\n",
			},
			wantFailed: 1,
			wantLine:   "any [p.cel]: ERROR",
		},
		{
			name: "bad rego is an error",
			files: map[string]string{
				"p.rego":      "package mcp.authz\n\nallow if {\n",
				"p_test.rego": "package mcp.authz_test\n\ntest_x if true\n",
			},
			wantFailed: 1,
			wantLine:   "ERROR",
		},
		{
			name: "unknown input key is an error",
			files: map[string]string{
				"cases.yaml": "cases:\n  - name: typo\n    expression: 'true'\n    input: {mcp: {tool_name: x}}\n    allow: true\n",
			},
			wantFailed: 1,
			wantLine:   "typo [expression]: ERROR",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, src := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			failed, err := RunTests(t.Context(), dir, &out)
			if err != nil {
				t.Fatalf("RunTests: %v\n%s", err, out.String())
			}
			if failed != tt.wantFailed {
				t.Errorf("failed = %d, want %d\n%s", failed, tt.wantFailed, out.String())
			}
			if !strings.Contains(out.String(), tt.wantLine) {
				t.Errorf("output lacks %q:\n%s", tt.wantLine, out.String())
			}
			if !strings.Contains(out.String(), "FAIL: ") {
				t.Errorf("output lacks the FAIL summary:\n%s", out.String())
			}
		})
	}
}

func TestRunTestsNoTests(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package mcp.authz\n\nallow := true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RunTests(t.Context(), dir, &bytes.Buffer{}); err == nil {
		t.Error("RunTests over a directory without tests: want an error")
	}
	if _, err := RunTests(t.Context(), filepath.Join(dir, "missing"), &bytes.Buffer{}); err == nil {
		t.Error("RunTests over a missing directory: want an error")
	}
}

// TestExamplesFormatted keeps the shipped Rego as opa fmt writes it.
func TestExamplesFormatted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "policies", "*", "*.rego"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Rego examples (%v)", err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := format.Source(f, src)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if diff := cmp.Diff(string(src), string(got)); diff != "" {
			t.Errorf("%s is not opa fmt formatted (-file +formatted):\n%s", f, diff)
		}
	}
}
