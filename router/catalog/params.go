package catalog

import (
	"fmt"
	"net/textproto"
	"strings"
	"sync"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// Bounds of Params' memo: the tool definitions it keeps, and the largest one
// it keeps (larger ones are decoded on every call). At most 8 MiB.
const (
	paramMemoEntries = 1024
	paramMemoTool    = 8 << 10
)

// Params checks the Mcp-Param headers of tools/call requests (Check). It
// remembers what each tool definition marks with x-mcp-header, keyed by its
// exact JSON, so that a call does not decode its tool's inputSchema again.
// The answer is a function of those bytes alone: no caller is ever answered
// from another's list but with what its own bytes say. Forgotten whole when
// full. The zero value is ready.
type Params struct {
	mu sync.Mutex
	m  map[string]paramEntry
}

type paramEntry struct {
	headers map[string]string // read only
	err     error
}

// Check checks the Mcp-Param-{Name} headers of a tools/call (h, keyed as
// net/http keys them) against its arguments (params.arguments as sent) and
// the tool as listed (Tool): each top-level argument its inputSchema marks
// with x-mcp-header is checked with CheckParam against the one header named
// so; a header sent twice, and a header the tool does not declare (any
// case), are refused too, so that nothing reading request headers sees an
// unchecked one. Nested arguments are not mirrored. Errors wrap
// mcpparse.ErrHeaderMismatch.
func (p *Params) Check(h map[string][]string, arguments, tool []byte) error {
	headers, err := p.headers(tool)
	if err != nil {
		return fmt.Errorf("%w: tool definition: %w", mcpparse.ErrHeaderMismatch, err)
	}
	for k := range h {
		if x, ok := strings.CutPrefix(k, mcpparse.ParamHeaderPrefix); ok && !declared(headers, x) {
			return fmt.Errorf("%w: undeclared Mcp-Param header", mcpparse.ErrHeaderMismatch)
		}
	}
	for arg, header := range headers {
		v := textproto.MIMEHeader(h).Values(mcpparse.ParamHeaderPrefix + header)
		raw, _ := mcpparse.Argument(arguments, arg)
		if raw != nil {
			// Exactly this member: Argument ignores case, the schema not.
			f, err := mcpparse.Fields(arguments, mcpparse.Options{CaseSensitiveKeys: true}, arg)
			if err != nil {
				return fmt.Errorf("%w: %w", mcpparse.ErrHeaderMismatch, err)
			}
			raw = f[0].Raw
		}
		if len(v) > 1 {
			return fmt.Errorf("%w: repeated Mcp-Param header", mcpparse.ErrHeaderMismatch)
		}
		if err := mcpparse.CheckParam(strings.Join(v, ""), len(v) == 1, raw); err != nil {
			return err
		}
	}
	return nil
}

// declared reports whether header (any case) is one of headers' values.
func declared(headers map[string]string, header string) bool {
	for _, h := range headers {
		if strings.EqualFold(h, header) {
			return true
		}
	}
	return false
}

// headers is paramHeaders(tool), remembered; the map must not be changed.
func (p *Params) headers(tool []byte) (map[string]string, error) {
	if len(tool) > paramMemoTool {
		return paramHeaders(tool)
	}
	p.mu.Lock()
	e, ok := p.m[string(tool)]
	p.mu.Unlock()
	if ok {
		return e.headers, e.err
	}
	h, err := paramHeaders(tool)
	p.mu.Lock()
	if len(p.m) >= paramMemoEntries || p.m == nil {
		p.m = make(map[string]paramEntry)
	}
	p.m[string(tool)] = paramEntry{headers: h, err: err}
	p.mu.Unlock()
	return h, err
}

// paramHeaders maps the top-level arguments a tool marks with x-mcp-header
// to the header name each is mirrored in. Keys are matched exactly, as the
// server wrote them (no case folding), and a definition mcpparse refuses (a
// duplicate key, bad JSON) or an x-mcp-header that is not a string is an
// error: the call it would check is refused.
func paramHeaders(tool []byte) (map[string]string, error) {
	exact := mcpparse.Options{CaseSensitiveKeys: true}
	// member is obj's member name; nil when obj or the member is absent
	// or null. An obj that is not an object is an error.
	member := func(obj []byte, name string) ([]byte, error) {
		if obj == nil || string(obj) == "null" {
			return nil, nil
		}
		f, err := mcpparse.Fields(obj, exact, name)
		if err != nil {
			return nil, err
		}
		return f[0].Raw, nil
	}
	schema, err := member(tool, "inputSchema")
	if err != nil {
		return nil, err
	}
	props, err := member(schema, "properties")
	if err != nil {
		return nil, err
	}
	if props == nil || string(props) == "null" {
		return map[string]string{}, nil
	}
	args, err := mcpparse.Names(props, exact)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, arg := range args {
		prop, err := member(props, arg)
		if err != nil {
			return nil, err
		}
		h, err := member(prop, "x-mcp-header")
		if err != nil {
			return nil, err
		}
		if h == nil {
			continue
		}
		name, err := mcpparse.String(h)
		if err != nil {
			return nil, fmt.Errorf("x-mcp-header of %q: %w", arg, err)
		}
		if name != "" {
			out[arg] = name
		}
	}
	return out, nil
}
