package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// message is one JSON-RPC 2.0 message, its parts kept raw.
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

func (m *message) isRequest() bool      { return m.Method != "" && m.ID != nil }
func (m *message) isNotification() bool { return m.Method != "" && m.ID == nil }
func (m *message) isResponse() bool {
	return m.Method == "" && m.ID != nil && (m.Result != nil) != (m.Error != nil)
}

var errMessage = errors.New("router: not a JSON-RPC 2.0 message")

func parseMessage(b []byte) (*message, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", errMessage, err)
	}
	if m.JSONRPC != "2.0" || (!m.isRequest() && !m.isNotification() && !m.isResponse()) {
		return nil, errMessage
	}
	if m.ID != nil && !validID(m.ID) {
		return nil, fmt.Errorf("%w: id", errMessage)
	}
	return &m, nil
}

// validID accepts a JSON string or number.
func validID(id json.RawMessage) bool {
	if len(id) == 0 || !json.Valid(id) {
		return false
	}
	c := id[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9')
}

// maxSafeID bounds integer ids: 2^53-1, the largest integer every JSON
// implementation (JavaScript's, go-sdk's float64 decoding) keeps exactly.
const maxSafeID = 1<<53 - 1

// idKey is the value of an id, so that ids spelled differently compare
// equal: "s" and the decoded string, or "n" and the integer in decimal.
//
// JSON-RPC 2.0 matches a response to its request by the id's value, and
// MCP ids are strings or integers; JSON spells one value many ways
// ("\u0061" is "a", "a\/b" is "a/b", 1.0 and 1e0 are 1, -0 is 0) and
// upstreams re-encode ids (go-sdk decodes numbers to float64 and strings
// to Go strings). A string never equals a number ("1" is not 1). ok is
// false for anything else: a number that is not an integer or lies beyond
// ±(2^53-1), which no upstream can be trusted to send back unchanged.
func idKey(id json.RawMessage) (key string, ok bool) {
	var buf [64]byte
	k, ok := appendIDKey(buf[:0], id)
	return string(k), ok
}

// appendIDKey appends idKey(id) to dst.
func appendIDKey(dst []byte, id json.RawMessage) ([]byte, bool) {
	id = bytes.Trim(id, " \t\r\n") // JSON's whitespace
	if len(id) == 0 {
		return dst, false
	}
	if id[0] == '"' {
		if len(id) >= 2 && id[len(id)-1] == '"' && plainJSONString(id[1:len(id)-1]) {
			return append(append(dst, 's'), id[1:len(id)-1]...), true
		}
		var s string
		if json.Unmarshal(id, &s) != nil {
			return dst, false
		}
		return append(append(dst, 's'), s...), true
	}
	n, ok := integerID(id)
	if !ok {
		return dst, false
	}
	return strconv.AppendInt(append(dst, 'n'), n, 10), true
}

// plainJSONString reports whether b, between quotes, is a JSON string that
// needs no decoding: valid UTF-8 without escapes, quotes or control bytes.
func plainJSONString(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c == '"' || c < 0x20 {
			return false
		}
	}
	return utf8.Valid(b)
}

// integerID reads a JSON number whose value is an integer within
// ±maxSafeID, in any spelling (1, 1.0, 1e0, 10E-1, -0).
func integerID(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	intEnd := 0
	for intEnd < len(b) && b[intEnd] >= '0' && b[intEnd] <= '9' {
		intEnd++
	}
	if intEnd == 0 || (b[0] == '0' && intEnd > 1) {
		return 0, false
	}
	var buf [32]byte
	digits := append(buf[:0], b[:intEnd]...)
	exp := 0
	rest := b[intEnd:]
	if len(rest) > 0 && rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return 0, false
		}
		digits = append(digits, rest[1:i]...)
		exp -= i - 1
		rest = rest[i:]
	}
	if len(rest) > 0 && (rest[0] == 'e' || rest[0] == 'E') {
		rest = rest[1:]
		esign := 1
		if len(rest) > 0 && (rest[0] == '+' || rest[0] == '-') {
			if rest[0] == '-' {
				esign = -1
			}
			rest = rest[1:]
		}
		if len(rest) == 0 {
			return 0, false
		}
		e := 0
		for _, c := range rest {
			if c < '0' || c > '9' {
				return 0, false
			}
			if e < 1<<20 { // far beyond any exponent that can still name a safe integer
				e = e*10 + int(c-'0')
			}
		}
		exp += esign * e
		rest = nil
	}
	if len(rest) != 0 {
		return 0, false
	}
	// The value is digits × 10^exp: drop leading zeros, then move trailing
	// zeros into the exponent.
	digits = bytes.TrimLeft(digits, "0")
	if len(digits) == 0 {
		return 0, true // zero, however spelled
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if exp < 0 || len(digits)+exp > 16 {
		return 0, false // a fraction, or beyond 2^53
	}
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	for ; exp > 0; exp-- {
		n *= 10
	}
	if n > maxSafeID {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// sameID reports whether two ids have the same value (see idKey).
func sameID(a, b json.RawMessage) bool {
	var abuf, bbuf [64]byte
	ka, ok := appendIDKey(abuf[:0], a)
	if !ok {
		return false
	}
	kb, ok := appendIDKey(bbuf[:0], b)
	return ok && bytes.Equal(ka, kb)
}

// JSON-RPC error codes the router answers with.
const (
	codeParse          = -32700
	codeInvalidRequest = -32600
	codeNoMethod       = -32601
	codeInvalidParams  = -32602
	codeInternal       = -32603
	codeHeaderMismatch = -32020
)

// errorBody is a JSON-RPC error answer to id (null when unknown), the id
// written exactly as the client sent it.
func errorBody(id json.RawMessage, code int, msg string) []byte {
	e, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg})
	return answerBody(id, nil, e)
}

func resultBody(id json.RawMessage, result []byte) []byte {
	return answerBody(id, result, nil)
}

// answerBody is a JSON-RPC response to id with result or error, the id
// written exactly as given (json.Marshal would re-escape it).
func answerBody(id, result, rpcErr json.RawMessage) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	var b bytes.Buffer
	b.Grow(len(`{"jsonrpc":"2.0","id":,"result":}`) + len(id) + len(result) + len(rpcErr))
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	if rpcErr != nil {
		b.WriteString(`,"error":`)
		b.Write(rpcErr)
	} else {
		b.WriteString(`,"result":`)
		b.Write(result)
	}
	b.WriteString("}")
	return b.Bytes()
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string) {
	writeJSON(w, status, errorBody(id, code, msg))
}

// sseReader reads the data of server-sent events, each bounded.
type sseReader struct {
	r   *bufio.Reader
	max int64
}

func newSSEReader(r io.Reader, max int64) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 16<<10), max: max}
}

var errEventTooLarge = errors.New("router: event too large")

// next returns the data of the next event that has any; io.EOF at the end.
func (s *sseReader) next() ([]byte, error) {
	var data []byte
	has := false
	for {
		line, err := s.line()
		if err != nil {
			if errors.Is(err, io.EOF) && has {
				return data, nil
			}
			return nil, err
		}
		if len(line) == 0 {
			if has {
				return data, nil
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		if string(field) != "data" {
			continue // comments, event, id, retry
		}
		if has {
			data = append(data, '\n')
		}
		data = append(data, value...)
		has = true
		if int64(len(data)) > s.max {
			return nil, errEventTooLarge
		}
	}
}

func (s *sseReader) line() ([]byte, error) {
	var buf []byte
	for {
		frag, err := s.r.ReadSlice('\n')
		buf = append(buf, frag...)
		if int64(len(buf)) > s.max+16 {
			return nil, errEventTooLarge
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil && len(buf) == 0:
			return nil, err
		}
		buf = bytes.TrimSuffix(buf, []byte("\n"))
		return bytes.TrimSuffix(buf, []byte("\r")), nil
	}
}

// sseWriter writes events to a client and flushes each.
type sseWriter struct {
	w http.ResponseWriter
	f *http.ResponseController
}

func startSSE(w http.ResponseWriter, sessionID string) *sseWriter {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	if sessionID != "" {
		w.Header().Set("Mcp-Session-Id", sessionID)
	}
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, f: http.NewResponseController(w)}
	s.f.Flush()
	return s
}

func (s *sseWriter) event(data []byte) error {
	if bytes.ContainsAny(data, "\r\n") {
		var c bytes.Buffer
		if err := json.Compact(&c, data); err != nil {
			return err
		}
		data = c.Bytes()
	}
	if _, err := fmt.Fprintf(s.w, "event: message\ndata: %s\n\n", data); err != nil {
		return err
	}
	return s.f.Flush()
}

func (s *sseWriter) comment(text string) error {
	if _, err := fmt.Fprintf(s.w, ": %s\n\n", text); err != nil {
		return err
	}
	return s.f.Flush()
}

var jsonCompact = json.Compact
