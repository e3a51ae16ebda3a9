package mcpparse

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMethodsOfTheSpec: the method table holds exactly the methods of
// revisions 2025-11-25 and 2026-07-28 (testdata/methods.txt, derived from
// the specification's schemas; the earlier revisions served have no method
// 2025-11-25 lacks). A method added to the list of the spec without the
// parser's table, or the other way round, fails here.
func TestMethodsOfTheSpec(t *testing.T) {
	f, err := os.Open("testdata/methods.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var spec []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 || len(fields) > 4 {
			t.Fatalf("methods.txt: %q is not \"revision method direction [extension]\"", line)
		}
		spec = append(spec, fields[1])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(spec)
	spec = slices.Compact(spec)
	var table []string
	for m := range methods {
		table = append(table, m)
	}
	slices.Sort(table)
	if diff := cmp.Diff(spec, table); diff != "" {
		t.Errorf("methods of the spec (-) and of mcpparse's table (+):\n%s", diff)
	}
	// The table interns: a method parsed comes back as the table's string.
	for _, m := range spec {
		got, err := methodName([]byte(m))
		if err != nil || got != m {
			t.Errorf("methodName(%q) = %q, %v", m, got, err)
		}
	}
}
