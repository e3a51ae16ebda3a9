package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Bounds of Params' memo: the tool definitions it keeps, and the largest one
// it keeps (larger ones are decoded on every call). At most 8 MiB.
const (
	paramMemoEntries = 1024
	paramMemoTool    = 8 << 10
)

// maxParamDepth bounds how deep in a schema's properties an x-mcp-header is
// looked for; deeper, a definition that may hold one is refused.
const maxParamDepth = 32

// ErrToolDefinition: a tool definition whose x-mcp-header marks (SEP-2243)
// cannot be honoured: not readable, a header name that is not an HTTP token
// or empty, two marks naming one header (in any case), more than
// upstream.MaxParams marks, or marks nested deeper than maxParamDepth. The
// tool cannot be called through the router.
var ErrToolDefinition = errors.New("catalog: tool definition")

// Params checks the Mcp-Param headers of tools/call requests (Check) and
// makes the ones the router sends upstream (Mirror), from one reading of
// what a tool definition marks with x-mcp-header. It remembers that reading,
// keyed by the definition's exact JSON, so that a call does not decode its
// tool's inputSchema again. The answer is a function of those bytes alone:
// no caller is ever answered from another's list but with what its own
// bytes say. Forgotten whole when full. The zero value is ready.
type Params struct {
	mu sync.Mutex
	m  map[string]paramEntry
}

type paramEntry struct {
	bindings []paramBinding // read only
	err      error
}

// paramBinding is one argument a tool marks with x-mcp-header: its path in
// params.arguments (the properties keys from the schema's root, exactly as
// the server wrote them) and its header, Mcp-Param-{Name} in canonical form.
type paramBinding struct {
	path   []string
	header string
}

// Check checks the Mcp-Param-{Name} headers of a tools/call (h, keyed as
// net/http keys them) against its arguments (params.arguments as sent) and
// the tool as listed (Tool): each argument its inputSchema marks with
// x-mcp-header is checked with CheckParam against the one header named so;
// a header sent twice, and a header the tool does not declare (any case),
// are refused too, so that nothing reading request headers sees an
// unchecked one. Errors wrap mcpparse.ErrHeaderMismatch.
func (p *Params) Check(h map[string][]string, arguments, tool []byte) error {
	bindings, err := p.bindings(tool)
	if err != nil {
		return fmt.Errorf("%w: %w", mcpparse.ErrHeaderMismatch, err)
	}
	for k := range h {
		if strings.HasPrefix(k, mcpparse.ParamHeaderPrefix) && !declared(bindings, k) {
			return fmt.Errorf("%w: undeclared Mcp-Param header", mcpparse.ErrHeaderMismatch)
		}
	}
	for _, b := range bindings {
		raw, err := argumentAt(arguments, b.path)
		if err != nil {
			return fmt.Errorf("%w: %w", mcpparse.ErrHeaderMismatch, err)
		}
		v := h[b.header]
		if len(v) > 1 {
			return fmt.Errorf("%w: repeated Mcp-Param header", mcpparse.ErrHeaderMismatch)
		}
		if err := mcpparse.CheckParam(strings.Join(v, ""), len(v) == 1, raw); err != nil {
			return err
		}
	}
	return nil
}

// Mirror returns the Mcp-Param-{Name} headers a tools/call request (body,
// as the router sends it) carries to a server of the stateless revision
// (SEP-2243): one for each argument the tool (as listed) marks with
// x-mcp-header that the request has and is not null, its value encoded
// (mcpparse.ParamValue). None when the tool marks none. Nothing of a
// client's headers goes into them. Errors wrap ErrToolDefinition, or
// mcpparse.ErrInvalidParams for an argument that cannot be mirrored (not a
// string, a boolean or a safe integer).
func (p *Params) Mirror(body, tool []byte) ([]upstream.Param, error) {
	bindings, err := p.bindings(tool)
	if err != nil || len(bindings) == 0 {
		return nil, err
	}
	f, err := mcpparse.Fields(body, mcpparse.Options{MaxBytes: len(body), CaseSensitiveKeys: true}, "params")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", mcpparse.ErrInvalidParams, err)
	}
	args, err := member(f[0].Raw, "arguments")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", mcpparse.ErrInvalidParams, err)
	}
	out := make([]upstream.Param, 0, len(bindings))
	for _, b := range bindings {
		raw, err := argumentAt(args, b.path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", mcpparse.ErrInvalidParams, err)
		}
		if raw == nil || string(raw) == "null" {
			continue // absent or null: no header
		}
		v, err := mcpparse.ParamValue(raw)
		if err != nil {
			return nil, fmt.Errorf("argument %q: %w", strings.Join(b.path, "."), err)
		}
		out = append(out, upstream.Param{Name: b.header, Value: v})
	}
	return out, nil
}

// declared reports whether header (any case) is one of bindings'.
func declared(bindings []paramBinding, header string) bool {
	for _, b := range bindings {
		if strings.EqualFold(b.header, header) {
			return true
		}
	}
	return false
}

// argumentAt is the value at path in arguments (keys matched exactly, as
// the schema names them); nil when it, or an object on the way, is absent,
// or when a step is not an object.
func argumentAt(arguments []byte, path []string) ([]byte, error) {
	cur := arguments
	for _, key := range path {
		cur = bytes.TrimLeft(cur, " \t\r\n")
		if len(cur) == 0 || cur[0] != '{' {
			return nil, nil
		}
		f, err := mcpparse.Fields(cur, mcpparse.Options{MaxBytes: len(cur), CaseSensitiveKeys: true}, key)
		if err != nil {
			return nil, err
		}
		cur = f[0].Raw
	}
	return cur, nil
}

// bindings is paramBindings(tool), remembered; the slice must not be
// changed.
func (p *Params) bindings(tool []byte) ([]paramBinding, error) {
	if len(tool) > paramMemoTool {
		return paramBindings(tool)
	}
	p.mu.Lock()
	e, ok := p.m[string(tool)]
	p.mu.Unlock()
	if ok {
		return e.bindings, e.err
	}
	b, err := paramBindings(tool)
	p.mu.Lock()
	if len(p.m) >= paramMemoEntries || p.m == nil {
		p.m = make(map[string]paramEntry)
	}
	p.m[string(tool)] = paramEntry{bindings: b, err: err}
	p.mu.Unlock()
	return b, err
}

// exact is how obj, part of a server's tool definition, is read: keys as the
// server wrote them (no case folding), a duplicate refused, nested as deep
// as an upstream's answer may be.
func exact(obj []byte) mcpparse.Options {
	return mcpparse.Options{MaxBytes: len(obj), MaxDepth: 512, CaseSensitiveKeys: true}
}

// member is obj's member name; nil when obj or the member is absent or
// null. An obj that is not an object is an error.
func member(obj []byte, name string) ([]byte, error) {
	if obj == nil || string(obj) == "null" {
		return nil, nil
	}
	f, err := mcpparse.Fields(obj, exact(obj), name)
	if err != nil {
		return nil, err
	}
	return f[0].Raw, nil
}

// paramBindings reads what a tool marks with x-mcp-header: every property
// reachable from its inputSchema through properties alone, at any depth (as
// SEP-2243 allows), whose x-mcp-header names a header. A definition
// mcpparse refuses (a duplicate key, bad JSON), an x-mcp-header that is not
// a non-empty HTTP token (RFC 9110 tchar: no space, CR or LF), two marks
// naming one header in any case, or more than upstream.MaxParams marks is
// an error wrapping ErrToolDefinition: the call it would check or mirror is
// refused, never sent with a header left out.
func paramBindings(tool []byte) ([]paramBinding, error) {
	schema, err := member(tool, "inputSchema")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrToolDefinition, err)
	}
	if schema == nil || string(schema) == "null" {
		return nil, nil // none
	}
	var out []paramBinding
	if err := walkSchema(schema, nil, true, 0, &out); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrToolDefinition, err)
	}
	return out, nil
}

// walkSchema appends to out the marks of schema, a schema object at depth
// (of JSON nesting), reached from the root through a chain of properties
// alone when chain (path names the chain). Its keys are keywords: the
// values of properties are schemas still on the chain; those of the other
// keywords that map names to schemas, and objects and arrays under any
// other keyword, are walked off the chain, where a mark is an error (SEP-2243:
// under items, oneOf, $defs... a mark makes the definition invalid); the
// values of data keywords (const, enum, default, examples) are not
// schemas. What cannot hold a mark (mayMark) is not walked.
func walkSchema(schema []byte, path []string, chain bool, depth int, out *[]paramBinding) error {
	if depth >= maxMarkDepth {
		return fmt.Errorf("a schema nested deeper than %d may hold x-mcp-header", maxMarkDepth)
	}
	keys, err := mcpparse.Names(schema, exact(schema))
	if err != nil {
		return err
	}
	f, err := mcpparse.Fields(schema, exact(schema), keys...)
	if err != nil {
		return err
	}
	for i, k := range keys {
		v := f[i].Raw
		switch {
		case k == "x-mcp-header":
			if !chain || len(path) == 0 {
				return errors.New("x-mcp-header where no chain of properties from the schema's root reaches (under items, oneOf, anyOf, allOf, not, if, then, else, $defs or another keyword)")
			}
			if err := primitive(schema, path); err != nil {
				return err
			}
			b, err := binding(path, v, *out)
			if err != nil {
				return err
			}
			*out = append(*out, b)
		case k == "properties":
			if chain && len(path) >= maxParamDepth && mayMark(v) {
				return fmt.Errorf("x-mcp-header nested deeper than %d properties", maxParamDepth)
			}
			if err := walkNames(v, path, chain, depth+1, out); err != nil {
				return err
			}
		case dataKeywords[k] || !mayMark(v):
		case nameKeywords[k]:
			if err := walkNames(v, path, false, depth+1, out); err != nil {
				return err
			}
		default:
			if err := walkOff(v, depth+1, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkNames walks obj, which maps names to schemas (the value of
// properties, $defs...): each schema that may hold a mark, at path and the
// name when on the chain.
func walkNames(obj []byte, path []string, chain bool, depth int, out *[]paramBinding) error {
	names, err := mcpparse.Names(obj, exact(obj))
	if err != nil {
		return err
	}
	f, err := mcpparse.Fields(obj, exact(obj), names...)
	if err != nil {
		return err
	}
	for i, name := range names {
		v := f[i].Raw
		if !mayMark(v) {
			continue // nothing marked in it, at any depth (a boolean schema, say)
		}
		at := append(path[:len(path):len(path)], name)
		if v[0] != '{' {
			return fmt.Errorf("property %q: not a schema object", strings.Join(at, "."))
		}
		if err := walkSchema(v, at, chain, depth+1, out); err != nil {
			return err
		}
	}
	return nil
}

// walkOff walks v, the value of a keyword that is off the chain: an object
// is a schema, an array's objects are schemas; anything else holds none.
func walkOff(v []byte, depth int, out *[]paramBinding) error {
	switch v[0] {
	case '{':
		return walkSchema(v, nil, false, depth, out)
	case '[':
		elems, err := mcpparse.Elements(v, exact(v))
		if err != nil {
			return err
		}
		for _, e := range elems {
			if mayMark(e) {
				if err := walkOff(e, depth+1, out); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// nameKeywords are the schema keywords, besides properties, whose values
// map names to schemas; dataKeywords those whose values are data.
var (
	nameKeywords = map[string]bool{"patternProperties": true, "$defs": true, "definitions": true, "dependentSchemas": true}
	dataKeywords = map[string]bool{"const": true, "enum": true, "default": true, "examples": true}
)

// maxMarkDepth bounds how deep walkSchema looks into a schema that may hold
// a mark: JSON nesting, two levels per properties step.
const maxMarkDepth = 2*maxParamDepth + 8

// mayMark reports whether b may hold an x-mcp-header key: spelt out, or
// with a \u escape (the only one that can spell its letters).
func mayMark(b []byte) bool {
	return bytes.Contains(b, []byte("x-mcp-header")) || bytes.Contains(b, []byte(`\u`))
}

// primitive checks that prop, the schema of a marked property at path,
// declares a type that may be marked: string, integer or boolean (not
// number, not several types, not none).
func primitive(prop []byte, path []string) error {
	t, err := member(prop, "type")
	if err != nil {
		return err
	}
	if typ, err := mcpparse.String(t); t == nil || err != nil || (typ != "string" && typ != "integer" && typ != "boolean") {
		return fmt.Errorf("x-mcp-header of %q on a property not typed string, integer or boolean", strings.Join(path, "."))
	}
	return nil
}

// binding is the mark h (an x-mcp-header value) of the property at path,
// checked against the marks before it.
func binding(path []string, h []byte, before []paramBinding) (paramBinding, error) {
	name, err := mcpparse.String(h)
	if err != nil {
		return paramBinding{}, fmt.Errorf("x-mcp-header of %q is not a string", strings.Join(path, "."))
	}
	if name == "" || !httpguts.ValidHeaderFieldName(name) {
		return paramBinding{}, fmt.Errorf("x-mcp-header of %q is not an HTTP token", strings.Join(path, "."))
	}
	if len(before) == upstream.MaxParams {
		return paramBinding{}, fmt.Errorf("more than %d arguments marked x-mcp-header", upstream.MaxParams)
	}
	header := textproto.CanonicalMIMEHeaderKey(mcpparse.ParamHeaderPrefix + name)
	for _, b := range before {
		if b.header == header {
			return paramBinding{}, fmt.Errorf("x-mcp-header of %q names a header already named", strings.Join(path, "."))
		}
	}
	return paramBinding{path: path, header: header}, nil
}
