package mcpparse

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// outcome is what Parse or ParseBatch made of one body, as golden JSON.
type outcome struct {
	Name     string    `json:"name"`
	Body     string    `json:"body"`
	Messages []message `json:"messages,omitempty"`
	Code     int       `json:"code,omitempty"`
	Error    string    `json:"error,omitempty"`
}

type message struct {
	Kind      string          `json:"kind"`
	Method    string          `json:"method,omitempty"`
	ID        json.RawMessage `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	URI       string          `json:"uri,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

func newOutcome(name, body string, msgs []Message, err error) outcome {
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	o := outcome{Name: name, Body: body, Code: Code(err)}
	if err != nil {
		o.Error = err.Error()
	}
	for _, m := range msgs {
		o.Messages = append(o.Messages, message{
			Kind: m.Kind.String(), Method: m.Method, ID: m.ID, Name: m.Name, URI: m.URI, Arguments: m.Arguments,
		})
	}
	return o
}

// TestGolden records every answer of the test tables, error texts
// included, in testdata/parse.golden.json (rewritten with -update), so that a
// change in any of them shows in review.
func TestGolden(t *testing.T) {
	var got []outcome
	for _, tc := range goodCases {
		m, err := Parse([]byte(tc.body), Options{})
		got = append(got, newOutcome("good: "+tc.name, tc.body, []Message{m}, err))
	}
	for _, tc := range badCases {
		_, err := Parse([]byte(tc.body), tc.opts)
		got = append(got, newOutcome("bad: "+tc.name, tc.body, nil, err))
	}
	for _, tc := range batchCases {
		msgs, err := ParseBatch([]byte(tc.body), tc.opts)
		got = append(got, newOutcome("batch: "+tc.name, tc.body, msgs, err))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "parse.golden.json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("answers differ from %s; run go test -run TestGolden -update and review the diff", path)
	}
}
