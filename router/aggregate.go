package router

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// kind is one of the four aggregated lists.
type kind struct {
	method string // e.g. tools/list
	field  string // the array in the result, e.g. tools
	key    string // the member that names an item: name, uri or uriTemplate
	prefix bool   // names get the server's prefix
}

var (
	toolsKind     = &kind{method: "tools/list", field: "tools", key: "name", prefix: true}
	promptsKind   = &kind{method: "prompts/list", field: "prompts", key: "name", prefix: true}
	resourcesKind = &kind{method: "resources/list", field: "resources", key: "uri"}
	templatesKind = &kind{method: "resources/templates/list", field: "resourceTemplates", key: "uriTemplate"}
)

// target is it as the policy sees the request that would use it: a tool's
// tools/call, a prompt's prompts/get, a resource's (or template's)
// resources/read.
func (k *kind) target(it *item) policy.Target {
	t := policy.Target{Server: it.server}
	switch k {
	case toolsKind:
		t.Tool = it.name
	case promptsKind:
		t.Prompt = it.name
	default:
		t.Resource = it.name
	}
	return t
}

// maxPages bounds how many pages of one upstream list are fetched.
const maxPages = 100

// listRetry is how long a server whose list failed is left out (or served
// from its last list) before it is asked again, so that a dead server does
// not slow down every list.
const listRetry = 10 * time.Second

// item is one tool, prompt, resource or template of one server.
type item struct {
	server string          // registration name
	name   string          // as the server names it (tools, prompts) or its URI
	raw    json.RawMessage // as the client sees it: prefixed
}

// errListTooLarge is an upstream list beyond MaxListBytes or MaxListItems.
var errListTooLarge = errors.New("router: upstream list too large")

// collect returns the items of k from every server, for the caller's
// authorization context: each server's list as fetched with the credential
// the router sends that server for this caller, from the cache while fresh.
// A server that fails is left out (its last list of this context is served
// while its deadline allows); servers whose lists take the aggregate past
// MaxAggregateBytes or MaxAggregateItems are left out, the largest first.
func (r *Router) collect(ctx context.Context, c *call, k *kind) []item {
	items, _ := r.collectLists(ctx, c, k)
	return items
}

// listMeta is what the lists collect aggregated say of caching: how long
// the aggregate stays fresh (the least of its lists') and whether any was
// private.
type listMeta struct {
	fresh   time.Duration
	private bool
}

// collectLists is collect, with the aggregate's listMeta.
func (r *Router) collectLists(ctx context.Context, c *call, k *kind) ([]item, listMeta) {
	snap := r.reg.Load()
	servers := snap.Servers()
	nested := r.shadowIndex(snap)
	lists := make([]*serverList, len(servers))
	type miss struct {
		i    int
		key  listKey
		auth string
	}
	var missing []miss
	now := r.now()
	var (
		lastAuth string
		authCtx  [32]byte
		digested bool
	)
	for i := range servers {
		srv := &servers[i]
		auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
		if err != nil {
			// The caller's affair, not the server's: no credential, no list.
			r.log.Debug("list not fetched for this caller", "server", srv.Name, "list", k.method)
			continue
		}
		if !digested || auth != lastAuth {
			// Servers reached with one credential (no exchange) share
			// the digest.
			lastAuth, authCtx, digested = auth, authContext(c.claims.Issuer, c.claims.Subject, auth), true
		}
		key, l, ok := r.lists.lookup(k, srv, nested[srv.Name], authCtx, now)
		if ok && now.Before(l.fresh) {
			lists[i] = l
			continue
		}
		missing = append(missing, miss{i, key, auth})
	}
	var wg sync.WaitGroup
	for _, m := range missing {
		wg.Go(func() { lists[m.i] = r.fetchCached(ctx, c, k, snap, &servers[m.i], m.key, m.auth) })
	}
	wg.Wait()
	r.boundAggregate(k, servers, lists)
	n := 0
	for _, l := range lists {
		if l != nil {
			n += len(l.items)
		}
	}
	out := make([]item, 0, n)
	meta := listMeta{fresh: r.cfg.ListRefresh}
	for _, l := range lists {
		if l != nil {
			out = append(out, l.items...)
			meta.fresh = min(meta.fresh, max(l.fresh.Sub(now), 0))
			meta.private = meta.private || l.private
		}
	}
	return out, meta
}

// boundAggregate leaves servers out of lists, the largest lists first, until
// the rest fit MaxAggregateBytes and MaxAggregateItems: a few fat upstreams
// cannot push out the others, and what is left out is whole servers, never
// a cut list.
func (r *Router) boundAggregate(k *kind, servers []registry.Server, lists []*serverList) {
	var bytes int64
	items := 0
	for _, l := range lists {
		if l != nil {
			bytes += l.bytes
			items += len(l.items)
		}
	}
	if bytes <= r.cfg.MaxAggregateBytes && items <= r.cfg.MaxAggregateItems {
		return
	}
	order := make([]int, 0, len(lists))
	for i, l := range lists {
		if l != nil {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(lists[b].bytes, lists[a].bytes); c != 0 {
			return c
		}
		return cmp.Compare(len(lists[b].items), len(lists[a].items))
	})
	for _, i := range order {
		if bytes <= r.cfg.MaxAggregateBytes && items <= r.cfg.MaxAggregateItems {
			return
		}
		limit := "maxAggregateBytes"
		if bytes <= r.cfg.MaxAggregateBytes {
			limit = "maxAggregateItems"
		}
		r.listTooLarge(&servers[i], k, limit, lists[i].bytes, len(lists[i].items))
		bytes -= lists[i].bytes
		items -= len(lists[i].items)
		lists[i] = nil
	}
}

// listTooLarge reports a list left out for a size limit.
func (r *Router) listTooLarge(srv *registry.Server, k *kind, limit string, bytes int64, items int) {
	r.metrics.tooLarge.WithLabelValues(srv.Name, limit).Inc()
	r.log.Warn("upstream list left out: too large", "server", srv.Name, "list", k.method,
		"limit", limit, "bytes", bytes, "items", items)
}

// fetchCached fetches srv's list (of snap) for one authorization context
// (key) and caches it as its ttlMs and the caller token's expiry allow.
// Concurrent misses of one context share one fetch; different contexts
// never do.
func (r *Router) fetchCached(ctx context.Context, c *call, k *kind, snap *registry.Snapshot, srv *registry.Server, key listKey, auth string) *serverList {
	v, err, _ := r.lists.sf.Do(key.String(), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ListTimeout)
		defer cancel()
		start := r.now()
		ctx, span := r.traceUpstream(ctx, k.method, "", srv)
		res, err := r.fetch(ctx, c, k, snap, srv, key.nested != "", auth)
		endTrace(span, err)
		if err != nil {
			return nil, err
		}
		l := &serverList{server: srv.Name, items: res.items, bytes: res.bytes, private: res.private}
		l.fresh = start.Add(r.cfg.ListRefresh)
		l.until = start.Add(2 * r.cfg.ListRefresh)
		if res.ttl >= 0 {
			// Never served longer than the upstream says (SEP-2549).
			l.fresh = start.Add(min(res.ttl, r.cfg.ListRefresh))
			l.until = start.Add(res.ttl)
		}
		if exp := c.claims.CallerExpiry; !exp.IsZero() && exp.Before(l.until) {
			l.until = exp
		}
		if l.until.Before(l.fresh) {
			l.fresh = l.until
		}
		// A cacheScope "private" list needs nothing more: every list is
		// kept for its own authorization context only, public or not.
		if l.until.After(start) {
			r.lists.put(key, l)
		}
		return l, nil
	})
	if errors.Is(err, errCaller) {
		// This caller may not reach the server: that says nothing of the
		// server, so nothing is cached; its last list is still served.
		r.log.Debug("list not fetched for this caller", "server", srv.Name, "list", k.method)
		l, _ := r.lists.get(key, r.now())
		return l
	}
	if err != nil {
		if errors.Is(err, errListTooLarge) {
			r.metrics.tooLarge.WithLabelValues(srv.Name, listLimit(err)).Inc()
		}
		r.upstreamFailed(srv, k.method, err)
		// Ask again after listRetry; meanwhile serve the last list while
		// its deadline allows, else nothing.
		now := r.now()
		retry := now.Add(min(listRetry, r.cfg.ListRefresh))
		old, _ := r.lists.get(key, now)
		marker := &serverList{server: srv.Name, fresh: retry, until: retry}
		if old != nil && !old.until.Before(retry) {
			marker.items, marker.bytes = old.items, old.bytes
		}
		r.lists.put(key, marker)
		return old
	}
	return v.(*serverList)
}

// shadowIndex is, for one snapshot, each server's nested prefixes: the
// other servers' prefixes that start with its own (joined with NUL), so
// that some of its names resolve to them. Servers without any are absent.
type shadowIndex struct {
	snap   *registry.Snapshot
	nested map[string]string
}

// shadowIndex returns the nested prefixes of snap's servers, computed once
// per snapshot.
func (r *Router) shadowIndex(snap *registry.Snapshot) map[string]string {
	if s := r.shadows.Load(); s != nil && s.snap == snap {
		return s.nested
	}
	servers := snap.Servers()
	slices.SortFunc(servers, func(a, b registry.Server) int { return strings.Compare(a.Prefix, b.Prefix) })
	nested := map[string]string{}
	for i, s := range servers {
		// In sorted order, the prefixes that start with s.Prefix follow it.
		var longer []string
		for _, o := range servers[i+1:] {
			if !strings.HasPrefix(o.Prefix, s.Prefix) {
				break
			}
			longer = append(longer, o.Prefix)
		}
		if len(longer) > 0 {
			nested[s.Name] = strings.Join(longer, "\x00")
		}
	}
	r.shadows.Store(&shadowIndex{snap: snap, nested: nested})
	return nested
}

// reportShadowed counts and logs, once per fetch, the names of srv's list
// that another server's longer prefix takes.
func (r *Router) reportShadowed(srv *registry.Server, k *kind, names []string) {
	r.metrics.shadowed.WithLabelValues(srv.Name, k.method).Add(float64(len(names)))
	const shown = 10
	r.log.Warn("upstream names left out: another server's longer prefix takes them",
		"server", srv.Name, "prefix", srv.Prefix, "list", k.method, "count", len(names), "names", names[:min(len(names), shown)])
}

// fetched is one server's whole list, as read.
type fetched struct {
	items []item
	bytes int64
	ttl   time.Duration // the least ttlMs of its pages; -1 when none said
	// private: some page was not cacheScope "public" (SEP-2549).
	private bool
}

// listLimit names the limit a errListTooLarge error is about.
func listLimit(err error) string {
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

// fetch reads every page of one server's list, within MaxListBytes and
// MaxListItems: past either, the list is refused whole (nothing more is
// read, nothing of it kept), never cut. When nested (other servers'
// prefixes start with srv's), a tool or prompt whose prefixed name snap
// resolves to another server is left out: a client could never call it
// here, and the name is the other server's (reported once per fetch).
func (r *Router) fetch(ctx context.Context, c *call, k *kind, snap *registry.Snapshot, srv *registry.Server, nested bool, auth string) (fetched, error) {
	res := fetched{ttl: -1}
	var shadowed []string
	defer func() {
		if len(shadowed) > 0 {
			r.reportShadowed(srv, k, shadowed)
		}
	}()
	up, err := r.upstreamFor(ctx, c.sess, srv, auth)
	if err != nil {
		return res, callerError(err)
	}
	cursor := ""
	retried := false
	for page := 0; page < maxPages; page++ {
		params := []byte("{}")
		if cursor != "" {
			params = append(mcpparse.AppendString([]byte(`{"cursor":`), cursor), '}')
		}
		if up.ID == "" && up.Version >= upstream.Stateless {
			params = upstream.StatelessParams(params, c.sess.Info, c.sess.Caps)
		}
		h := upstream.Headers{Auth: auth, Session: up.ID, Version: up.Version}
		raw, _, err := r.up.Request(ctx, target(srv), h, k.method, params)
		if errors.Is(err, errUpstreamSession) && up.ID != "" && !retried {
			retried = true
			if up, err = r.reinit(ctx, c.sess, srv, auth, up); err != nil {
				return res, err
			}
			page--
			continue
		}
		var re *upstream.RPCError
		if errors.As(err, &re) && re.Code == codeNoMethod {
			return res, nil // the server has none of this kind
		}
		if err != nil {
			return res, callerError(err)
		}
		f, err := mcpparse.Fields(raw, r.answer, k.field, "nextCursor", "ttlMs", "cacheScope")
		if err != nil {
			return res, fmt.Errorf("router: %s %s: %w: %w", srv.Name, k.method, errUpstreamAnswer, err)
		}
		raws, err := mcpparse.Elements(f[0].Raw, r.answer)
		if err != nil {
			return res, fmt.Errorf("router: %s %s: %w: %w", srv.Name, k.method, errUpstreamAnswer, err)
		}
		if ttl, ok := pageTTL(f[2].Raw, up.Version); ok && (res.ttl < 0 || ttl < res.ttl) {
			res.ttl = ttl
		}
		if s, _ := mcpparse.String(f[3].Raw); s != "public" {
			res.private = true // only an explicit "public" is public
		}
		for _, raw := range raws {
			it, ok := r.makeItem(k, srv, raw)
			if !ok {
				r.log.Warn("upstream item skipped", "server", srv.Name, "list", k.method)
				continue
			}
			if nested && k.prefix {
				if owner, _, ok := snap.Resolve(srv.Prefix + it.name); ok && owner.Name != srv.Name {
					shadowed = append(shadowed, it.name)
					continue
				}
			}
			res.items = append(res.items, it)
			res.bytes += int64(len(it.raw))
		}
		switch {
		case res.bytes > r.cfg.MaxListBytes:
			return fetched{}, fmt.Errorf("router: %s %s: %w", srv.Name, k.method, &limitError{"maxListBytes"})
		case len(res.items) > r.cfg.MaxListItems:
			return fetched{}, fmt.Errorf("router: %s %s: %w", srv.Name, k.method, &limitError{"maxListItems"})
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

// errCaller marks a failure that belongs to the caller (no token for the
// server, or the server refused it) rather than to the server.
var errCaller = errors.New("router: the caller may not reach the server")

func callerError(err error) error {
	if errors.Is(err, errUpstreamUnauthorized) {
		return fmt.Errorf("%w: %w", errCaller, err)
	}
	return err
}

// makeItem names raw for the client: the prefix is added to tool and prompt
// names, spliced in where the name was; resources keep their URIs. The
// server's registration (category, hint, tags) is added to the item's
// _meta (metaKeys), beside what the server put there, never over it.
func (r *Router) makeItem(k *kind, srv *registry.Server, raw json.RawMessage) (item, bool) {
	f, err := mcpparse.Fields(raw, r.answer, k.key, "_meta")
	if err != nil || f[0].Raw == nil {
		return item{}, false
	}
	name, err := mcpparse.String(f[0].Raw)
	if err != nil || name == "" {
		return item{}, false
	}
	it := item{server: srv.Name, name: name}
	type edit struct {
		at mcpparse.Span
		v  []byte
	}
	var edits []edit // at most one before the other
	if k.prefix {
		if !mcpparse.ValidName(srv.Prefix + name) {
			return item{}, false
		}
		at := mcpparse.Span{Start: f[0].Start, End: f[0].Start + len(f[0].Raw)}
		edits = append(edits, edit{at, mcpparse.AppendString(make([]byte, 0, len(srv.Prefix)+len(name)+2), srv.Prefix+name)})
	}
	if at, v, ok := r.metaEdit(srv, raw, f[1]); ok {
		edits = append(edits, edit{at, v})
	}
	// Splice the later edit first: the earlier one's offsets still hold.
	slices.SortFunc(edits, func(a, b edit) int { return cmp.Compare(b.at.Start, a.at.Start) })
	it.raw = raw
	for _, e := range edits {
		it.raw = mcpparse.Splice(it.raw, e.at, e.v)
	}
	if len(edits) == 0 {
		it.raw = bytes.Clone(raw) // not the whole page
	}
	return it, true
}

// metaKeys are the _meta keys that carry a server's registration to
// clients. Kuadrant's broker exposes tags through tools of its own and
// defines no _meta keys; these are namespaced by mcp-authz (a prefix with
// a label "mcp", such as mcp.kuadrant.io/, is reserved by MCP).
const (
	metaCategory = "mcp-authz.dev/category"
	metaHint     = "mcp-authz.dev/hint"
	metaTags     = "mcp-authz.dev/tags"
)

// metaEdit returns where and what to splice into item (one list entry) so
// that its _meta (meta, as read) holds srv's category, hint and tags: the
// keys the server did not set itself, in a new _meta when it has none. A
// _meta that is not an object is left alone. ok is false when there is
// nothing to add.
func (r *Router) metaEdit(srv *registry.Server, item []byte, meta mcpparse.Field) (mcpparse.Span, []byte, bool) {
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
		f, err := mcpparse.Fields(meta.Raw, r.answer, metaCategory, metaHint, metaTags)
		if err != nil {
			return mcpparse.Span{}, nil, false
		}
		have[metaCategory], have[metaHint], have[metaTags] = f[0].Raw != nil, f[1].Raw != nil, f[2].Raw != nil
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
		member(metaCategory, srv.Category)
	}
	if srv.Hint != "" {
		member(metaHint, srv.Hint)
	}
	if len(srv.Tags) > 0 {
		member(metaTags, srv.Tags)
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

// list answers one of the list methods: aggregated, filtered for the
// caller by the policy of the method that uses each entry, one page.
func (r *Router) list(w http.ResponseWriter, c *call, k *kind) {
	var cursor string
	if v := nullable(c.msg.Cursor); v != nil {
		var err error
		if cursor, err = mcpparse.String(v); err != nil {
			writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid params")
			return
		}
	}
	offset, ok := decodeCursor(cursor)
	if !ok {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid cursor")
		return
	}
	ctx := c.req.Context()
	items, meta := r.collectLists(ctx, c, k)
	if r.auth != nil {
		meta.private = true // filtered for this caller
	}
	if r.auth != nil && len(items) > 0 {
		targets := make([]policy.Target, len(items))
		for i, it := range items {
			targets[i] = k.target(&it)
		}
		vis, err := r.auth.Visible(ctx, c.auth, targets)
		if err != nil || len(vis) != len(items) {
			r.log.Warn("list filter failed", "list", k.method, "error", fmt.Sprint(err))
			writeError(w, http.StatusOK, c.msg.ID, codeInternal, "authorization unavailable")
			return
		}
		kept := items[:0] // collect's slice is this call's own
		for i, it := range items {
			if vis[i] {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if offset > len(items) {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid cursor")
		return
	}
	end := len(items)
	if r.cfg.PageSize > 0 && offset+r.cfg.PageSize < end {
		end = offset + r.cfg.PageSize
	}
	n := 96 + len(c.msg.ID)
	for _, it := range items[offset:end] {
		n += len(it.raw) + 1
	}
	var b bytes.Buffer
	b.Grow(n)
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(c.msg.ID)
	b.WriteString(`,"result":{"`)
	b.WriteString(k.field)
	b.WriteString(`":[`)
	for i, it := range items[offset:end] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it.raw)
	}
	b.WriteByte(']')
	if end < len(items) {
		b.WriteString(`,"nextCursor":"`)
		b.WriteString(encodeCursor(end))
		b.WriteByte('"')
	}
	if c.sess.stateless() {
		// SEP-2549: the aggregate is fresh as long as its stalest part, and
		// private when any part is or when it was filtered for the caller.
		b.WriteString(`,"resultType":"complete","ttlMs":`)
		b.WriteString(strconv.FormatInt(meta.fresh.Milliseconds(), 10))
		if meta.private {
			b.WriteString(`,"cacheScope":"private"`)
		} else {
			b.WriteString(`,"cacheScope":"public"`)
		}
	}
	b.WriteString("}}")
	writeJSON(w, http.StatusOK, b.Bytes())
}

// Cursors are opaque to clients: an offset into the aggregated list.
func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("o" + strconv.Itoa(offset)))
}

func decodeCursor(s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'o' {
		return 0, false
	}
	n, err := strconv.Atoi(string(b[1:]))
	return n, err == nil && n >= 0
}
