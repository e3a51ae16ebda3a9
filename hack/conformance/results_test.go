package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseKnownGaps(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    knownGaps
		wantErr string
	}{
		{
			name: "comments, blank lines and reasons with spaces",
			in: "# header\n\n2025-11-25 ping/ping router answers -32601\n" +
				"  2026-07-28   tools-list/tools-list   stateless requests refused  \n",
			want: knownGaps{
				{Spec: "2025-11-25", Scenario: "ping", Check: "ping"}:             "router answers -32601",
				{Spec: "2026-07-28", Scenario: "tools-list", Check: "tools-list"}: "stateless requests refused",
			},
		},
		{name: "no reason", in: "2025-11-25 ping/ping\n", wantErr: "line 1: want SPEC SCENARIO/CHECK REASON"},
		{name: "no check", in: "2025-11-25 ping because\n", wantErr: `line 1: "ping" is not SCENARIO/CHECK`},
		{name: "empty check", in: "2025-11-25 ping/ because\n", wantErr: `line 1: "ping/" is not SCENARIO/CHECK`},
		{name: "twice", in: "2025-11-25 ping/ping a\n2025-11-25 ping/ping b\n", wantErr: "line 2: 2025-11-25 ping/ping is listed twice"},
		{name: "every bad line reported", in: "x\n2025-11-25 ping/ping ok\ny\n", wantErr: "line 1: want SPEC SCENARIO/CHECK REASON\nline 3: want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKnownGaps(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("a list with errors was returned: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("known gaps (-want +got):\n%s", diff)
			}
		})
	}
}

func run1(name string, checks ...check) results {
	return results{name: {Name: name, Checks: checks}}
}

func TestGaps(t *testing.T) {
	ok := check{ID: "c", Status: "SUCCESS"}
	tests := []struct {
		name            string
		direct, through results
		wantGaps        []gap
		wantInfo        []gap
	}{
		{name: "passes both ways", direct: run1("s", ok), through: run1("s", ok)},
		{
			name:     "fails through",
			direct:   run1("s", ok),
			through:  run1("s", check{ID: "c", Status: "FAILURE"}),
			wantGaps: []gap{{"v", "s", "c"}},
		},
		{
			name:     "warning through is not a pass",
			direct:   run1("s", ok),
			through:  run1("s", check{ID: "c", Status: "WARNING"}),
			wantGaps: []gap{{"v", "s", "c"}},
		},
		{
			name:     "scenario did not run through",
			direct:   run1("s", ok),
			through:  run1("other", ok),
			wantGaps: []gap{{"v", "s", "c"}},
		},
		{
			name:     "check missing through",
			direct:   run1("s", ok, check{ID: "d", Status: "SUCCESS"}),
			through:  run1("s", ok),
			wantGaps: []gap{{"v", "s", "d"}},
		},
		{
			name:     "a check that fails only through",
			direct:   run1("s", ok),
			through:  run1("s", check{ID: "s-error", Status: "FAILURE"}),
			wantGaps: []gap{{"v", "s", "c"}, {"v", "s", "s-error"}},
		},
		{
			name:    "a check that only runs through and passes or is info",
			direct:  run1("s", ok),
			through: run1("s", ok, check{ID: "x", Status: "SUCCESS"}, check{ID: "y", Status: "INFO"}),
		},
		{
			name:    "a scenario failing directly is not judged by its through-only checks",
			direct:  run1("s", check{ID: "c", Status: "FAILURE"}),
			through: run1("s", check{ID: "s-error", Status: "FAILURE"}),
		},
		{
			name:     "info through is not a gap",
			direct:   run1("s", ok),
			through:  run1("s", check{ID: "c", Status: "INFO"}),
			wantInfo: []gap{{"v", "s", "c"}},
		},
		{
			name:    "a check failing directly is not compared",
			direct:  run1("s", check{ID: "c", Status: "FAILURE"}),
			through: run1("s", check{ID: "c", Status: "FAILURE"}),
		},
		{
			name:    "a check info directly is not compared",
			direct:  run1("s", check{ID: "c", Status: "INFO"}),
			through: results{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotGaps, gotInfo := gaps("v", tt.direct, tt.through)
			if diff := cmp.Diff(tt.wantGaps, gotGaps); diff != "" {
				t.Errorf("gaps (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantInfo, gotInfo); diff != "" {
				t.Errorf("info (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	a := gap{"2025-11-25", "s", "a"}
	b := gap{"2025-11-25", "s", "b"}
	other := gap{"2026-07-28", "s", "a"}
	tests := []struct {
		name        string
		measured    []gap
		known       knownGaps
		specs       []string
		fresh, gone []gap
	}{
		{name: "as listed", measured: []gap{a}, known: knownGaps{a: "r"}, specs: []string{a.Spec}},
		{name: "new gap", measured: []gap{a, b}, known: knownGaps{a: "r"}, specs: []string{a.Spec}, fresh: []gap{b}},
		{name: "closed gap", measured: nil, known: knownGaps{a: "r"}, specs: []string{a.Spec}, gone: []gap{a}},
		{name: "a spec that did not run is not judged", measured: []gap{a}, known: knownGaps{a: "r", other: "r"}, specs: []string{a.Spec}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh, gone := verdict(tt.measured, tt.known, tt.specs)
			if diff := cmp.Diff(tt.fresh, fresh); diff != "" {
				t.Errorf("fresh (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.gone, gone); diff != "" {
				t.Errorf("closed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadResults(t *testing.T) {
	write := func(t *testing.T, dir, name, checks string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "checks.json"), []byte(checks), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		dirs    map[string]string
		want    results
		wantErr string
	}{
		{
			name: "scenario names with dashes, repeated ids, other folders ignored",
			dirs: map[string]string{
				"server-tools-call-simple-text-2026-11-29T19-03-29-377Z": `[{"id":"a","status":"SUCCESS"},{"id":"a","status":"FAILURE","errorMessage":"m"}]`,
				"not-a-result": `[]`,
			},
			want: results{"tools-call-simple-text": {Name: "tools-call-simple-text", Checks: []check{
				{ID: "a", Status: "SUCCESS"}, {ID: "a#2", Status: "FAILURE", Message: "m"},
			}}},
		},
		{name: "no results", dirs: map[string]string{"not-a-result": `[]`}, wantErr: "no scenario results"},
		{name: "not JSON", dirs: map[string]string{"server-ping-2026-11-29T19-03-29-377Z": `{`}, wantErr: "server-ping-2026-11-29T19-03-29-377Z"},
		{
			name: "a scenario twice",
			dirs: map[string]string{
				"server-ping-2026-11-29T19-03-29-377Z": `[]`,
				"server-ping-2026-11-29T19-03-30-377Z": `[]`,
			},
			wantErr: "scenario ping ran twice",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, checks := range tt.dirs {
				write(t, dir, name, checks)
			}
			got, err := readResults(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdateReadme(t *testing.T) {
	out := &outcome{Spec: "2025-11-25", Suite: "0.1.16",
		Direct:  run1("ping", check{ID: "ping", Status: "SUCCESS"}),
		Through: run1("ping", check{ID: "ping", Status: "FAILURE"})}
	tests := []struct {
		name, in, want, wantErr string
	}{
		{
			name: "block replaced, the rest kept",
			in:   "# T\n\n" + readmeBegin + "\nold\n" + readmeEnd + "\n\n## Next\n",
			want: "# T\n\n" + readmeBegin + "\n\n2025-11-25 (suite 0.1.16, server stateful): checks passed directly 1/1, through mcp-authz 0/1\n\n" +
				"| scenario | directly | through mcp-authz |\n|---|---|---|\n| ping | ✓ 1/1 | ✗ 0/1 |\n\n" + readmeEnd + "\n\n## Next\n",
		},
		{name: "no block", in: "# T\n", wantErr: "has no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "README.md")
			if err := os.WriteFile(path, []byte(tt.in), 0o644); err != nil {
				t.Fatal(err)
			}
			err := updateReadme(path, []*outcome{out})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(path)
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("README (-want +got):\n%s", diff)
			}
		})
	}
}
