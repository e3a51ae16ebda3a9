package catalog

import (
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// TestPageTTL: ttlMs bounds a list in every revision; a 0 means "do not
// keep" only from 2026-07-28 on, where the field is defined.
func TestPageTTL(t *testing.T) {
	tests := []struct {
		name, body, version string
		want                time.Duration
		ok                  bool
	}{
		{name: "absent", body: `{}`, version: "2026-07-28"},
		{name: "2s", body: `{"ttlMs":2000}`, version: "2025-06-18", want: 2 * time.Second, ok: true},
		{name: "0 in 2026", body: `{"ttlMs":0}`, version: "2026-07-28", ok: true},
		{name: "0 in 2025", body: `{"ttlMs":0}`, version: "2025-11-25"},
		{name: "negative", body: `{"ttlMs":-5}`, version: "2025-11-25", ok: true},
		{name: "not a number", body: `{"ttlMs":"60000"}`, version: "2025-11-25", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := mcpparse.Fields([]byte(tt.body), mcpparse.Options{}, "ttlMs")
			if err != nil {
				t.Fatal(err)
			}
			got, ok := pageTTL(f[0].Raw, tt.version)
			if got != tt.want || ok != tt.ok {
				t.Errorf("pageTTL(%s, %s) = %v, %v; want %v, %v", tt.body, tt.version, got, ok, tt.want, tt.ok)
			}
		})
	}
}
