package catalog

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// errListTooLarge is an upstream list beyond MaxListBytes or MaxListItems.
var errListTooLarge = errors.New("router: upstream list too large")

// codeNoMethod is JSON-RPC's method not found: a server without a kind.
const codeNoMethod = -32601

// fetched is one server's whole list, as read.
type fetched struct {
	items []Item
	bytes int64
	ttl   time.Duration // the least ttlMs of its pages; -1 when none said
	// private: some page was not cacheScope "public" (SEP-2549).
	private bool
}

// Limit names the size limit (maxListBytes, maxListItems) a list fetch
// failed on, "" when it failed otherwise.
func Limit(err error) string {
	var le *limitError
	if errors.As(err, &le) {
		return le.limit
	}
	return ""
}

// limitError is errListTooLarge for one limit.
type limitError struct{ limit string }

func (e *limitError) Error() string { return "router: upstream list beyond " + e.limit }
func (e *limitError) Unwrap() error { return errListTooLarge }

// callerError marks an upstream's refusal of the caller's credential as
// the caller's affair (ErrCaller).
func callerError(err error) error {
	if errors.Is(err, upstream.ErrUnauthorized) {
		return fmt.Errorf("%w: %w", ErrCaller, err)
	}
	return err
}

// fetch reads every page of one server's list, within MaxListBytes and
// MaxListItems: past either, the list is refused whole (nothing more is
// read, nothing of it kept), never cut. When nested (other servers'
// prefixes start with srv's), a tool or prompt whose prefixed name snap
// resolves to another server is left out: a client could never call it
// here, and the name is the other server's (reported once per fetch).
func (c *Catalog) fetch(ctx context.Context, k *Kind, caller Caller, snap *registry.Snapshot, srv *registry.Server, nested bool, auth string) (fetched, error) {
	res := fetched{ttl: -1}
	var shadowed []string
	defer func() {
		if len(shadowed) > 0 {
			c.report.Shadowed(srv, k.Method, shadowed) // once per fetch
		}
	}()
	cursor := ""
	for range MaxPages {
		params := []byte("{}")
		if cursor != "" {
			params = append(mcpparse.AppendString([]byte(`{"cursor":`), cursor), '}')
		}
		raw, version, err := c.src.Request(ctx, caller, srv, auth, k.Method, params)
		var re *upstream.RPCError
		if errors.As(err, &re) && re.Code == codeNoMethod {
			return res, nil // the server has none of this kind
		}
		if err != nil {
			return res, callerError(err)
		}
		f, err := mcpparse.Fields(raw, c.answer, k.Field, "nextCursor", "ttlMs", "cacheScope")
		if err != nil {
			return res, fmt.Errorf("router: %s %s: %w: %w", srv.Name, k.Method, upstream.ErrAnswer, err)
		}
		raws, err := mcpparse.Elements(f[0].Raw, c.answer)
		if err != nil {
			return res, fmt.Errorf("router: %s %s: %w: %w", srv.Name, k.Method, upstream.ErrAnswer, err)
		}
		if ttl, ok := pageTTL(f[2].Raw, version); ok && (res.ttl < 0 || ttl < res.ttl) {
			res.ttl = ttl
		}
		if s, _ := mcpparse.String(f[3].Raw); s != "public" {
			res.private = true // only an explicit "public" is public
		}
		for _, raw := range raws {
			it, ok := c.makeItem(k, srv, raw)
			if !ok {
				c.log.Warn("upstream item skipped", "server", srv.Name, "list", k.Method)
				continue
			}
			if k == Tools && mayMark(raw) {
				if _, err := paramBindings(raw); err != nil {
					it.Unlisted = true
					c.log.Warn("upstream tool left out of tools/list: its x-mcp-header marks are invalid",
						"server", srv.Name, "tool", it.Name, "error", err)
				}
			}
			if nested && k.prefix {
				if owner, _, ok := snap.Resolve(srv.Prefix + it.Name); ok && owner.Name != srv.Name {
					shadowed = append(shadowed, it.Name)
					continue
				}
			}
			res.items = append(res.items, it)
			res.bytes += int64(len(it.Raw))
		}
		switch {
		case res.bytes > c.cfg.MaxListBytes:
			return fetched{}, fmt.Errorf("router: %s %s: %w", srv.Name, k.Method, &limitError{"maxListBytes"})
		case len(res.items) > c.cfg.MaxListItems:
			return fetched{}, fmt.Errorf("router: %s %s: %w", srv.Name, k.Method, &limitError{"maxListItems"})
		}
		cursor = ""
		if f[1].Raw != nil {
			cursor, _ = mcpparse.String(f[1].Raw) // anything but a string ends the list
		}
		if cursor == "" {
			return res, nil
		}
	}
	return res, nil
}

// pageTTL reads a list result's ttlMs (SEP-2549), v as sent (nil when
// absent): ok when present. A value that is not a non-negative integer of
// milliseconds reads as 0: not cached. ttlMs is part of MCP from 2026-07-28
// on; in an upstream session of an earlier revision a 0 is no hint (go-sdk
// v1.8.0 sends its zero value, "ttlMs":0, on every list result of a 2025
// session), while a positive value still bounds how long the list is kept.
func pageTTL(v json.RawMessage, version string) (time.Duration, bool) {
	if v == nil {
		return 0, false
	}
	ms, err := mcpparse.Int(v)
	if err != nil || ms < 0 {
		return 0, true
	}
	if ms == 0 && version < ttlVersion {
		return 0, false
	}
	return time.Duration(min(ms, int64(math.MaxInt64/time.Millisecond))) * time.Millisecond, true
}

// ttlVersion is the first MCP revision that defines ttlMs and cacheScope.
const ttlVersion = "2026-07-28"

// makeItem names raw for the client: the prefix is added to tool and prompt
// names, spliced in where the name was; resources keep their URIs. The
// server's registration (category, hint, tags) is added to the item's
// _meta (MetaCategory, MetaHint, MetaTags), beside what the server put there, never over it.
func (c *Catalog) makeItem(k *Kind, srv *registry.Server, raw json.RawMessage) (Item, bool) {
	f, err := mcpparse.Fields(raw, c.answer, k.key, "_meta")
	if err != nil || f[0].Raw == nil {
		return Item{}, false
	}
	name, err := mcpparse.String(f[0].Raw)
	if err != nil || name == "" {
		return Item{}, false
	}
	it := Item{Server: srv.Name, Name: name}
	type edit struct {
		at mcpparse.Span
		v  []byte
	}
	var edits []edit // at most one before the other
	if k.prefix {
		if !mcpparse.ValidName(srv.Prefix + name) {
			return Item{}, false
		}
		at := mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)}
		edits = append(edits, edit{at, mcpparse.AppendString(make([]byte, 0, len(srv.Prefix)+len(name)+2), srv.Prefix+name)})
	}
	if at, v, ok := c.metaEdit(srv, raw, f[1]); ok {
		edits = append(edits, edit{at, v})
	}
	// Splice the later edit first: the earlier one's offsets still hold.
	slices.SortFunc(edits, func(a, b edit) int { return cmp.Compare(b.at.Start, a.at.Start) })
	it.Raw = raw
	for _, e := range edits {
		it.Raw = mcpparse.Splice(it.Raw, e.at, e.v)
	}
	if len(edits) == 0 {
		it.Raw = bytes.Clone(raw) // not the whole page
	}
	return it, true
}

// The _meta keys that carry a server's registration to clients. Kuadrant's broker exposes tags through tools of its own and
// defines no _meta keys; these are namespaced by mcp-authz (a prefix with
// a label "mcp", such as mcp.kuadrant.io/, is reserved by MCP).
const (
	MetaCategory = "mcp-authz.dev/category"
	MetaHint     = "mcp-authz.dev/hint"
	MetaTags     = "mcp-authz.dev/tags"
)

// metaEdit returns where and what to splice into item (one list entry) so
// that its _meta (meta, as read) holds srv's category, hint and tags: the
// keys the server did not set itself, in a new _meta when it has none. A
// _meta that is not an object is left alone. ok is false when there is
// nothing to add.
func (c *Catalog) metaEdit(srv *registry.Server, item []byte, meta mcpparse.Field) (mcpparse.Span, []byte, bool) {
	if len(srv.Category) == 0 && srv.Hint == "" && len(srv.Tags) == 0 {
		return mcpparse.Span{}, nil, false
	}
	have := map[string]bool{}
	if meta.Raw != nil {
		if meta.Raw[0] != '{' {
			return mcpparse.Span{}, nil, false
		}
		// Case-sensitive, as the answer is read: a key differing in case
		// is another key.
		f, err := mcpparse.Fields(meta.Raw, c.answer, MetaCategory, MetaHint, MetaTags)
		if err != nil {
			return mcpparse.Span{}, nil, false
		}
		have[MetaCategory], have[MetaHint], have[MetaTags] = f[0].Raw != nil, f[1].Raw != nil, f[2].Raw != nil
	}
	var add []byte
	member := func(key string, v any) {
		b, err := json.Marshal(v)
		if err != nil || have[key] {
			return
		}
		if len(add) > 0 {
			add = append(add, ',')
		}
		add = append(mcpparse.AppendString(add, key), ':')
		add = append(add, b...)
	}
	if len(srv.Category) > 0 {
		member(MetaCategory, srv.Category)
	}
	if srv.Hint != "" {
		member(MetaHint, srv.Hint)
	}
	if len(srv.Tags) > 0 {
		member(MetaTags, srv.Tags)
	}
	if len(add) == 0 {
		return mcpparse.Span{}, nil, false
	}
	if meta.Raw == nil {
		// A new _meta first in the item, which has at least its name.
		at := bytes.IndexByte(item, '{') + 1
		v := append(append([]byte(`"_meta":{`), add...), "},"...)
		return mcpparse.Span{Start: at, End: at}, v, true
	}
	at := meta.Start + 1
	if len(bytes.TrimSpace(meta.Raw[1:len(meta.Raw)-1])) > 0 {
		add = append(add, ',')
	}
	return mcpparse.Span{Start: at, End: at}, add, true
}
