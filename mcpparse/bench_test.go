package mcpparse

import (
	"encoding/json"
	"strings"
	"testing"
)

// toolsCall1K is a tools/call of about 1 KiB, most of it arguments.
var toolsCall1K = func() []byte {
	b := `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"kube_pods_list","arguments":{` +
		`"namespace":"default","labelSelector":"app=web,tier=frontend","limit":50,"verbose":true,` +
		`"fields":["metadata.name","metadata.namespace","status.phase","spec.nodeName"],` +
		`"note":"` + strings.Repeat("lorem ipsum dolor sit amet ", 24) + `",` +
		`"filter":{"phase":["Running","Pending"],"since":"2026-01-01T00:00:00Z","node":null}},` +
		`"_meta":{"progressToken":"tok-1"}}}`
	return []byte(b)
}()

var smallCall = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}`)

func benchmarkParse(b *testing.B, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	if n := len(toolsCall1K); n < 1000 || n > 1100 {
		b.Fatalf("body of %d bytes, want about 1 KiB", n)
	}
	benchmarkParse(b, toolsCall1K)
}

func BenchmarkParseSmall(b *testing.B) { benchmarkParse(b, smallCall) }

// BenchmarkEncodingJSON is the reference: encoding/json reading the same
// fields of the 1 KiB body, without any of Parse's checks.
func BenchmarkEncodingJSON(b *testing.B) {
	var m struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
		Params  struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(toolsCall1K)))
	for b.Loop() {
		if err := json.Unmarshal(toolsCall1K, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBatch(b *testing.B) {
	body := []byte("[" + string(smallCall) + "," + string(toolsCall1K) + "]")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseBatch(body, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseAllocs guards the hot path: a tools/call costs one allocation,
// its Name; Method is interned and ID and Arguments share the body.
func TestParseAllocs(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want float64
	}{
		{name: "1 KiB tools/call", body: toolsCall1K, want: 1},
		{name: "small tools/call", body: smallCall, want: 1},
		{name: "notification", body: []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() {
				if _, err := Parse(tc.body, Options{}); err != nil {
					t.Fatal(err)
				}
			})
			if got > tc.want {
				t.Errorf("Parse: %v allocations, want at most %v", got, tc.want)
			}
		})
	}
}
