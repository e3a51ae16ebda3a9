package catalog

import (
	"encoding/json"
	"fmt"
	"net/textproto"
	"strings"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// CheckParams checks the Mcp-Param-{Name} headers of a tools/call (h, keyed
// as net/http keys them) against its arguments (params.arguments as sent)
// and the tool as listed (Tool): each top-level argument its inputSchema marks
// with x-mcp-header is checked with CheckParam against the one header named
// so; a header sent twice, and a header the tool does not declare (any
// case), are refused too, so that nothing reading request headers sees an
// unchecked one. Nested arguments are not mirrored. Errors wrap
// mcpparse.ErrHeaderMismatch.
func CheckParams(h map[string][]string, arguments, tool []byte) error {
	headers, err := paramHeaders(tool)
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

// paramHeaders maps the top-level arguments a tool marks with x-mcp-header
// to the header name each is mirrored in.
func paramHeaders(tool []byte) (map[string]string, error) {
	var t struct {
		InputSchema struct {
			Properties map[string]struct {
				Header *string `json:"x-mcp-header"`
			} `json:"properties"`
		} `json:"inputSchema"`
	}
	if err := json.Unmarshal(tool, &t); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for arg, p := range t.InputSchema.Properties {
		if p.Header != nil && *p.Header != "" {
			out[arg] = *p.Header
		}
	}
	return out, nil
}
