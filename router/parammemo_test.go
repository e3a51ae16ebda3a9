package router

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParamMemo: the remembered answer is paramHeaders' for the very bytes
// asked about, never another tool's (two servers' tools of the same name
// with other schemas stay apart), errors included, and the memo stays
// within its bounds.
func TestParamMemo(t *testing.T) {
	var p paramMemo
	for _, tc := range []struct {
		name string
		tool string
		want map[string]string
		err  bool
	}{
		{name: "region header", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":"Region"}}}}`, want: map[string]string{"region": "Region"}},
		{name: "same name, other header", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string","x-mcp-header":"Zone"}}}}`, want: map[string]string{"region": "Zone"}},
		{name: "same name, none", tool: `{"name":"t","inputSchema":{"properties":{"region":{"type":"string"}}}}`, want: map[string]string{}},
		{name: "unreadable", tool: `{"name":"t","inputSchema":[]}`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // computed, then remembered
				got, err := p.headers(json.RawMessage(tc.tool))
				if (err != nil) != tc.err {
					t.Fatalf("err %v, want error %v", err, tc.err)
				}
				if diff := cmp.Diff(tc.want, got); !tc.err && diff != "" {
					t.Errorf("headers (-want +got):\n%s", diff)
				}
			}
		})
	}
	for i := range 2 * paramMemoEntries {
		if _, err := p.headers(json.RawMessage(fmt.Sprintf(`{"name":"t%d","inputSchema":{}}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(p.m); n > paramMemoEntries {
		t.Errorf("memo holds %d entries, bound %d", n, paramMemoEntries)
	}
	big := fmt.Sprintf(`{"name":"big","description":"%s","inputSchema":{}}`, strings.Repeat("a", paramMemoTool))
	before := len(p.m)
	if _, err := p.headers(json.RawMessage(big)); err != nil {
		t.Fatal(err)
	}
	if len(p.m) != before {
		t.Errorf("a tool over %d bytes was remembered", paramMemoTool)
	}
}
