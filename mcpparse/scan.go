package mcpparse

import "github.com/mcp-authz/mcp-authz/mcpparse/internal/jsonscan"

// scanner is the strict JSON scanner with this package's readers of
// JSON-RPC and MCP on top (message.go).
type scanner struct{ jsonscan.Scanner }

// init readies p to read body within the limits of o, and reads the
// leading white space.
func (p *scanner) init(body []byte, o Options) error {
	return p.Init(body, jsonscan.Options{MaxBytes: o.MaxBytes, MaxDepth: o.MaxDepth, Exact: o.CaseSensitiveKeys, AnyNumberID: o.AnyNumberID})
}

// FoldKey returns the folded form of a JSON object key: every rune replaced
// by one rune standing for its simple case-folding orbit (ASCII letters by
// their lower case, U+017F LONG S by s, U+212A KELVIN SIGN by k). Two keys
// have the same folded form if and only if bytes.EqualFold reports them
// equal, which is when encoding/json (and so any MCP server decoding into Go
// structs with it) may read one for the other. A key already folded is
// returned as it is, without allocating; s must be valid UTF-8.
func FoldKey(s string) string { return jsonscan.FoldKey(s) }
