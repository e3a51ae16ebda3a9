package upstream

import (
	"encoding/json"
	"testing"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// TestWithResultType: a result object without resultType gets
// "complete" first; one with it, and anything else, is kept as sent.
func TestWithResultType(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{name: "empty", in: `{ }`, want: `{"resultType":"complete" }`},
		{name: "members", in: `{"content":[]}`, want: `{"resultType":"complete","content":[]}`},
		{name: "has one", in: `{"resultType":"input_required"}`, want: `{"resultType":"input_required"}`},
		{name: "not an object", in: `[1]`, want: `[1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WithResultType([]byte(tt.in), AnswerOptions(1<<20)); string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRewriteParams: a server of the stateless revision gets its _meta
// (params added when there were none), one of an earlier revision never
// sees it; the rest of the request is kept.
func TestRewriteParams(t *testing.T) {
	opts := mcpparse.Options{MaxBytes: 1 << 20}
	info, caps := []byte(`{"name":"c","version":"1"}`), []byte(`{"x":{}}`)
	tests := []struct {
		name      string
		in        string
		stateless bool
		wantMeta  bool
	}{
		{name: "to stateless, no params", in: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, stateless: true, wantMeta: true},
		{name: "to stateless, null params", in: `{"jsonrpc":"2.0","id":1,"method":"ping","params":null}`, stateless: true, wantMeta: true},
		{name: "to stateless, params", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`, stateless: true, wantMeta: true},
		{name: "to legacy, stripped", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{"` + MetaVersion + `":"2026-07-28"}}}`},
		{name: "to legacy, no params", in: `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := RewriteParams([]byte(tt.in), opts, tt.stateless, info, caps)
			var m struct {
				ID     int `json:"id"`
				Params struct {
					Name string                     `json:"name"`
					Meta map[string]json.RawMessage `json:"_meta"`
				} `json:"params"`
			}
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("not JSON: %s", out)
			}
			_, has := m.Params.Meta[MetaVersion]
			if has != tt.wantMeta || m.ID != 1 {
				t.Errorf("%s: version in _meta %v, want %v", out, has, tt.wantMeta)
			}
			if tt.wantMeta && string(m.Params.Meta[MetaClientInfo]) != string(info) {
				t.Errorf("%s: clientInfo not the client's", out)
			}
		})
	}
}
