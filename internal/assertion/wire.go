package assertion

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeWire decodes a payload as strictly as encoding/json with
// DisallowUnknownFields and nothing after the object. The compact form the
// Signer writes (no whitespace, no escapes, each key once, spelled as in
// wire's tags) is read by hand without reflection, its strings sharing one
// copy of the payload; anything else is left to encoding/json, so the two
// agree on every payload (FuzzDecodeWire holds that).
func decodeWire(payload []byte) (wire, error) {
	var w wire
	if compactWire(string(payload), &w) {
		return w, nil
	}
	var slow wire
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&slow); err != nil {
		return wire{}, err
	}
	if dec.More() {
		return wire{}, errTrailing
	}
	return slow, nil
}

// errTrailing is a payload with more after its object.
var errTrailing = errors.New("assertion: data after the payload")

// compactWire reads p when it is in the Signer's compact form: {"k":v,...}
// with known keys each at most once, string values without escapes, control
// characters or invalid UTF-8, and integer values in JSON's form that fit
// an int64. It reports false, leaving w partly set, for anything else.
func compactWire(p string, w *wire) bool {
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return false
	}
	p = p[1 : len(p)-1]
	var seen uint16
	for len(p) > 0 {
		if p[0] != '"' {
			return false
		}
		end := strings.IndexByte(p[1:], '"')
		if end < 0 || len(p) < end+3 || p[end+2] != ':' {
			return false
		}
		key := p[1 : end+1]
		p = p[end+3:]
		// The field key names and its bit in seen: a string or an int64.
		var str *string
		var num *int64
		var bit uint
		switch key {
		case "method":
			str, bit = &w.Method, 0
		case "server":
			str, bit = &w.Server, 1
		case "tool":
			str, bit = &w.Tool, 2
		case "iss":
			str, bit = &w.Issuer, 3
		case "sub":
			str, bit = &w.Subject, 4
		case "cexp":
			num, bit = &w.CallerExp, 5
		case "cred":
			str, bit = &w.Cred, 6
		case "bh":
			str, bit = &w.BodyHash, 7
		case "iat":
			num, bit = &w.IssuedAt, 8
		case "exp":
			num, bit = &w.Expiry, 9
		default:
			return false
		}
		var n int
		var ok bool
		if str != nil {
			n, ok = compactString(p, str)
		} else {
			n, ok = compactInt(p, num)
		}
		if !ok || !mark(&seen, bit) {
			return false
		}
		p = p[n:]
		if len(p) > 0 {
			if p[0] != ',' || len(p) == 1 {
				return false
			}
			p = p[1:]
		}
	}
	return true
}

// mark records key i as seen; false when it was already.
func mark(seen *uint16, i uint) bool {
	if *seen&(1<<i) != 0 {
		return false
	}
	*seen |= 1 << i
	return true
}

// compactString reads a plain string (as plain says) at the start of p
// into s and reports the bytes it took.
func compactString(p string, s *string) (int, bool) {
	if len(p) < 2 || p[0] != '"' {
		return 0, false
	}
	end := strings.IndexByte(p[1:], '"')
	if end < 0 || !plain(p[1:end+1]) {
		return 0, false
	}
	*s = p[1 : end+1]
	return end + 2, true
}

// compactInt reads a JSON integer (no fraction nor exponent) at the start
// of p into v and reports the bytes it took.
func compactInt(p string, v *int64) (int, bool) {
	i := 0
	if i < len(p) && p[i] == '-' {
		i++
	}
	start := i
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	digits := i - start
	if digits == 0 || (digits > 1 && p[start] == '0') {
		return 0, false
	}
	if i < len(p) && p[i] != ',' {
		return 0, false // a fraction, an exponent, or anything else
	}
	if digits > 18 {
		return 0, false // may not fit: left to encoding/json
	}
	var n int64
	for _, c := range p[start:i] {
		n = n*10 + int64(c-'0')
	}
	if start == 1 {
		n = -n
	}
	*v = n
	return i, true
}

// appendWire appends w in the compact form compactWire reads, keys in
// wire's order and omitempty as its tags say; false, with dst as it was,
// when a string is not plain (a quote, a backslash, a control character or
// invalid UTF-8): the Signer then leaves it to encoding/json.
func appendWire(dst []byte, w *wire) ([]byte, bool) {
	start := len(dst)
	ok := true
	str := func(key, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		if !plain(v) {
			ok = false
		}
		dst = append(appendKey(dst, key), '"')
		dst = append(dst, v...)
		dst = append(dst, '"')
	}
	num := func(key string, v int64, omitEmpty bool) {
		if omitEmpty && v == 0 {
			return
		}
		dst = strconv.AppendInt(appendKey(dst, key), v, 10)
	}
	str("method", w.Method, false)
	str("server", w.Server, true)
	str("tool", w.Tool, true)
	str("iss", w.Issuer, true)
	str("sub", w.Subject, true)
	num("cexp", w.CallerExp, true)
	str("cred", w.Cred, true)
	str("bh", w.BodyHash, false)
	num("iat", w.IssuedAt, false)
	num("exp", w.Expiry, false)
	if !ok {
		return dst[:start], false
	}
	dst[start] = '{' // the first member's comma
	return append(dst, '}'), true
}

// appendKey appends a member's separating comma and its quoted key and colon.
func appendKey(dst []byte, key string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// plain reports whether s can be written as a JSON string as it is.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return utf8.ValidString(s)
}
