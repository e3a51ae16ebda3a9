// Package mcpparse decodes JSON-RPC 2.0 MCP messages strictly.
package mcpparse

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/mcp-authz/mcp-authz/mcpparse/internal/jsonscan"
)

// Kind is the kind of a JSON-RPC message.
type Kind uint8

// Message kinds.
const (
	KindRequest      Kind = iota + 1 // a method and an id
	KindNotification                 // a method and no id
	KindResponse                     // a result and an id (a client answering a server request)
	KindError                        // an error and an id, possibly null
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	case KindError:
		return "error"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Message is what authorization needs to know of one JSON-RPC message.
//
// ID and Arguments alias the body given to Parse (no copy is made): they
// change if the body does, so copy them before reusing the body's buffer.
type Message struct {
	Kind Kind
	// Method is the decoded method, 1 to 256 bytes of visible ASCII; "" for
	// responses and errors.
	Method string
	// ID is the id exactly as sent: a JSON string with its quotes and
	// escapes, or an integer. It is nil for notifications, and may be null
	// for an error.
	ID json.RawMessage
	// Name is params.name of tools/call and prompts/get, or
	// params.ref.name of a completion/complete for a ref/prompt, decoded; it
	// is a ValidName.
	Name string
	// URI is params.uri of resources/read, resources/subscribe and
	// resources/unsubscribe, or params.ref.uri (a resource template's URI)
	// of a completion/complete for a ref/resource, decoded; it is never
	// empty and holds no control character.
	URI string
	// Ref is params.ref.type of completion/complete: "ref/prompt" or
	// "ref/resource"; "" for other methods.
	Ref string
	// Arguments is params.arguments of tools/call and prompts/get, a JSON
	// object as sent; nil if absent or null.
	Arguments json.RawMessage

	// IDSpan locates ID in the body; zero when there is no id.
	IDSpan Span
	// NameSpan locates params.name of tools/call and prompts/get (or
	// params.ref.name of completion/complete) in the body: the JSON string as sent, quotes included, so that a caller can
	// put another name in its place without decoding the body again (see
	// Splice); zero when Name is "".
	NameSpan Span
	// Params is the params object as sent, whatever the method; nil if
	// absent.
	Params json.RawMessage
	// Cursor is params.cursor as sent (any JSON value: its type is the
	// method's affair, see String); nil if absent.
	Cursor json.RawMessage
	// RequestID is params.requestId as sent (notifications/cancelled);
	// nil if absent.
	RequestID json.RawMessage
	// TaskID is params.taskId of the requests of one task (TaskMethod),
	// decoded; never empty for them, "" for other methods. TaskIDSpan
	// locates it in the body (the JSON string as sent), as NameSpan does.
	TaskID     string
	TaskIDSpan Span
	// Meta is params._meta as sent; nil if absent.
	Meta json.RawMessage
	// Result is the result object of a response, Error the error object
	// of an error, as sent; nil otherwise.
	Result, Error json.RawMessage
}

// Span locates a value in the body given to Parse: body[Start:End].
type Span struct{ Start, End int }

// Splice returns a copy of body with the value at s replaced by v.
func Splice(body []byte, s Span, v []byte) []byte {
	out := make([]byte, 0, len(body)-(s.End-s.Start)+len(v))
	out = append(out, body[:s.Start]...)
	out = append(out, v...)
	return append(out, body[s.End:]...)
}

// Options bounds what Parse and ParseBatch accept.
type Options struct {
	// MaxBytes is the largest body accepted, in bytes; 0 (or less) means 1 MiB.
	MaxBytes int
	// MaxDepth is the deepest nesting of objects and arrays accepted, the
	// message itself at depth 1 (a batch array too); 0 (or less) means 64.
	MaxDepth int
	// CaseSensitiveKeys compares keys exactly (after decoding escapes)
	// rather than folded: a duplicate key is still refused, but keys that
	// differ only in case are two keys, and params members are not checked
	// for another case. It is for messages from an upstream MCP server,
	// whose results (a tool's output) may hold such keys and are read by
	// the router's strict, case-sensitive decoding only; it MUST NOT be set
	// for a client's message that authorization reads.
	CaseSensitiveKeys bool
	// AnyNumberID accepts an id that is any JSON number (1.0, 7e0, 1.5),
	// not only an integer, for a reader that matches ids by their value
	// (AppendIDKey) and judges them itself.
	AnyNumberID bool
}

// Default limits.
const (
	DefaultMaxBytes = jsonscan.DefaultMaxBytes
	DefaultMaxDepth = jsonscan.DefaultMaxDepth
)

// Parse decodes one JSON-RPC 2.0 message, strictly. Its errors wrap:
//
//   - ErrTooLarge: the body is longer than Options.MaxBytes;
//   - ErrBatch: the body is a JSON array (see ParseBatch);
//   - ErrParse: the body is not one well-formed JSON value (RFC 8259, in
//     UTF-8, with no lone surrogate escape and nothing after it);
//   - ErrInvalidRequest: the body is not a valid message: a member other
//     than jsonrpc, id, method, params, result and error, spelt exactly;
//     two keys of one object, at any level, equal once decoded and folded
//     (FoldKey: ignoring case, Unicode simple folding included); nesting
//     deeper than Options.MaxDepth; "jsonrpc" other than "2.0"; an id other
//     than a string or an integer (or null, on an error); a method that is
//     empty, longer than 256 bytes or outside visible ASCII; tools/call,
//     prompts/get or resources/read, subscribe or unsubscribe without an id;
//     a result that is not an object, an error other than {code, message,
//     data};
//   - ErrInvalidParams: params that are not an object; a params member
//     that differs from one the MCP schema defines for params (name, uri,
//     arguments, _meta, cursor...) only once folded, such as "ARGUMENTS" or
//     "argument\u017f" (encoding/json would read it as that member); tools/call or
//     prompts/get without a params.name that is a ValidName, or with
//     params.arguments that are not an object; resources/read, subscribe or
//     unsubscribe without a non-empty params.uri free of control characters.
//
// A syntax error anywhere in the body takes precedence over any other, as
// JSON-RPC asks. The returned Message shares memory with body (see Message).
func Parse(body []byte, o Options) (Message, error) {
	var p scanner
	if err := p.init(body, o); err != nil {
		return Message{}, err
	}
	if p.Peek() == '[' {
		return Message{}, fmt.Errorf("%w: JSON array", ErrBatch)
	}
	m, err := p.message(1)
	if err == nil {
		err = p.End()
	}
	if err != nil {
		return Message{}, wellFormed(body, err)
	}
	return m, nil
}

// ParseBatch decodes a JSON-RPC batch, a non-empty array of messages each
// checked as Parse checks one, or a single message, returned alone. The
// limits apply to the whole body; the array counts as one level of nesting.
// One bad element fails the whole batch.
func ParseBatch(body []byte, o Options) ([]Message, error) {
	var p scanner
	if err := p.init(body, o); err != nil {
		return nil, err
	}
	if p.Peek() != '[' {
		m, err := Parse(body, o)
		if err != nil {
			return nil, err
		}
		return []Message{m}, nil
	}
	msgs, err := p.batch()
	if err == nil {
		err = p.End()
	}
	if err != nil {
		return nil, wellFormed(body, err)
	}
	return msgs, nil
}

func (p *scanner) batch() ([]Message, error) {
	empty, err := p.Open(1, ']')
	if err != nil {
		return nil, err
	}
	if empty {
		return nil, fmt.Errorf("%w: empty batch", ErrInvalidRequest)
	}
	var msgs []Message
	for more := true; more; {
		m, err := p.message(2)
		if err != nil {
			return nil, fmt.Errorf("batch element %d: %w", len(msgs), err)
		}
		msgs = append(msgs, m)
		if more, err = p.Next(']'); err != nil {
			return nil, err
		}
	}
	return msgs, nil
}

// wellFormed gives a syntax error precedence over err, found first, as
// JSON-RPC asks: a body that is not well-formed JSON is a parse error
// whatever else is wrong with it.
func wellFormed(body []byte, err error) error {
	if errors.Is(err, ErrParse) {
		return err
	}
	if !json.Valid(body) || !utf8.Valid(body) {
		return fmt.Errorf("%w: malformed JSON", ErrParse)
	}
	return err
}

// IsBatch reports whether the first byte of body that is not JSON white
// space is '[', the start of a batch.
func IsBatch(body []byte) bool {
	var p jsonscan.Scanner
	p.Buf = body
	p.WS()
	return p.Peek() == '['
}

// ValidName reports whether s is a valid MCP tool or prompt name: 1 to 128
// characters of [A-Za-z0-9_.-].
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameChar[s[i]] {
			return false
		}
	}
	return true
}

var nameChar = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == '-'
	}
	return t
}()
