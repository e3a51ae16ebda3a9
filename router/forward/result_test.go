package forward

import (
	"testing"

	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// TestPrivateScopeFolded: a server cannot keep its read result "public"
// for a client that decodes with encoding/json (which reads keys
// case-insensitively) by spelling the member in another case: every
// member that is cacheScope once folded is made "private"; a result
// without one, or already private, is left byte for byte.
func TestPrivateScopeFolded(t *testing.T) {
	fw := &Forwarder{answer: upstream.AnswerOptions(1 << 20)}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"exact", `{"contents":[],"cacheScope":"public"}`, `{"contents":[],"cacheScope":"private"}`},
		{"folded only", `{"contents":[],"cachescope":"public"}`, `{"contents":[],"cachescope":"private"}`},
		{"exact and folded", `{"cacheScope":"private","CACHESCOPE":"public","ttlMs":5}`, `{"cacheScope":"private","CACHESCOPE":"private","ttlMs":5}`},
		{"both public", `{"cacheScope":"public","cachescope":"public"}`, `{"cacheScope":"private","cachescope":"private"}`},
		{"none", `{"contents":[],"ttlMs":5}`, `{"contents":[],"ttlMs":5}`},
		{"nested left", `{"contents":[{"cacheScope":"public"}]}`, `{"contents":[{"cacheScope":"public"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(fw.privateScope([]byte(tc.in))); got != tc.want {
				t.Errorf("privateScope(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
