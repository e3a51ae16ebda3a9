package forward

// Mcp-Param headers (SEP-2243) on the way upstream. The router is the
// client of its servers: a tools/call it sends to a server of the stateless
// revision carries an Mcp-Param-{Name} header for each argument the tool's
// inputSchema marks with x-mcp-header, made by the router from the body it
// sends and the tool as the server listed it (catalog.Params.Mirror), never
// copied from the client, whatever the client's revision. A server of an
// earlier revision gets none.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/catalog"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// errParamMismatch: the server refused a call's Mcp-Param headers
// (HeaderMismatch) again after the router read its tool's definition anew.
// The client is told so, with the server's code; the server has not failed.
var errParamMismatch = errors.New("router: the server refused the call's Mcp-Param headers")

// mirrorError: a call cannot carry the Mcp-Param headers its tool asks
// for, so nothing is sent. err wraps catalog.ErrToolDefinition (the
// server's definition cannot be honoured) or mcpparse.ErrInvalidParams (an
// argument cannot be mirrored).
type mirrorError struct{ err error }

func (e *mirrorError) Error() string { return "router: Mcp-Param headers: " + e.err.Error() }
func (e *mirrorError) Unwrap() error { return e.err }

// mirrors reports whether a request to a server on up carries Mcp-Param
// headers: a tools/call to a server of the stateless revision.
func mirrors(c *Call, up upstream.Session) bool {
	return c.Msg.Method == "tools/call" && up.ID == "" && up.Version >= upstream.Stateless
}

// paramHeaders returns the Mcp-Param headers of body, a tools/call of the
// tool name sent to srv with auth: from the tool as the caller's list of
// srv has it (as the router read it for this call's check, c.Tool, when it
// did; else as the catalog holds it for this caller, stale or not, see
// catalog.Definition), read anew when refresh. A tool the list does not
// have (or a list that cannot be had) marks nothing: the server answers
// the call. A definition read anew is checked against the client's
// Mcp-Param headers again (recheck) before anything is sent with it.
func (fw *Forwarder) paramHeaders(ctx context.Context, c *Call, srv *registry.Server, auth, name string, body []byte, refresh bool) ([]upstream.Param, error) {
	var tool json.RawMessage // nil: the list has no such tool
	switch {
	case refresh:
		tool, _ = fw.cat.RefreshTool(ctx, c.Caller(), srv, auth, name)
		if err := fw.recheck(c, tool); err != nil {
			return nil, err
		}
		c.Tool = tool // later rounds (mrtr.go) read what the catalog now holds (nil: none)
	case c.Tool != nil:
		tool = c.Tool
	default:
		tool, _, _ = fw.cat.Definition(ctx, c.Caller(), srv, auth, name)
	}
	if tool == nil {
		return nil, nil
	}
	p, err := fw.params.Mirror(body, tool)
	if err != nil {
		return nil, &mirrorError{err}
	}
	return p, nil
}

// recheck checks the client's Mcp-Param headers, where the router checks
// them (Call.ChecksParams), against tool: its definition read anew after
// the server refused the call (nil: the list no longer has it, so it
// declares no header). The router checked them against the definition it
// held, which may have been stale; a call is never sent with header values other than those the
// client's headers carry, which a gateway's policy may have read. A
// mismatch is errParamMismatch (the client is answered HeaderMismatch and
// should list the tools again); a definition that cannot be honoured, a
// mirrorError.
func (fw *Forwarder) recheck(c *Call, tool json.RawMessage) error {
	if !c.ChecksParams() {
		return nil
	}
	err := fw.params.Check(c.Req.Header, c.Msg.Arguments, tool)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, catalog.ErrToolDefinition):
		return &mirrorError{err}
	default:
		return errParamMismatch
	}
}

// maxMismatchBody bounds what is read of a 400 answer to tell a
// HeaderMismatch.
const maxMismatchBody = 64 << 10

// headerMismatch reports whether resp is a server's HeaderMismatch: 400
// with a JSON-RPC error -32020. resp's body stays readable: what was read of
// it is put back.
func (fw *Forwarder) headerMismatch(resp *http.Response) bool {
	if resp.StatusCode != http.StatusBadRequest || upstream.MediaType(resp.Header) != "application/json" {
		return false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMismatchBody))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return false
	}
	m, err := mcpparse.Parse(b, fw.answer)
	if err != nil || m.Kind != mcpparse.KindError {
		return false
	}
	f, err := mcpparse.Fields(m.Error, fw.answer, "code")
	if err != nil {
		return false
	}
	code, err := mcpparse.Int(f[0].Raw)
	return err == nil && code == CodeHeaderMismatch
}

// paramRefusal is what the client is answered when a call is refused for
// its Mcp-Param headers (err from sendSession): its HTTP status, JSON-RPC
// code and message; ok is false for any other error. A server's definition
// that cannot be honoured is the server's failure, counted as one; the
// rest are not.
func (fw *Forwarder) paramRefusal(c *Call, srv *registry.Server, err error) (status, code int, msg string, ok bool) {
	var me *mirrorError
	switch {
	case errors.Is(err, errParamMismatch):
		return http.StatusBadRequest, CodeHeaderMismatch, "the server refused the Mcp-Param headers of this call", true
	case !errors.As(err, &me):
		return 0, 0, "", false
	case errors.Is(err, catalog.ErrToolDefinition):
		fw.failed(srv, c.Msg.Method, err)
		return http.StatusOK, CodeInternal, "the server's definition of this tool has an x-mcp-header the router cannot send", true
	default:
		return http.StatusOK, CodeInvalidParams, "an argument marked x-mcp-header must be a string, a boolean or an integer within ±(2^53-1)", true
	}
}
