// Package jsonscan reads JSON text strictly, in one pass and without
// allocating beyond what it returns: the scanner under mcpparse's readers,
// with the JSON-RPC errors it reports.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"
)

// Scanner reads JSON (RFC 8259) strictly in one pass: UTF-8 only, no lone
// surrogate escapes, no duplicate keys at any level (keys compared after
// decoding their escapes, and ignoring case unless Exact), and a bound on
// nesting. Its zero value is ready for Init; it lives on its caller's stack.
type Scanner struct {
	// Buf is the input and Pos the read position in it.
	Buf []byte
	Pos int
	// Exact compares keys exactly rather than folded (Options.Exact).
	Exact bool
	// AnyNumberID is Options.AnyNumberID, carried for the reader of ids.
	AnyNumberID bool
	maxDepth    int
	// keys holds the keys of every small object being read, the innermost
	// object's last.
	keys keyStack
}

// Options bound what Init accepts.
type Options struct {
	// MaxBytes is the longest input accepted; 0 (or less) means
	// DefaultMaxBytes.
	MaxBytes int
	// MaxDepth is the deepest nesting of objects and arrays accepted;
	// 0 (or less) means DefaultMaxDepth.
	MaxDepth int
	// Exact compares keys exactly (after decoding escapes) rather than
	// folded.
	Exact bool
	// AnyNumberID accepts an id that is any JSON number: the scanner only
	// carries it for the reader of JSON-RPC ids.
	AnyNumberID bool
}

// Default limits.
const (
	DefaultMaxBytes = 1 << 20
	DefaultMaxDepth = 64
)

// KeySet is the set of keys of one object (BeginObject, Key, EndObject): p.keys from start while it is
// small, then a map.
type KeySet struct {
	start int
	m     map[string]struct{}
}

// span locates a key in the input: buf[start:end], holding escapes or not.
// The input is at most math.MaxInt32 bytes long.
type span struct {
	start, end int32
	escaped    bool
}

// keyStack is a stack of keys that lives in the Scanner, and so on the
// caller's stack, until it outgrows its array.
type keyStack struct {
	n     int
	small [32]span
	big   []span // all the keys, once there are more than len(small)
}

func (s *keyStack) at(i int) span {
	if s.big != nil {
		return s.big[i]
	}
	return s.small[i]
}

func (s *keyStack) push(k span) {
	switch {
	case s.big != nil:
		s.big = append(s.big[:s.n], k)
	case s.n < len(s.small):
		s.small[s.n] = k
	default:
		s.big = append(append(make([]span, 0, 2*len(s.small)), s.small[:]...), k)
	}
	s.n++
}

// BeginObject starts the key set of an object just opened.
func (p *Scanner) BeginObject() KeySet { return KeySet{start: p.keys.n} }

// EndObject drops the key set of an object just closed.
func (p *Scanner) EndObject(ks KeySet) { p.keys.n = ks.start }

// maxLinearKeys is the number of keys above which an object's duplicate
// check moves from a linear scan to a map.
const maxLinearKeys = 16

// plain marks the bytes that a string may hold as they are: printable ASCII
// other than the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Init readies p to read body within the limits of o, and reads the
// leading white space.
func (p *Scanner) Init(body []byte, o Options) error {
	limit := o.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	if len(body) > limit || len(body) > math.MaxInt32 {
		return fmt.Errorf("%w: body of %d bytes, limit %d", ErrTooLarge, len(body), limit)
	}
	p.Buf = body
	p.Exact = o.Exact
	p.AnyNumberID = o.AnyNumberID
	p.maxDepth = o.MaxDepth
	if p.maxDepth <= 0 {
		p.maxDepth = DefaultMaxDepth
	}
	p.WS()
	if p.Pos == len(body) {
		return fmt.Errorf("%w: empty body", ErrParse)
	}
	return nil
}

func (p *Scanner) syntax(what string) error {
	if p.Pos >= len(p.Buf) {
		return fmt.Errorf("%w: unexpected end of input", ErrParse)
	}
	return fmt.Errorf("%w: %s at offset %d", ErrParse, what, p.Pos)
}

// WS skips white space.
func (p *Scanner) WS() {
	for p.Pos < len(p.Buf) {
		switch p.Buf[p.Pos] {
		case ' ', '\t', '\n', '\r':
			p.Pos++
		default:
			return
		}
	}
}

// Peek returns the byte at the read position, or 0 at the end.
func (p *Scanner) Peek() byte {
	if p.Pos < len(p.Buf) {
		return p.Buf[p.Pos]
	}
	return 0
}

// expect consumes c, then white space.
func (p *Scanner) expect(c byte) error {
	if p.Peek() != c {
		return p.syntax(fmt.Sprintf("expected %q", c))
	}
	p.Pos++
	p.WS()
	return nil
}

// End checks that only white space follows the value.
func (p *Scanner) End() error {
	p.WS()
	if p.Pos != len(p.Buf) {
		return p.syntax("trailing data")
	}
	return nil
}

// Value kinds returned by value: the first byte of the value, except for
// numbers, which are KindInt or KindNumber.
const (
	KindInt    = 'i' // a number without fraction or exponent
	KindNumber = 'd' // any other number
)

// Value reads one value of any type at the read position, inside a
// container at the given depth, and returns its kind.
func (p *Scanner) Value(depth int) (byte, error) {
	c := p.Peek()
	switch c {
	case '{':
		return c, p.Object(depth + 1)
	case '[':
		return c, p.array(depth + 1)
	case '"':
		_, _, err := p.Str()
		return c, err
	case 't':
		return c, p.literal("true")
	case 'f':
		return c, p.literal("false")
	case 'n':
		return c, p.literal("null")
	}
	if c == '-' || c >= '0' && c <= '9' {
		return p.number()
	}
	return 0, p.syntax("unexpected character")
}

func (p *Scanner) literal(s string) error {
	if !bytes.HasPrefix(p.Buf[p.Pos:], []byte(s)) {
		return p.syntax("invalid literal")
	}
	p.Pos += len(s)
	return nil
}

func (p *Scanner) digits() int {
	n := 0
	for p.Pos < len(p.Buf) && p.Buf[p.Pos] >= '0' && p.Buf[p.Pos] <= '9' {
		p.Pos++
		n++
	}
	return n
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *Scanner) number() (byte, error) {
	if p.Peek() == '-' {
		p.Pos++
	}
	switch c := p.Peek(); {
	case c == '0':
		p.Pos++
	case c >= '1' && c <= '9':
		p.digits()
	default:
		return 0, p.syntax("invalid number")
	}
	kind := byte(KindInt)
	if p.Peek() == '.' {
		p.Pos++
		if p.digits() == 0 {
			return 0, p.syntax("invalid number")
		}
		kind = KindNumber
	}
	if c := p.Peek(); c == 'e' || c == 'E' {
		p.Pos++
		if c := p.Peek(); c == '+' || c == '-' {
			p.Pos++
		}
		if p.digits() == 0 {
			return 0, p.syntax("invalid number")
		}
		kind = KindNumber
	}
	return kind, nil
}

// Str reads a string at the read position and returns the bytes between its
// quotes and whether they hold escapes.
func (p *Scanner) Str() (raw []byte, escaped bool, err error) {
	b := p.Buf
	start := p.Pos + 1
	i := start
	for {
		for i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			p.Pos = i
			return nil, false, p.syntax("unterminated string")
		}
		switch c := b[i]; {
		case c == '"':
			p.Pos = i + 1
			return b[start:i], escaped, nil
		case c == '\\':
			n := escapeLen(b[i:])
			if n == 0 {
				p.Pos = i
				return nil, false, p.syntax("invalid escape")
			}
			i += n
			escaped = true
		case c < 0x20:
			p.Pos = i
			return nil, false, p.syntax("control character in string")
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				p.Pos = i
				return nil, false, p.syntax("invalid UTF-8")
			}
			i += n
		}
	}
}

// plain8 reports whether the 8 bytes packed in x are all plain: none below
// 0x20, above 0x7f, a quote or a backslash (the classic "has zero byte"
// tests).
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	slash := x ^ (ones * '\\')
	bad := (x - ones*0x20) | (quote-ones)&^quote | (slash-ones)&^slash | x
	return bad&highs == 0
}

// escapeLen returns the length of the escape sequence at the start of b, or
// 0 if it is invalid. A \u escape of a surrogate must be a high one followed
// by a low one: lone surrogates decode differently from one JSON library to
// the next.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
	default:
		return 0
	}
	r, ok := hex4(b[2:])
	switch {
	case !ok:
		return 0
	case r < 0xD800 || r > 0xDFFF:
		return 6
	case r > 0xDBFF || len(b) < 12 || b[6] != '\\' || b[7] != 'u':
		return 0
	}
	if lo, ok := hex4(b[8:]); !ok || lo < 0xDC00 || lo > 0xDFFF {
		return 0
	}
	return 12
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Unescape appends to dst the decoded form of raw, the bytes of a string
// already checked by Str.
func Unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw[i+2:])
			if r >= 0xD800 && r <= 0xDBFF {
				lo, _ := hex4(raw[i+8:])
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// Text reads a string and returns its decoded bytes, sharing the input when
// there is nothing to decode.
func (p *Scanner) Text() ([]byte, error) {
	raw, esc, err := p.Str()
	if err != nil || !esc {
		return raw, err
	}
	return Unescape(nil, raw), nil
}

// Key reads an object key, the colon after it and white space, adds the key
// to ks and returns it decoded.
func (p *Scanner) Key(ks *KeySet) ([]byte, error) {
	if p.Peek() != '"' {
		return nil, p.syntax("expected string key")
	}
	start := p.Pos + 1
	raw, esc, err := p.Str()
	if err != nil {
		return nil, err
	}
	k := raw
	if esc {
		k = Unescape(nil, raw)
	}
	if err := p.addKey(ks, span{start: int32(start), end: int32(start + len(raw)), escaped: esc}, k); err != nil {
		return nil, err
	}
	p.WS()
	if err := p.expect(':'); err != nil {
		return nil, err
	}
	return k, nil
}

// addKey adds k, decoded from the input at s, to ks, or fails if ks holds
// a key equal to it once folded (bytes.EqualFold: case and Unicode simple
// folding, so U+017F LONG S is s and U+212A KELVIN SIGN is k). Keys
// differing only so are refused too: encoding/json, which many Go MCP
// servers decode with (the official go-sdk does not), matches struct fields
// the same way and would read {"name":"a","NAME":"b"} as the name "b".
func (p *Scanner) addKey(ks *KeySet, s span, k []byte) error {
	if ks.m != nil {
		f := string(p.foldKey(k))
		if _, dup := ks.m[f]; dup {
			return errDuplicate(k)
		}
		ks.m[f] = struct{}{}
		return nil
	}
	for i := ks.start; i < p.keys.n; i++ {
		if p.equalFold(p.keys.at(i), k) {
			return errDuplicate(k)
		}
	}
	p.keys.push(s)
	if p.keys.n-ks.start > maxLinearKeys {
		ks.m = make(map[string]struct{}, 2*maxLinearKeys)
		for i := ks.start; i < p.keys.n; i++ {
			var tmp [64]byte
			ks.m[string(p.foldKey(p.decode(tmp[:0], p.keys.at(i))))] = struct{}{}
		}
		p.keys.n = ks.start
	}
	return nil
}

// equalFold reports whether the key at s decodes to k, ignoring case as
// bytes.EqualFold does.
func (p *Scanner) equalFold(s span, k []byte) bool {
	eq := bytes.EqualFold
	if p.Exact {
		eq = bytes.Equal
	}
	if !s.escaped {
		return eq(p.Buf[s.start:s.end], k)
	}
	var tmp [64]byte
	return eq(p.decode(tmp[:0], s), k)
}

// foldKey is the form of k duplicates are compared in: folded, or as it is
// with Exact.
func (p *Scanner) foldKey(k []byte) []byte {
	if p.Exact {
		return k
	}
	return Fold(k)
}

// Fold returns the folded form of valid UTF-8 b (see FoldKey).
func Fold(b []byte) []byte {
	return AppendFold(make([]byte, 0, len(b)), b)
}

// AppendFold appends to dst the folded form of valid UTF-8 b: each rune
// replaced by foldRune of it.
func AppendFold(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		if c := b[i]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += n
	}
	return dst
}

// foldRune returns the one rune that stands for the simple case-folding
// orbit of r (the runes unicode.SimpleFold cycles through, the classes of
// bytes.EqualFold and of encoding/json's field matching): the lower case of
// the orbit's least rune when that lower case belongs to the orbit, as it
// does for every letter with an ASCII member (K, k and U+212A KELVIN SIGN
// give k; S, s and U+017F LONG S give s), else the least rune itself.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	lower := unicode.ToLower(least)
	if lower == least {
		return least
	}
	for f := unicode.SimpleFold(least); f != least; f = unicode.SimpleFold(f) {
		if f == lower {
			return lower
		}
	}
	return least
}

// FoldKey returns the folded form of a JSON object key: every rune replaced
// by one rune standing for its simple case-folding orbit (ASCII letters by
// their lower case, U+017F LONG S by s, U+212A KELVIN SIGN by k). Two keys
// have the same folded form if and only if bytes.EqualFold reports them
// equal, which is when encoding/json (and so any MCP server decoding into Go
// structs with it) may read one for the other. A key already folded is
// returned as it is, without allocating; s must be valid UTF-8.
func FoldKey(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return string(AppendFold(append(make([]byte, 0, len(s)), s[:i]...), []byte(s[i:])))
		}
	}
	return s
}

// decode appends the decoded key at s to dst.
func (p *Scanner) decode(dst []byte, s span) []byte {
	if !s.escaped {
		return append(dst, p.Buf[s.start:s.end]...)
	}
	return Unescape(dst, p.Buf[s.start:s.end])
}

func errDuplicate(k []byte) error {
	return fmt.Errorf("%w: duplicate key %.40q", ErrInvalidRequest, k)
}

// Open consumes the opening byte of an object or array at depth, then white
// space, and reports whether the container is empty (and so consumed).
func (p *Scanner) Open(depth int, close byte) (empty bool, err error) {
	if depth > p.maxDepth {
		return false, fmt.Errorf("%w: nesting deeper than %d at offset %d", ErrInvalidRequest, p.maxDepth, p.Pos)
	}
	p.Pos++
	p.WS()
	if p.Peek() == close {
		p.Pos++
		return true, nil
	}
	return false, nil
}

// Next consumes white space and then a comma (and reports true) or the
// closing byte of the container (and reports false).
func (p *Scanner) Next(close byte) (more bool, err error) {
	p.WS()
	switch p.Peek() {
	case ',':
		p.Pos++
		p.WS()
		return true, nil
	case close:
		p.Pos++
		return false, nil
	}
	return false, p.syntax(fmt.Sprintf("expected ',' or %q", close))
}

// Members reads the object at the read position, at depth, and calls
// member with each key, decoded, and the read position at its value, which
// member must read (Value, Text...). It stops at member's first error.
func (p *Scanner) Members(depth int, member func(k []byte) error) error {
	empty, err := p.Open(depth, '}')
	if empty || err != nil {
		return err
	}
	ks := p.BeginObject()
	for more := true; more; {
		k, err := p.Key(&ks)
		if err != nil {
			return err
		}
		if err := member(k); err != nil {
			return err
		}
		if more, err = p.Next('}'); err != nil {
			return err
		}
	}
	p.EndObject(ks)
	return nil
}

// Object reads an object at depth (the object itself at that depth). It is
// Members with Value for every member, written out: it skips every nested
// object of a message, where an indirect call per member costs.
func (p *Scanner) Object(depth int) error {
	empty, err := p.Open(depth, '}')
	if empty || err != nil {
		return err
	}
	ks := p.BeginObject()
	for more := true; more; {
		if _, err := p.Key(&ks); err != nil {
			return err
		}
		if _, err := p.Value(depth); err != nil {
			return err
		}
		if more, err = p.Next('}'); err != nil {
			return err
		}
	}
	p.EndObject(ks)
	return nil
}

// array reads an array at depth.
func (p *Scanner) array(depth int) error {
	empty, err := p.Open(depth, ']')
	if empty || err != nil {
		return err
	}
	for more := true; more; {
		if _, err := p.Value(depth); err != nil {
			return err
		}
		if more, err = p.Next(']'); err != nil {
			return err
		}
	}
	return nil
}
