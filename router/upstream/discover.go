package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// Stateless is the MCP revision without sessions (SEP-2575, SEP-2567):
// every request carries its version and the client's capabilities in
// params._meta, and no initialize is sent.
const Stateless = "2026-07-28"

// Keys of the per-request _meta of a stateless request.
const (
	MetaVersion      = "io.modelcontextprotocol/protocolVersion"
	MetaClientInfo   = "io.modelcontextprotocol/clientInfo"
	MetaCapabilities = "io.modelcontextprotocol/clientCapabilities"
)

// Discovered is what a server answered to server/discover.
type Discovered struct {
	Versions []string
	// Capabilities is the server's capabilities object, as sent.
	Capabilities []byte
}

// Modern reports whether the server speaks the stateless revision.
func (d Discovered) Modern() bool { return slices.Contains(d.Versions, Stateless) }

// ErrLegacy: the server does not answer server/discover as a stateless
// server does (it speaks only revisions with initialize and sessions).
var ErrLegacy = errors.New("upstream: server does not speak " + Stateless)

// Discover asks the server t for its versions and capabilities
// (server/discover, sent as a stateless request). A server that refuses it
// (HTTP 4xx, a JSON-RPC error, no 2026 version) is legacy: the error wraps
// ErrLegacy. Transport failures, 5xx, and a 403 or 429 (the server's route
// refusing or limiting this caller, as a Kuadrant policy does) are returned
// as they are: they say nothing of the server's revision, and one caller's
// refusal must not mark the server legacy for every caller.
func (c *Client) Discover(ctx context.Context, t Target, auth string, clientInfo, capabilities []byte) (Discovered, error) {
	ctx, cancel := context.WithTimeout(ctx, c.initTTL)
	defer cancel()
	res, _, err := c.Request(ctx, t, Headers{Auth: auth, Version: Stateless}, "server/discover", StatelessParams(nil, clientInfo, capabilities))
	var re *RPCError
	switch {
	case errors.As(err, &re), errors.Is(err, ErrSessionEnded):
		return Discovered{}, fmt.Errorf("%w: %w", ErrLegacy, err)
	case errors.Is(err, ErrAnswer) && !revisionUnknown(err):
		return Discovered{}, fmt.Errorf("%w: %w", ErrLegacy, err)
	case err != nil:
		return Discovered{}, err
	}
	f, err := mcpparse.Fields(res, c.answer, "supportedVersions", "capabilities")
	if err != nil || f[0].Raw == nil {
		return Discovered{}, fmt.Errorf("%w: server/discover: no supportedVersions", ErrLegacy)
	}
	raws, err := mcpparse.Elements(f[0].Raw, c.answer)
	if err != nil {
		return Discovered{}, fmt.Errorf("%w: server/discover: %w", ErrLegacy, err)
	}
	d := Discovered{Capabilities: f[1].Raw}
	for _, r := range raws {
		if v, err := mcpparse.String(r); err == nil {
			d.Versions = append(d.Versions, v)
		}
	}
	if !d.Modern() {
		return d, fmt.Errorf("%w: versions %v", ErrLegacy, d.Versions)
	}
	return d, nil
}

// revisionUnknown reports whether err is an HTTP answer that says nothing
// of a server's revision: a 5xx, or a route's 403 or 429 for the caller.
func revisionUnknown(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.code >= 500 || se.code == http.StatusForbidden || se.code == http.StatusTooManyRequests)
}

// StatelessParams returns a params object for a stateless request: params
// (a JSON object, nil for none) with the _meta keys of the stateless
// revision set to Stateless, clientInfo and capabilities (nil: the
// router's own, {}). Other _meta members are kept; nothing else of params is
// re-encoded.
func StatelessParams(params, clientInfo, capabilities []byte) []byte {
	if capabilities == nil {
		capabilities = []byte("{}")
	}
	if clientInfo == nil {
		clientInfo = []byte(`{"name":"mcp-authz-router","version":"0"}`)
	}
	meta := make([]byte, 0, 128+len(clientInfo)+len(capabilities))
	meta = append(meta, '"')
	meta = append(meta, MetaVersion...)
	meta = append(meta, `":"`+Stateless+`","`...)
	meta = append(meta, MetaClientInfo...)
	meta = append(meta, `":`...)
	meta = append(meta, clientInfo...)
	meta = append(meta, `,"`...)
	meta = append(meta, MetaCapabilities...)
	meta = append(meta, `":`...)
	meta = append(meta, capabilities...)
	return setMeta(params, meta, MetaVersion, MetaClientInfo, MetaCapabilities)
}

// stripStateless returns params without the _meta keys of the stateless
// revision, for a server of an earlier one (a session-keeping server may
// refuse a request that names a version it does not serve in _meta). params
// without them is returned as is.
func stripStateless(params []byte) []byte {
	return setMeta(params, nil, MetaVersion, MetaClientInfo, MetaCapabilities)
}

// setMeta returns params (a JSON object, or nil) with the keys drop removed
// from its _meta and members (`"key":value` pairs, comma-separated, or nil)
// added to it. params whose _meta needs no change is returned as is; an
// unreadable one too (it was read strictly before it came here).
func setMeta(params, members []byte, drop ...string) []byte {
	if len(params) == 0 {
		if members == nil {
			return params
		}
		return append(append(append([]byte(`{"_meta":{`), members...), '}'), '}')
	}
	opts := mcpparse.Options{MaxBytes: len(params) + 1, MaxDepth: answerDepth, CaseSensitiveKeys: true}
	f, err := mcpparse.Fields(params, opts, "_meta")
	if err != nil {
		return params
	}
	if f[0].Raw == nil || string(f[0].Raw) == "null" {
		if members == nil {
			return params
		}
		// Insert "_meta" as params' first member.
		i := bytes.IndexByte(params, '{') + 1
		out := make([]byte, 0, len(params)+len(members)+16)
		out = append(out, params[:i]...)
		out = append(out, `"_meta":{`...)
		out = append(out, members...)
		out = append(out, '}')
		if !emptyObject(params[i:]) {
			out = append(out, ',')
		}
		return append(out, params[i:]...)
	}
	// The members kept, read in place (no map, no second decoder): the
	// names, then their values, written back sorted by name.
	names, err := mcpparse.Names(f[0].Raw, opts)
	if err != nil {
		return params
	}
	changed := members != nil
	kept := names[:0]
	for _, k := range names {
		if slices.Contains(drop, k) {
			changed = true
			continue
		}
		kept = append(kept, k)
	}
	if !changed {
		return params
	}
	slices.Sort(kept)
	var vals []mcpparse.Field
	if len(kept) > 0 {
		if vals, err = mcpparse.Fields(f[0].Raw, opts, kept...); err != nil {
			return params
		}
	}
	meta := append(make([]byte, 0, len(f[0].Raw)+len(members)), '{')
	meta = append(meta, members...)
	for i, k := range kept {
		if len(meta) > 1 {
			meta = append(meta, ',')
		}
		meta = mcpparse.AppendString(meta, k)
		meta = append(meta, ':')
		meta = append(meta, vals[i].Raw...)
	}
	meta = append(meta, '}')
	return mcpparse.Splice(params, mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)}, meta)
}

// emptyObject reports whether rest, what follows an object's '{', closes it.
func emptyObject(rest []byte) bool {
	t := bytes.TrimLeft(rest, " \t\r\n")
	return len(t) > 0 && t[0] == '}'
}
