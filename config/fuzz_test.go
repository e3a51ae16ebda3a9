package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse checks that any input either loads or fails with located
// problems, and never panics.
func FuzzParse(f *testing.F) {
	dev, err := os.ReadFile("../dev/mcp-authz.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{string(dev), fullYAML, allowYAML, badYAML, fileYAML, "", "---\n", "a: [\n", "servers: 5\n"} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data, dir)
		if err == nil {
			if _, err := file.Snapshot(); err != nil {
				t.Errorf("loaded, but Snapshot: %v", err)
			}
			if _, err := file.PolicySet(); err != nil {
				t.Errorf("loaded, but PolicySet: %v", err)
			}
			return
		}
		if file != nil {
			t.Errorf("Parse returned %+v with an error", file)
		}
		if !strings.Contains(err.Error(), "line ") {
			t.Errorf("error without a line: %v", err)
		}
	})
}
