package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditSection: the audit section's keys, its output resolved against
// the file's directory (stdout and stderr kept), and its errors by path.
func TestAuditSection(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		yaml    string
		output  string
		wantErr string // a substring of the error; "" for none
	}{
		{name: "file", yaml: "audit:\n  output: audit/trail.jsonl\n  argumentNames: true\n  required: true\n  buffer: 16\n", output: filepath.Join(dir, "audit/trail.jsonl")},
		{name: "stdout", yaml: "audit: {output: stdout}\n", output: "stdout"},
		{name: "stderr", yaml: "audit: {output: stderr}\n", output: "stderr"},
		{name: "default", yaml: "audit: {}\n", output: ""},
		{name: "negative buffer", yaml: "audit: {buffer: -1}\n", wantErr: "audit.buffer"},
		{name: "unknown key", yaml: "audit: {outptu: stdout}\n", wantErr: "audit.outptu"},
		{name: "argument values are not a switch", yaml: "audit: {argumentValues: true}\n", wantErr: "audit.argumentValues"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(tt.yaml), dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Audit == nil || f.Audit.Output != tt.output {
				t.Fatalf("audit %+v, want output %q", f.Audit, tt.output)
			}
		})
	}
}
