package upstream

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestStatelessParams(t *testing.T) {
	const meta = `{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"io.modelcontextprotocol/protocolVersion":"2026-07-28"`
	for _, tc := range []struct{ name, params, want string }{
		{"none", ``, `{"_meta":` + meta + `}}`},
		{"empty", `{}`, `{"_meta":` + meta + `}}`},
		{"cursor", `{"cursor":"c1"}`, `{"_meta":` + meta + `},"cursor":"c1"}`},
		{"other meta kept", `{"_meta":{"progressToken":3},"name":"t"}`, `{"_meta":` + meta + `,"progressToken":3},"name":"t"}`},
		{"client's version replaced", `{"_meta":{"io.modelcontextprotocol/protocolVersion":"1999-01-01"}}`, `{"_meta":` + meta + `}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p []byte
			if tc.params != "" {
				p = []byte(tc.params)
			}
			got := StatelessParams(p, []byte(`{"name":"c","version":"1"}`), nil)
			if !sameJSON(t, got, tc.want) {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestStripStateless(t *testing.T) {
	for _, tc := range []struct{ name, params, want string }{
		{"no meta", `{"name":"t"}`, `{"name":"t"}`},
		{"only stateless keys", `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{},"io.modelcontextprotocol/clientCapabilities":{}},"name":"t"}`, `{"_meta":{},"name":"t"}`},
		{"progress token kept", `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","progressToken":"p"}}`, `{"_meta":{"progressToken":"p"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stripStateless([]byte(tc.params)); !sameJSON(t, got, tc.want) {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func sameJSON(t *testing.T, a []byte, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
