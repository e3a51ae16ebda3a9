package mcpparse

import (
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
