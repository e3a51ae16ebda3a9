package mcpparse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/mcp-authz/mcp-authz/mcpparse/internal/jsonscan"
)

// Field is one member of an object read by Fields.
type Field struct {
	// Raw is the member's value as sent; nil when the member is absent.
	Raw json.RawMessage
	// Start is the offset of Raw in the object given to Fields.
	Start int
}

// Fields reads obj, one JSON object, as strictly as Parse reads a message
// (well-formed UTF-8 JSON, no duplicate key at any level, nesting and size
// within o), and returns the values of the members named, in the order
// named. Other members are allowed. Unless o.CaseSensitiveKeys is set, a
// member that differs from a name only once folded (FoldKey) is an error,
// as it would be read as that name by encoding/json. Errors wrap ErrParse
// or ErrInvalidRequest.
func Fields(obj []byte, o Options, names ...string) ([]Field, error) {
	var p scanner
	if err := p.init(obj, o); err != nil {
		return nil, err
	}
	if p.Peek() != '{' {
		return nil, fmt.Errorf("%w: not an object", ErrInvalidRequest)
	}
	out := make([]Field, len(names))
	err := p.Members(1, func(k []byte) error {
		i := -1
		for j, n := range names {
			if string(k) == n {
				i = j
				break
			}
			if !p.Exact && bytes.EqualFold(k, []byte(n)) {
				return fmt.Errorf("%w: member %.40q is %q in another case", ErrInvalidRequest, k, n)
			}
		}
		start := p.Pos
		if _, err := p.Value(1); err != nil {
			return err
		}
		if i >= 0 {
			out[i] = Field{Raw: obj[start:p.Pos], Start: start}
		}
		return nil
	})
	if err != nil {
		return nil, wellFormed(obj, err)
	}
	if err := p.End(); err != nil {
		return nil, err
	}
	return out, nil
}

// Elements reads arr, one JSON array, as strictly as Fields reads an
// object, and returns its elements as sent.
func Elements(arr []byte, o Options) ([]json.RawMessage, error) {
	var p scanner
	if err := p.init(arr, o); err != nil {
		return nil, err
	}
	if p.Peek() != '[' {
		return nil, fmt.Errorf("%w: not an array", ErrInvalidRequest)
	}
	empty, err := p.Open(1, ']')
	if err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for more := !empty; more; {
		start := p.Pos
		if _, err := p.Value(1); err != nil {
			return nil, wellFormed(arr, err)
		}
		out = append(out, arr[start:p.Pos])
		if more, err = p.Next(']'); err != nil {
			return nil, wellFormed(arr, err)
		}
	}
	if err := p.End(); err != nil {
		return nil, err
	}
	return out, nil
}

// String decodes raw, one JSON string, strictly (no lone surrogate, valid
// UTF-8). Its errors wrap ErrParse or ErrInvalidRequest (not a string).
func String(raw []byte) (string, error) {
	var p scanner
	if err := p.init(raw, Options{}); err != nil {
		return "", err
	}
	if p.Peek() != '"' {
		return "", fmt.Errorf("%w: not a string", ErrInvalidRequest)
	}
	s, err := p.Text()
	if err != nil {
		return "", err
	}
	if err := p.End(); err != nil {
		return "", err
	}
	return string(s), nil
}

// Int decodes raw, one JSON number without fraction or exponent that fits
// an int64. Its errors wrap ErrParse or ErrInvalidRequest.
func Int(raw []byte) (int64, error) {
	var p scanner
	if err := p.init(raw, Options{}); err != nil {
		return 0, err
	}
	kind, err := p.Value(1)
	if err != nil {
		return 0, err
	}
	if err := p.End(); err != nil {
		return 0, err
	}
	if kind != jsonscan.KindInt {
		return 0, fmt.Errorf("%w: not an integer", ErrInvalidRequest)
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: integer out of range", ErrInvalidRequest)
	}
	return n, nil
}

// maxSafeID bounds integer ids: 2^53-1, the largest integer every JSON
// implementation (JavaScript's, go-sdk's float64 decoding) keeps exactly.
const maxSafeID = 1<<53 - 1

// AppendIDKey appends to dst the value of a JSON-RPC id, so that ids
// spelled differently compare equal: 's' and the decoded string, or 'n' and
// the integer in decimal. ok is false for anything else: not one JSON
// value, or a number that is not an integer or lies beyond ±(2^53-1), which
// no peer can be trusted to send back unchanged.
//
// JSON-RPC 2.0 matches a response to its request by the id's value, and MCP
// ids are strings or integers; JSON spells one value many ways ("\u0061" is
// "a", "a\/b" is "a/b", 1.0 and 1e0 are 1, -0 is 0), and peers re-encode
// ids (go-sdk decodes numbers to float64). A string never equals a number.
func AppendIDKey(dst []byte, id []byte) ([]byte, bool) {
	var p scanner
	if p.init(id, Options{}) != nil {
		return dst, false
	}
	start := p.Pos
	if p.Peek() == '"' {
		raw, esc, err := p.Str()
		if err != nil || p.End() != nil {
			return dst, false
		}
		dst = append(dst, 's')
		if esc {
			return jsonscan.Unescape(dst, raw), true
		}
		return append(dst, raw...), true
	}
	kind, err := p.Value(1)
	if err != nil || (kind != jsonscan.KindInt && kind != jsonscan.KindNumber) {
		return dst, false
	}
	num := p.Buf[start:p.Pos]
	if p.End() != nil {
		return dst, false
	}
	n, ok := integerID(num)
	if !ok {
		return dst, false
	}
	return strconv.AppendInt(append(dst, 'n'), n, 10), true
}

// integerID reads a well-formed JSON number whose value is an integer
// within ±maxSafeID, in any spelling (1, 1.0, 1e0, 10E-1, -0).
func integerID(b []byte) (int64, bool) {
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
	}
	intEnd := 0
	for intEnd < len(b) && b[intEnd] >= '0' && b[intEnd] <= '9' {
		intEnd++
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
		digits = append(digits, rest[1:i]...)
		exp -= i - 1
		rest = rest[i:]
	}
	if len(rest) > 0 { // an exponent
		rest = rest[1:]
		esign := 1
		if rest[0] == '+' || rest[0] == '-' {
			if rest[0] == '-' {
				esign = -1
			}
			rest = rest[1:]
		}
		e := 0
		for _, c := range rest {
			if e < 1<<20 { // far beyond any exponent that can still name a safe integer
				e = e*10 + int(c-'0')
			}
		}
		exp += esign * e
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
