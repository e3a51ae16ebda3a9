package mcpparse

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrHeaderMismatch wraps every failure of CheckMirror and CheckParam: a
// header that mirrors the body is missing or says something else (MCP
// 2026-07-28, SEP-2243). Its code is CodeHeaderMismatch; answer it with
// HTTP 400.
var ErrHeaderMismatch = &Error{Code: CodeHeaderMismatch, Message: "header mismatch"}

// Version2026 is the first protocol revision whose requests must mirror
// their method and name in headers.
const Version2026 = "2026-07-28"

// MetaProtocolVersion is the params._meta member that carries a 2026-07-28
// request's protocol version.
const MetaProtocolVersion = "io.modelcontextprotocol/protocolVersion"

var metaVersionKey = []byte(MetaProtocolVersion)

// Mirror is what a request's headers say of its body: MCP-Protocol-Version,
// Mcp-Method and Mcp-Name as sent, with Has* false for a header absent.
type Mirror struct {
	Version            string
	Method, Name       string
	HasMethod, HasName bool
}

// CheckMirror checks the headers of one message against it, after decoding
// the =?base64?…?= form of Mcp-Method and Mcp-Name:
//
//   - MCP-Protocol-Version, when sent, equals the version in params._meta
//     (MetaProtocolVersion) when the body has one;
//   - Mcp-Method, when sent, equals the method, and Mcp-Name, when sent,
//     equals the name of tools/call and prompts/get, the URI of
//     resources/read, subscribe and unsubscribe, or the taskId of
//     tasks/get, update, cancel and result (other methods' Mcp-Name is
//     left to their handlers);
//   - a message of 2026-07-28 or later (by the header, else by _meta) that
//     has a method must send Mcp-Method, and tools/call, prompts/get,
//     resources/read, tasks/get, tasks/update and tasks/cancel must send
//     Mcp-Name.
//
// Errors wrap ErrHeaderMismatch, or ErrInvalidParams for a _meta whose
// protocol version is not a string.
func CheckMirror(h Mirror, m *Message) error {
	version := h.Version
	// _meta is read only when it may hold the version: the key spelt out,
	// or an escape that could spell it.
	if m.Meta != nil && (bytes.Contains(m.Meta, metaVersionKey) || bytes.IndexByte(m.Meta, '\\') >= 0) {
		f, err := Fields(m.Meta, Options{}, MetaProtocolVersion)
		if err != nil {
			return fmt.Errorf("%w: params._meta: %w", ErrInvalidParams, err)
		}
		if raw := f[0].Raw; raw != nil {
			v, err := String(raw)
			if err != nil {
				return fmt.Errorf("%w: params._meta protocol version is not a string", ErrInvalidParams)
			}
			if h.Version != "" && v != h.Version {
				return fmt.Errorf("%w: MCP-Protocol-Version is not the protocol version of params._meta", ErrHeaderMismatch)
			}
			version = v
		}
	}
	if m.Method == "" {
		return nil
	}
	required := version >= Version2026
	switch {
	case h.HasMethod:
		if v, ok := DecodeHeader(h.Method); !ok || v != m.Method {
			return fmt.Errorf("%w: Mcp-Method is not the body's method", ErrHeaderMismatch)
		}
	case required:
		return fmt.Errorf("%w: no Mcp-Method header", ErrHeaderMismatch)
	}
	var name string
	switch m.Method {
	case "tools/call", "prompts/get":
		name = m.Name
	case "resources/read":
		name = m.URI
	case "resources/subscribe", "resources/unsubscribe":
		name, required = m.URI, false // 2025 methods: checked only when sent
	case "tasks/get", "tasks/update", "tasks/cancel":
		name = m.TaskID // the tasks extension: Mcp-Name is the taskId
	case "tasks/result":
		name, required = m.TaskID, false // 2025-11-25 only: checked when sent
	default:
		return nil
	}
	switch {
	case h.HasName:
		if v, ok := DecodeHeader(h.Name); !ok || v != name {
			return fmt.Errorf("%w: Mcp-Name is not the body's name", ErrHeaderMismatch)
		}
	case required:
		return fmt.Errorf("%w: no Mcp-Name header", ErrHeaderMismatch)
	}
	return nil
}

// DecodeHeader decodes a header value that mirrors the body: as sent, or
// the UTF-8 text in its =?base64?…?= form (standard base64, padded). ok is
// false for a malformed base64 form.
func DecodeHeader(v string) (string, bool) {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v, true
	}
	if inner, ok = strings.CutSuffix(inner, "?="); !ok {
		return v, true
	}
	b, err := base64.StdEncoding.Strict().DecodeString(inner)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// EncodeHeader is v as a header that mirrors the body carries it, the
// inverse of DecodeHeader: as it is when it is plain visible ASCII (spaces
// inside), else its =?base64?…?= form: when it is empty, starts or ends
// with a space, holds a control character (tab, CR and LF included) or a
// byte beyond ASCII, or looks like the base64 form itself. No CR or LF ever
// reaches a header through it.
func EncodeHeader(v string) string {
	if !plainHeader(v) {
		return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(v)) + "?="
	}
	return v
}

// plainHeader reports whether v may be a header value as it is.
func plainHeader(v string) bool {
	if v == "" || v[0] == ' ' || v[len(v)-1] == ' ' {
		// An empty value is sent encoded: some proxies drop empty headers,
		// and go-sdk reads one as absent.
		return false
	}
	for i := range len(v) {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return !strings.HasPrefix(v, "=?base64?") || !strings.HasSuffix(v, "?=")
}

// ParamValue is the Mcp-Param header value that mirrors arg, an argument
// as sent (one JSON value): its paramText, encoded (EncodeHeader). Any
// other value (null, a fraction, an object) cannot be mirrored: the error
// wraps ErrInvalidParams.
func ParamValue(arg []byte) (string, error) {
	v, ok := paramText(arg)
	if !ok {
		return "", fmt.Errorf("%w: an argument marked x-mcp-header must be a string, a boolean or an integer within ±(2^53-1)", ErrInvalidParams)
	}
	return EncodeHeader(v), nil
}

// paramText is the text an Mcp-Param header mirrors arg (one JSON value,
// as sent) with, before encoding: a string as it is, a boolean as true or
// false, an integer within ±(2^53-1) in decimal. ok is false for any other
// value. CheckParam and ParamValue both spell arguments with it.
func paramText(arg []byte) (string, bool) {
	if len(arg) == 0 {
		return "", false
	}
	switch arg[0] {
	case '"':
		s, err := String(arg)
		return s, err == nil
	case 't', 'f':
		v := string(arg)
		return v, v == "true" || v == "false"
	}
	n, err := Int(arg)
	if err != nil || n > maxSafe || n < -maxSafe {
		return "", false
	}
	return strconv.FormatInt(n, 10), true
}

// ParamHeaderPrefix starts the header that mirrors a tool argument marked
// x-mcp-header: Mcp-Param-{Name}.
const ParamHeaderPrefix = "Mcp-Param-"

// CheckParam checks an Mcp-Param-{Name} header against the argument it
// mirrors, arg as sent in params.arguments (nil when absent). present says
// whether the header was sent. A header needs its argument and an argument
// (not null) needs its header; the argument must be a string, a boolean or
// an integer within ±(2^53-1), which the decoded header spells exactly as
// ParamValue does (paramText: no sign or leading zero added to an
// integer). Errors wrap ErrHeaderMismatch.
func CheckParam(header string, present bool, arg []byte) error {
	if arg == nil || string(arg) == "null" {
		if present {
			return fmt.Errorf("%w: Mcp-Param header for an absent argument", ErrHeaderMismatch)
		}
		return nil
	}
	if !present {
		return fmt.Errorf("%w: no Mcp-Param header for an argument marked x-mcp-header", ErrHeaderMismatch)
	}
	v, ok := DecodeHeader(header)
	if !ok {
		return fmt.Errorf("%w: Mcp-Param header with a malformed base64 form", ErrHeaderMismatch)
	}
	if t, ok := paramText(arg); !ok || t != v {
		return fmt.Errorf("%w: Mcp-Param header is not its argument", ErrHeaderMismatch)
	}
	return nil
}

// maxSafe bounds the integers a header may mirror (JavaScript's safe range).
const maxSafe = 1<<53 - 1

// Argument finds the member of params.arguments that an Mcp-Param-{name}
// header names when the tool's schema is not at hand: the top-level member
// whose key equals name ignoring ASCII case (header names have no case;
// Parse refuses two keys equal once folded, so there is at most one). ok is
// false when there is none: the header may mirror a nested or renamed
// argument, which only the schema tells.
func Argument(args []byte, name string) (raw []byte, ok bool) {
	if args == nil {
		return nil, false
	}
	var p scanner
	if err := p.init(args, Options{CaseSensitiveKeys: true}); err != nil || p.Peek() != '{' {
		return nil, false
	}
	err := p.Members(1, func(k []byte) error {
		start := p.Pos
		if _, err := p.Value(1); err != nil {
			return err
		}
		if strings.EqualFold(string(k), name) {
			raw = args[start:p.Pos]
			return errFound
		}
		return nil
	})
	return raw, errors.Is(err, errFound)
}

// errFound stops Argument's reading at the member it looks for.
var errFound = errors.New("found")
