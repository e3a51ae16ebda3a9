package mcpparse

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the FuzzParse seed corpus in testdata/fuzz/FuzzParse from the test tables")

// fuzzOptions are small limits, so that the fuzzer reaches them.
var fuzzOptions = Options{MaxBytes: 64 << 10, MaxDepth: 16}

// FuzzParse checks properties of Parse and ParseBatch on any input, against
// encoding/json as an independent reference: nothing accepted is malformed,
// holds a duplicate key (ignoring case) or is nested too deep; what is accepted is what
// encoding/json reads; and every error carries a JSON-RPC code.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Parse(body, fuzzOptions)
		if err != nil {
			checkRejected(t, body, m, err)
		} else {
			checkAccepted(t, body, m)
		}

		msgs, berr := ParseBatch(body, fuzzOptions)
		if !IsBatch(body) {
			if Code(berr) != Code(err) {
				t.Fatalf("ParseBatch error %v, Parse error %v", berr, err)
			}
			if err == nil {
				if diff := cmp.Diff([]Message{m}, msgs); diff != "" {
					t.Fatalf("ParseBatch of one message (-Parse +ParseBatch):\n%s", diff)
				}
			}
			return
		}
		if berr != nil {
			checkRejected(t, body, Message{}, berr)
			return
		}
		checkWellFormed(t, body)
		var elems []json.RawMessage
		if err := json.Unmarshal(body, &elems); err != nil {
			t.Fatalf("ParseBatch accepted what encoding/json rejects: %v", err)
		}
		if len(elems) == 0 || len(elems) != len(msgs) {
			t.Fatalf("ParseBatch returned %d messages for %d elements", len(msgs), len(elems))
		}
		for i, e := range elems {
			one, err := Parse(e, fuzzOptions)
			if err != nil {
				t.Fatalf("batch element %d accepted in the batch, rejected alone: %v", i, err)
			}
			// Spans are offsets in the body parsed: the batch's here.
			if diff := cmp.Diff(one, msgs[i], cmpopts.IgnoreFields(Message{}, "IDSpan", "NameSpan")); diff != "" {
				t.Fatalf("batch element %d (-alone +in the batch):\n%s", i, diff)
			}
			checkSpans(t, body, msgs[i])
		}
	})
}

func checkRejected(t *testing.T, body []byte, m Message, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if n := len(err.Error()); n > 512 {
		t.Fatalf("error text of %d bytes: %.80q...", n, err)
	}
	switch e {
	case ErrParse, ErrInvalidRequest, ErrInvalidParams, ErrBatch, ErrTooLarge:
	default:
		t.Fatalf("error %v wraps no sentinel", err)
	}
	if diff := cmp.Diff(Message{}, m); diff != "" {
		t.Fatalf("message returned with error %v:\n%s", err, diff)
	}
	switch {
	case len(body) > fuzzOptions.MaxBytes:
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("body over the limit: error %v, want ErrTooLarge", err)
		}
	case errors.Is(err, ErrBatch):
	case !json.Valid(body) || !utf8.Valid(body):
		if !errors.Is(err, ErrParse) {
			t.Fatalf("malformed JSON: error %v, want ErrParse", err)
		}
	}
}

func checkWellFormed(t *testing.T, body []byte) {
	t.Helper()
	if !json.Valid(body) || !utf8.Valid(body) {
		t.Fatalf("accepted malformed JSON %q", body)
	}
	depth, dup, err := inspect(body)
	if err != nil {
		t.Fatalf("accepted what encoding/json cannot read: %v", err)
	}
	if dup != "" {
		t.Fatalf("accepted duplicate key %q", dup)
	}
	if depth > fuzzOptions.MaxDepth {
		t.Fatalf("accepted nesting of depth %d, limit %d", depth, fuzzOptions.MaxDepth)
	}
}

// checkAccepted compares m with what encoding/json reads in body.
func checkAccepted(t *testing.T, body []byte, m Message) {
	t.Helper()
	checkWellFormed(t, body)
	if IsBatch(body) {
		t.Fatal("Parse accepted a batch")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("accepted what encoding/json cannot read as an object: %v", err)
	}
	for k := range top {
		switch k {
		case "jsonrpc", "id", "method", "params", "result", "error":
		default:
			t.Fatalf("accepted unknown member %q", k)
		}
	}
	if v := decodeString(t, top["jsonrpc"]); v != "2.0" {
		t.Fatalf("accepted jsonrpc %q", v)
	}
	id, hasID := top["id"]
	switch {
	case top["method"] != nil && hasID:
		checkKind(t, m, KindRequest)
	case top["method"] != nil:
		checkKind(t, m, KindNotification)
	case top["result"] != nil:
		checkKind(t, m, KindResponse)
	case top["error"] != nil:
		checkKind(t, m, KindError)
	default:
		t.Fatalf("accepted a message with no method, result or error")
	}
	if !bytes.Equal(m.ID, id) {
		t.Fatalf("ID %q, encoding/json reads %q", m.ID, id)
	}
	if hasID {
		switch c := id[0]; {
		case c == '"', c == '-', c >= '0' && c <= '9':
		case c == 'n' && m.Kind == KindError:
		default:
			t.Fatalf("accepted id %q", id)
		}
	}
	if top["method"] == nil {
		if m.Method != "" || top["params"] != nil {
			t.Fatalf("response with method %q or params", m.Method)
		}
		return
	}
	if method := decodeString(t, top["method"]); m.Method != method {
		t.Fatalf("Method %q, encoding/json reads %q", m.Method, method)
	}
	var params map[string]json.RawMessage
	if p := top["params"]; p != nil {
		if err := json.Unmarshal(p, &params); err != nil || params == nil {
			t.Fatalf("accepted params %q that are not an object", p)
		}
	}
	var want Message
	switch m.Method {
	case "tools/call", "prompts/get":
		want.Name = decodeString(t, params["name"])
		if !ValidName(want.Name) {
			t.Fatalf("accepted name %q", want.Name)
		}
		if a := params["arguments"]; a != nil && string(a) != "null" {
			if a[0] != '{' {
				t.Fatalf("accepted arguments %q", a)
			}
			want.Arguments = a
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		want.URI = decodeString(t, params["uri"])
		if !validURI([]byte(want.URI)) {
			t.Fatalf("accepted uri %q", want.URI)
		}
	}
	got := Message{Name: m.Name, URI: m.URI, Arguments: m.Arguments}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("target (-encoding/json +Parse):\n%s", diff)
	}
}

func checkKind(t *testing.T, m Message, k Kind) {
	t.Helper()
	if m.Kind != k {
		t.Fatalf("Kind %v, want %v", m.Kind, k)
	}
}

func decodeString(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("accepted %q where a string belongs: %v", raw, err)
	}
	return s
}

// inspect reads body with encoding/json's tokenizer and returns its nesting
// depth and a key that some object holds twice, ignoring case, if any.
func inspect(body []byte) (depth int, dup string, err error) {
	type frame struct {
		object, wantKey bool
		keys            []string
	}
	var stack []*frame
	// valueDone notes that the innermost container got a value.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	d := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return depth, dup, nil
		}
		if err != nil {
			return 0, "", err
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k := tok.(string)
			for _, o := range top.keys {
				if strings.EqualFold(o, k) && dup == "" {
					dup = k
				}
			}
			top.keys = append(top.keys, k)
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
		depth = max(depth, len(stack))
	}
}

func TestInspect(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		depth int
		dup   string
	}{
		{name: "flat", body: `{"a":1,"b":"a"}`, depth: 1},
		{name: "nested", body: `{"a":[{"b":{}}],"b":[]}`, depth: 4},
		{name: "duplicate", body: `{"a":{"x":1,"y":[],"x":2}}`, depth: 3, dup: "x"},
		{name: "escaped duplicate", body: `{"a":1,"\u0061":2}`, depth: 1, dup: "a"},
		{name: "duplicate ignoring case", body: `{"name":1,"NAME":2}`, depth: 1, dup: "NAME"},
		{name: "same key in two objects", body: `[{"a":1},{"a":1}]`, depth: 2},
		{name: "key equal to a value", body: `{"a":"b","b":"a"}`, depth: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			depth, dup, err := inspect([]byte(tc.body))
			if err != nil || depth != tc.depth || dup != tc.dup {
				t.Errorf("inspect = %d, %q, %v; want %d, %q", depth, dup, err, tc.depth, tc.dup)
			}
		})
	}
}

// TestCorpus checks that every seed of FuzzParse is there, and writes them
// with -update.
func TestCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	seeds := map[string]string{}
	for _, tc := range goodCases {
		seeds["good-"+fileName(tc.name)] = tc.body
	}
	for _, tc := range badCases {
		if len(tc.body) <= fuzzOptions.MaxBytes {
			seeds["bad-"+fileName(tc.name)] = tc.body
		}
	}
	for _, tc := range batchCases {
		seeds["batch-"+fileName(tc.name)] = tc.body
	}
	if *update {
		// Seeds of cases since renamed or removed go; crashers stay.
		old, _ := filepath.Glob(filepath.Join(dir, "*-*"))
		for _, path := range old {
			if _, ok := seeds[filepath.Base(path)]; !ok {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for name, body := range seeds {
		path := filepath.Join(dir, name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", body)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("seed missing (run go test -run TestCorpus -update): %v", err)
			continue
		}
		if string(got) != want {
			t.Errorf("seed %s out of date (run go test -run TestCorpus -update)", path)
		}
	}
}

func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

// FuzzRoundTrip checks that Parse accepts what encoding/json writes (which
// escapes <, > and &, and replaces invalid UTF-8) whenever the values obey
// the rules, and reads back the same fields.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), int64(1), false, "kube_pods_list", "", "namespace", "default")
	f.Add(uint8(1), int64(-7), true, "code_review", "", "code", "<script>&amp;</script>")
	f.Add(uint8(2), int64(0), false, "", "file:///tmp/caf\u00e9\U0001F600", "", "")
	f.Add(uint8(2), int64(3), true, "", "a\nb", "", "")
	f.Add(uint8(3), int64(1<<62), false, "not a name", "", "\xff", "\xc3")
	f.Add(uint8(0), int64(9), false, "bad name", "", "k", "v")
	f.Fuzz(func(t *testing.T, which uint8, id int64, stringID bool, name, uri, key, value string) {
		methods := []string{"tools/call", "prompts/get", "resources/read", "ping"}
		method := methods[int(which)%len(methods)]
		var idv any = id
		if stringID {
			idv = fmt.Sprint(id, name)
		}
		args := map[string]string{key: value}
		body, err := json.Marshal(map[string]any{
			"jsonrpc": "2.0", "id": idv, "method": method,
			"params": map[string]any{"name": name, "uri": uri, "arguments": args},
		})
		if err != nil {
			t.Fatal(err)
		}
		var back struct {
			Params struct {
				Name, URI string
			}
		}
		if err := json.Unmarshal(body, &back); err != nil {
			t.Fatal(err)
		}
		wantID, _ := json.Marshal(idv)
		wantArgs, _ := json.Marshal(args)
		want := Message{Kind: KindRequest, Method: method, ID: wantID}
		var wantErr error
		switch method {
		case "tools/call", "prompts/get":
			want.Name, want.Arguments = back.Params.Name, wantArgs
			if !ValidName(want.Name) {
				want, wantErr = Message{}, ErrInvalidParams
			}
		case "resources/read":
			want.URI = back.Params.URI
			if !validURI([]byte(want.URI)) {
				want, wantErr = Message{}, ErrInvalidParams
			}
		}
		got, err := Parse(body, Options{})
		if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("Parse(%s) error %v, want %v", body, err, wantErr)
		}
		if diff := cmp.Diff(want, got, located); diff != "" {
			t.Fatalf("Parse(%s) (-want +got):\n%s", body, diff)
		}
		if err == nil {
			checkSpans(t, body, got)
		}
	})
}
