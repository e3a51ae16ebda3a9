package mrtr

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

var opts = mcpparse.Options{MaxBytes: 1 << 20, AnyNumberID: true}

// TestRetryBody: the retry carries the answers and requestState in params
// and the new id; a request that already carries either is refused.
func TestRetryBody(t *testing.T) {
	for _, tc := range []struct {
		name, body, state, want, err string
	}{
		{
			name: "params first", body: `{"params":{"name":"x"},"jsonrpc":"2.0","id":7,"method":"tools/call"}`, state: `"s"`,
			want: `{"params":{"inputResponses":{"k":{}},"requestState":"s","name":"x"},"jsonrpc":"2.0","id":"r","method":"tools/call"}`,
		},
		{
			name: "no state", body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}`,
			want: `{"jsonrpc":"2.0","id":"r","method":"tools/call","params":{"inputResponses":{"k":{}},"name":"x"}}`,
		},
		{
			name: "empty params", body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{ }}`, state: `"s"`,
			want: `{"jsonrpc":"2.0","id":"r","method":"tools/call","params":{"inputResponses":{"k":{}},"requestState":"s" }}`,
		},
		{name: "no params", body: `{"jsonrpc":"2.0","id":7,"method":"tools/call"}`, err: "the call cannot be retried"},
		{
			name: "inputResponses already", body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"inputResponses":{}}}`,
			err: "the request carries inputResponses or requestState, which its protocol revision does not have",
		},
		{
			name: "requestState already", body: `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"requestState":"x"}}`,
			err: "the request carries inputResponses or requestState, which its protocol revision does not have",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var state []byte
			if tc.state != "" {
				state = []byte(tc.state)
			}
			got, err := RetryBody([]byte(tc.body), []byte(`"r"`), []byte(`{"k":{}}`), state, opts)
			if tc.err != "" {
				var e Error
				if !errors.As(err, &e) || e.Error() != tc.err {
					t.Fatalf("got %s, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v\nwant %s", got, err, tc.want)
			}
		})
	}
}

// TestParseInputRequired: a server's InputRequiredResult is read whole or
// refused as malformed.
func TestParseInputRequired(t *testing.T) {
	in, err := ParseInputRequired(json.RawMessage(`{"resultType":"input_required","inputRequests":{"a":{"method":"roots/list"},"b":{"method":"elicitation/create","params":{}}},"requestState":"st"}`), opts)
	if err != nil || len(in.Keys) != 2 || in.Keys[0] != "a" || in.Keys[1] != "b" || string(in.Requests[1]) != `{"method":"elicitation/create","params":{}}` || string(in.State) != `"st"` {
		t.Fatalf("got %+v, %v", in, err)
	}
	for _, tc := range []struct{ name, result string }{
		{"neither", `{"resultType":"input_required"}`},
		{"requests not an object", `{"inputRequests":[1]}`},
		{"state not a string", `{"inputRequests":{},"requestState":1}`},
		{"not an object", `[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if in, err := ParseInputRequired(json.RawMessage(tc.result), opts); !errors.Is(err, errMalformed) {
				t.Errorf("got %+v, %v", in, err)
			}
		})
	}
}

// TestParseRequest: only the three input methods are asked of a client.
func TestParseRequest(t *testing.T) {
	method, mj, params, err := ParseRequest(json.RawMessage(`{"method":"sampling/createMessage","params":{"x":1}}`), opts)
	if err != nil || method != "sampling/createMessage" || string(mj) != `"sampling/createMessage"` || string(params) != `{"x":1}` {
		t.Fatalf("got %q %s %s %v", method, mj, params, err)
	}
	if got := Request(json.RawMessage(`"i"`), mj, params); string(got) != `{"jsonrpc":"2.0","id":"i","method":"sampling/createMessage","params":{"x":1}}` {
		t.Errorf("request %s", got)
	}
	for _, tc := range []struct{ name, req string }{
		{"no method", `{"params":{}}`},
		{"another method", `{"method":"tools/call","params":{}}`},
		{"method not a string", `{"method":1}`},
		{"not an object", `"x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, _, _, err := ParseRequest(json.RawMessage(tc.req), opts); err == nil {
				t.Errorf("accepted %q", m)
			}
		})
	}
}

// TestAskAndResult: the server's request becomes the one input request of
// an InputRequiredResult.
func TestAskAndResult(t *testing.T) {
	for _, tc := range []struct{ name, method, params, want string }{
		{"params", "elicitation/create", `{"message":"m"}`, `{"method":"elicitation/create","params":{"message":"m"}}`},
		{"no params", "roots/list", ``, `{"method":"roots/list","params":{}}`},
		{"null params", "roots/list", `null`, `{"method":"roots/list","params":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var params json.RawMessage
			if tc.params != "" {
				params = json.RawMessage(tc.params)
			}
			ask := Ask(tc.method, params)
			if string(ask) != tc.want {
				t.Fatalf("ask %s", ask)
			}
			want := `{"resultType":"input_required","inputRequests":{"mcp-authz":` + tc.want + `},"requestState":"s"}`
			if got := Result(ask, "s"); string(got) != want {
				t.Errorf("result %s", got)
			}
		})
	}
}

// TestParseResponses: the answer under InputKey must be an object.
func TestParseResponses(t *testing.T) {
	for _, tc := range []struct{ name, responses, want, err string }{
		{"answered", `{"mcp-authz":{"action":"accept"}}`, `{"action":"accept"}`, ""},
		{"not answered", `{"other":{}}`, ``, ""},
		{"not an object", `[]`, ``, "invalid inputResponses"},
		{"answer not an object", `{"mcp-authz":"yes"}`, ``, `invalid inputResponses: "mcp-authz" is not an object`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResponses(json.RawMessage(tc.responses), opts)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got %s, %v", got, err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v", got, err)
			}
		})
	}
}

// TestClientDeclared: a capability counts when present and not null.
func TestClientDeclared(t *testing.T) {
	for _, tc := range []struct {
		name, caps string
		want       bool
	}{
		{"declared", `{"elicitation":{}}`, true},
		{"null", `{"elicitation":null}`, false},
		{"absent", `{"sampling":{}}`, false},
		{"no caps", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var caps json.RawMessage
			if tc.caps != "" {
				caps = json.RawMessage(tc.caps)
			}
			if got := ClientDeclared(caps, opts, "elicitation"); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}
