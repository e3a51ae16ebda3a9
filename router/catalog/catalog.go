// Package catalog aggregates the lists of the registered MCP servers (tools,
// prompts, resources, resource templates) for each caller: fetched per
// authorization context, cached within a byte budget, bounded, prefixed,
// filtered by policy and paged.
package catalog

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/internal/tracing"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// Kind is one of the four aggregated lists.
type Kind struct {
	Method string // e.g. tools/list
	Field  string // the array in the result, e.g. tools
	key    string // the member that names an item: name, uri or uriTemplate
	prefix bool   // names get the server's prefix
}

// The four kinds of list.
var (
	Tools     = &Kind{Method: "tools/list", Field: "tools", key: "name", prefix: true}
	Prompts   = &Kind{Method: "prompts/list", Field: "prompts", key: "name", prefix: true}
	Resources = &Kind{Method: "resources/list", Field: "resources", key: "uri"}
	Templates = &Kind{Method: "resources/templates/list", Field: "resourceTemplates", key: "uriTemplate"}
)

// target is it as the policy sees the request that would use it: a tool's
// tools/call, a prompt's prompts/get, a resource's (or template's)
// resources/read.
func (k *Kind) target(it *Item) policy.Target {
	t := policy.Target{Server: it.Server}
	switch k {
	case Tools:
		t.Tool = it.Name
	case Prompts:
		t.Prompt = it.Name
	default:
		t.Resource = it.Name
	}
	return t
}

// MaxPages bounds how many pages of one upstream list (or of tasks/list) are
// fetched.
const MaxPages = 100

// listRetry is how long a server whose list failed is left out (or served
// from its last list) before it is asked again, so that a dead server does
// not slow down every list.
const listRetry = 10 * time.Second

// Item is one tool, prompt, resource or template of one server.
type Item struct {
	Server string          // registration name
	Name   string          // as the server names it (tools, prompts) or its URI
	Raw    json.RawMessage // as the client sees it: prefixed
	// Unlisted: a tool whose x-mcp-header marks break SEP-2243's rules.
	// A client MUST leave such a tool out of tools/list, so it is never
	// served in a list; it is kept so that a call to it is refused with
	// the reason (ErrToolDefinition), not forwarded without its headers.
	Unlisted bool
}

// Config bounds and times the catalog. The router fills every field (its
// defaults); New refuses a limit or a duration that is not positive.
type Config struct {
	// ListTimeout bounds fetching one server's list.
	ListTimeout time.Duration
	// ListRefresh is how long a server's cached list is served before it
	// is fetched again, and how long a tools list's definitions are read
	// for its context's calls past its ttlMs (Definition).
	ListRefresh time.Duration
	// MaxListBytes and MaxListItems bound one server's list of one kind;
	// MaxAggregateBytes and MaxAggregateItems one aggregated list (see
	// router.Config).
	MaxListBytes      int64
	MaxListItems      int
	MaxAggregateBytes int64
	MaxAggregateItems int
	// CacheBytes bounds the lists cached for all authorization contexts.
	CacheBytes int64
	// MaxResponseBytes bounds one upstream answer, as the upstream client
	// reads it.
	MaxResponseBytes int64
	// PageSize is the number of items per page; 0 means one page.
	PageSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Registry is the source of registered servers.
type Registry interface {
	Load() *registry.Snapshot
}

// Deps are what the catalog uses at run time.
type Deps struct {
	Registry Registry
	// Log is the logger; nil logs nothing.
	Log *slog.Logger
	// Tracer makes a span of each list fetch; nil makes none.
	Tracer trace.Tracer
	// Source fetches lists; required.
	Source Source
	// Reporter is told what is left out of lists, to count and log it;
	// required.
	Reporter Reporter
}

// Reporter is told what the catalog leaves out of lists; list is the
// method (tools/list...).
type Reporter interface {
	// Failed: srv's list could not be had for the server's sake (Limit
	// names the size limit it passed, if that is why).
	Failed(srv *registry.Server, list string, err error)
	// TooLarge: srv's list was left out of an aggregate over limit
	// (maxAggregateBytes or maxAggregateItems); bytes and items are its size.
	TooLarge(srv *registry.Server, list, limit string, bytes int64, items int)
	// Shadowed: names of srv's list were left out, since another server's
	// longer prefix takes them.
	Shadowed(srv *registry.Server, list string, names []string)
}

// Source is what the catalog needs of the router to fetch lists.
type Source interface {
	// Credential is the Authorization the router sends server for the
	// caller ("" for none); an error means the caller may not reach it.
	Credential(ctx context.Context, caller Caller, server string) (string, error)
	// Request sends method with params to srv, authenticated with auth,
	// on the caller's upstream session with it, and returns the result and
	// the protocol version of that session. An error wrapping ErrCaller is
	// the caller's affair, not the server's.
	Request(ctx context.Context, caller Caller, srv *registry.Server, auth, method string, params []byte) (json.RawMessage, string, error)
}

// Filter is what the catalog asks of authz: which targets the caller may
// use (see router.Authorizer.Visible).
type Filter interface {
	Visible(ctx context.Context, callerAuthorization string, targets []policy.Target) ([]bool, error)
}

// Caller is the authorization context lists are collected for: the caller
// (issuer and subject, from authz's assertion) and its token's expiry.
type Caller struct {
	Issuer, Subject string
	// Expiry bounds how long the lists fetched for the caller are kept;
	// zero: no bound.
	Expiry time.Time
	// Authorization is the header received, as the Filter and the Source
	// are given it.
	Authorization string
	// Session is the router's own (its client session), handed back to
	// the Source as it is.
	Session any
}

// ErrCaller marks a failure that belongs to the caller (no token for the
// server, or the server refused it) rather than to the server.
var ErrCaller = errors.New("router: the caller may not reach the server")

// Errors of Page, each for the client.
var (
	ErrCursor = errors.New("catalog: invalid cursor")
	ErrFilter = errors.New("catalog: authorization unavailable")
)

// Catalog is the lists of every registered server, as each caller sees
// them. Lists are cached per authorization context: per server and kind,
// per caller and per credential the router sends that server for the
// caller (a SHA-256 of it; no token is kept), so an upstream that answers
// each caller differently never has one caller's entries served to another.
// A list is served for ListRefresh, or the upstream's ttlMs if shorter,
// never past the caller token's expiry (a tools list's definitions are
// read for that context's calls for ListRefresh, see Definition);
// Invalidate (list_changed) drops every context's lists of a server. Page
// filters each list per caller, every kind with the policy of the method
// that uses its entries.
type Catalog struct {
	cfg     Config
	reg     Registry
	src     Source
	log     *slog.Logger
	tracer  trace.Tracer
	report  Reporter
	answer  mcpparse.Options // how an upstream's answers are read
	lists   *listCache
	shadows atomic.Pointer[shadowIndex] // of the last snapshot lists were collected from
}

// New returns a catalog.
func New(c Config, d Deps) (*Catalog, error) {
	if d.Registry == nil || d.Source == nil || d.Reporter == nil {
		return nil, errors.New("catalog: a registry, a source and a reporter are required")
	}
	if c.ListTimeout <= 0 || c.ListRefresh <= 0 || c.MaxListBytes <= 0 || c.MaxListItems <= 0 ||
		c.MaxAggregateBytes <= 0 || c.MaxAggregateItems <= 0 || c.CacheBytes <= 0 || c.MaxResponseBytes <= 0 {
		return nil, errors.New("catalog: every limit and timeout must be positive")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Catalog{
		cfg: c, reg: d.Registry, src: d.Source, log: d.Log, tracer: d.Tracer, report: d.Reporter,
		answer: upstream.AnswerOptions(c.MaxResponseBytes),
		lists:  newListCache(c.CacheBytes),
	}, nil
}

// Invalidate makes every authorization context's lists of server
// unreachable: it said its lists changed.
func (c *Catalog) Invalidate(server string) { c.lists.invalidate(server) }

// Retain drops the lists of servers snap no longer has.
func (c *Catalog) Retain(snap *registry.Snapshot) { c.lists.retain(snap) }

// Items returns the items of k from every server, for the caller's
// authorization context: each server's list as fetched with the credential
// the router sends that server for this caller, from the cache while fresh.
// A server that fails is left out (its last list of this context is served
// while its deadline allows); servers whose lists take the aggregate past
// MaxAggregateBytes or MaxAggregateItems are left out, the largest first.
func (c *Catalog) Items(ctx context.Context, k *Kind, caller Caller) []Item {
	items, _ := c.collect(ctx, k, caller)
	return items
}

// listMeta is what the lists collect aggregated say of caching: how long
// the aggregate stays fresh (the least of its lists') and whether any was
// private.
type listMeta struct {
	fresh   time.Duration
	private bool
}

// collect is Items, with the aggregate's listMeta.
func (c *Catalog) collect(ctx context.Context, k *Kind, caller Caller) ([]Item, listMeta) {
	snap := c.reg.Load()
	servers := snap.Servers()
	nested := c.shadowIndex(snap)
	lists := make([]*serverList, len(servers))
	type miss struct {
		i    int
		key  listKey
		auth string
		seen uint64
	}
	var missing []miss
	now := c.cfg.Now()
	var (
		lastAuth string
		authCtx  [32]byte
		digested bool
	)
	for i := range servers {
		srv := &servers[i]
		auth, err := c.src.Credential(ctx, caller, srv.Name)
		if err != nil {
			// The caller's affair, not the server's: no credential, no list.
			c.log.Debug("list not fetched for this caller", "server", srv.Name, "list", k.Method)
			continue
		}
		if !digested || auth != lastAuth {
			// Servers reached with one credential (no exchange) share
			// the digest.
			lastAuth, authCtx, digested = auth, authContext(caller.Issuer, caller.Subject, auth), true
		}
		key, l, ok, seen := c.lists.lookup(k, srv, nested[srv.Name], authCtx, now)
		if ok && now.Before(l.fresh) {
			lists[i] = l
			continue
		}
		missing = append(missing, miss{i, key, auth, seen})
	}
	var wg sync.WaitGroup
	for _, m := range missing {
		wg.Go(func() { lists[m.i] = c.fetchCached(ctx, k, caller, snap, &servers[m.i], m.key, m.auth, m.seen) })
	}
	wg.Wait()
	c.boundAggregate(k, servers, lists)
	n := 0
	for _, l := range lists {
		if l != nil {
			n += len(l.items)
		}
	}
	out := make([]Item, 0, n)
	now = c.cfg.Now() // after the fetches: the lists' freshness as answered
	meta := listMeta{fresh: c.cfg.ListRefresh}
	for _, l := range lists {
		if l != nil {
			for _, it := range l.items {
				if !it.Unlisted {
					out = append(out, it)
				}
			}
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
func (c *Catalog) boundAggregate(k *Kind, servers []registry.Server, lists []*serverList) {
	var bytes int64
	items := 0
	for _, l := range lists {
		if l != nil {
			bytes += l.bytes
			items += len(l.items)
		}
	}
	if bytes <= c.cfg.MaxAggregateBytes && items <= c.cfg.MaxAggregateItems {
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
		if bytes <= c.cfg.MaxAggregateBytes && items <= c.cfg.MaxAggregateItems {
			return
		}
		limit := "maxAggregateBytes"
		if bytes <= c.cfg.MaxAggregateBytes {
			limit = "maxAggregateItems"
		}
		c.report.TooLarge(&servers[i], k.Method, limit, lists[i].bytes, len(lists[i].items))
		bytes -= lists[i].bytes
		items -= len(lists[i].items)
		lists[i] = nil
	}
}

// fetchCached fetches srv's list (of snap) for one authorization context
// (key) and caches it as its ttlMs and the caller token's expiry allow.
// Concurrent misses of one context share one fetch; different contexts
// never do. A list put under key since the cache had seen puts (lookup's
// count) is taken as it is: refetch takes none.
func (c *Catalog) fetchCached(ctx context.Context, k *Kind, caller Caller, snap *registry.Snapshot, srv *registry.Server, key listKey, auth string, seen uint64) *serverList {
	v, err, _ := c.lists.sf.Do(key.String(), func() (any, error) {
		// A fetch in flight when this one's caller looked may have put
		// its list since, between that look and this flight.
		if l, ok := c.lists.putSince(key, seen, c.cfg.Now()); ok {
			return l, nil
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ListTimeout)
		defer cancel()
		start := c.cfg.Now()
		ctx, span := tracing.StartUpstream(ctx, c.tracer, k.Method, "", srv.Name)
		res, err := c.fetch(ctx, k, caller, snap, srv, key.nested != "", auth)
		tracing.EndUpstream(span, err)
		if err != nil {
			return nil, err
		}
		l := &serverList{server: srv.Name, items: res.items, bytes: res.bytes, private: res.private}
		l.fresh = start.Add(c.cfg.ListRefresh)
		l.until = start.Add(2 * c.cfg.ListRefresh)
		if res.ttl >= 0 {
			// Never served longer than the upstream says (SEP-2549).
			l.fresh = start.Add(min(res.ttl, c.cfg.ListRefresh))
			l.until = start.Add(res.ttl)
		}
		if k == Tools {
			// Its definitions stay readable for this context's own calls
			// (Definition) for ListRefresh, whatever its ttlMs: that
			// governs serving it (SEP-2549), not the Mcp-Param check.
			l.defs = start.Add(c.cfg.ListRefresh)
		}
		if exp := caller.Expiry; !exp.IsZero() {
			if exp.Before(l.until) {
				l.until = exp
			}
			if exp.Before(l.defs) {
				l.defs = exp
			}
		}
		if l.until.Before(l.fresh) {
			l.fresh = l.until
		}
		// A cacheScope "private" list needs nothing more: every list is
		// kept for its own authorization context only, public or not.
		if l.until.After(start) || l.defs.After(start) {
			c.lists.put(key, l)
		}
		return l, nil
	})
	if errors.Is(err, ErrCaller) {
		// This caller may not reach the server: that says nothing of the
		// server, so nothing is cached; its last list is still served.
		c.log.Debug("list not fetched for this caller", "server", srv.Name, "list", k.Method)
		return c.servable(key)
	}
	if err != nil {
		c.report.Failed(srv, k.Method, err)
		// Ask again after listRetry; meanwhile serve the last list while
		// its deadline allows, else nothing. What is served is fresh until
		// the retry, no longer: an aggregate without this server's items
		// is not to be kept past it (its ttlMs).
		now := c.cfg.Now()
		retry := now.Add(min(listRetry, c.cfg.ListRefresh))
		old := c.servable(key)
		marker := &serverList{server: srv.Name, fresh: retry, until: retry}
		if old != nil && old.until.Before(retry) {
			c.lists.put(key, marker)
			return old // servable now, but not until the retry
		}
		if old != nil {
			marker.items, marker.bytes, marker.private = old.items, old.bytes, old.private
		}
		c.lists.put(key, marker)
		return marker
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
func (c *Catalog) shadowIndex(snap *registry.Snapshot) map[string]string {
	if s := c.shadows.Load(); s != nil && s.snap == snap {
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
	c.shadows.Store(&shadowIndex{snap: snap, nested: nested})
	return nested
}

// servable is the list under key while it may be served (until), else nil.
func (c *Catalog) servable(key listKey) *serverList {
	now := c.cfg.Now()
	if l, _ := c.lists.get(key, now); l != nil && now.Before(l.until) {
		return l
	}
	return nil
}

// Definition is srv's tool name (unprefixed) as this authorization context
// (the caller, with the credential auth) last read srv's list: for the
// Mcp-Param check and mirror of its own calls (SEP-2243: a client works
// from the definition it has, and reads it again on HeaderMismatch). The
// list is used while fresh, and past its ttlMs while ListRefresh since it
// was read allows (stale is then true: the caller may refresh it with
// RefreshTool); else it is fetched. Never another context's. ok is false
// when the list cannot be had or has no such tool. A tool left out of
// tools/list (Item.Unlisted) is returned all the same, so that a call to it
// is refused with the reason.
func (c *Catalog) Definition(ctx context.Context, caller Caller, srv *registry.Server, auth, name string) (tool json.RawMessage, stale, ok bool) {
	now := c.cfg.Now()
	snap := c.reg.Load()
	key, l, held, seen := c.lists.lookup(Tools, srv, c.shadowIndex(snap)[srv.Name], authContext(caller.Issuer, caller.Subject, auth), now)
	switch {
	case held && now.Before(l.fresh):
	case held && now.Before(l.defs):
		stale = true
	default:
		l = c.fetchCached(ctx, Tools, caller, snap, srv, key, auth, seen)
	}
	tool, ok = l.tool(name)
	return tool, stale, ok
}

// RefreshTool is Definition with srv's list fetched again for this
// authorization context, however fresh the cached one: for a call the
// server refused because its tool's definition changed since (SEP-2243's
// HeaderMismatch), or whose Mcp-Param headers do not match a stale one.
// Other contexts' lists are left as they are.
func (c *Catalog) RefreshTool(ctx context.Context, caller Caller, srv *registry.Server, auth, name string) (json.RawMessage, bool) {
	snap := c.reg.Load()
	key, _, _, _ := c.lists.lookup(Tools, srv, c.shadowIndex(snap)[srv.Name], authContext(caller.Issuer, caller.Subject, auth), c.cfg.Now())
	return c.fetchCached(ctx, Tools, caller, snap, srv, key, auth, refetch).tool(name)
}

// refetch is fetchCached's seen for a fetch that no list already put can
// stand in for.
const refetch = math.MaxUint64

// tool is the item named name of l (nil: none).
func (l *serverList) tool(name string) (json.RawMessage, bool) {
	if l != nil {
		for _, it := range l.items {
			if it.Name == name {
				return it.Raw, true
			}
		}
	}
	return nil, false
}

// Page is one page of an aggregated list as one caller sees it.
type Page struct {
	kind  *Kind
	items []Item // the page's
	next  int    // the offset of the next page; 0 when this is the last
	meta  listMeta
}

// Page returns the page at cursor of k's list for the caller: aggregated,
// filtered by filter (nil: unfiltered) with the policy of the method that
// uses each entry. It fails with ErrCursor or ErrFilter.
func (c *Catalog) Page(ctx context.Context, k *Kind, caller Caller, filter Filter, cursor string) (Page, error) {
	offset, ok := decodeCursor(cursor)
	if !ok {
		return Page{}, ErrCursor
	}
	items, meta := c.collect(ctx, k, caller)
	if filter != nil {
		meta.private = true // filtered for this caller
	}
	if filter != nil && len(items) > 0 {
		targets := make([]policy.Target, len(items))
		for i, it := range items {
			targets[i] = k.target(&it)
		}
		vis, err := filter.Visible(ctx, caller.Authorization, targets)
		if err != nil || len(vis) != len(items) {
			c.log.Warn("list filter failed", "list", k.Method, "error", fmt.Sprint(err))
			return Page{}, ErrFilter
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
		return Page{}, ErrCursor
	}
	end := len(items)
	if c.cfg.PageSize > 0 && offset+c.cfg.PageSize < end {
		end = offset + c.cfg.PageSize
	}
	p := Page{kind: k, items: items[offset:end], meta: meta}
	if end < len(items) {
		p.next = end
	}
	return p, nil
}

// Size is about the bytes Append adds, at least.
func (p *Page) Size() int {
	n := 96
	for _, it := range p.items {
		n += len(it.Raw) + 1
	}
	return n
}

// Append appends the page as the list method's result object; stateless
// adds what the stateless revision's results carry (resultType, ttlMs,
// cacheScope).
func (p *Page) Append(b []byte, stateless bool) []byte {
	b = append(append(append(b, `{"`...), p.kind.Field...), `":[`...)
	for i, it := range p.items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.Raw...)
	}
	b = append(b, ']')
	if p.next > 0 {
		b = append(append(append(b, `,"nextCursor":"`...), encodeCursor(p.next)...), '"')
	}
	if stateless {
		// SEP-2549: the aggregate is fresh as long as its stalest part, and
		// private when any part is or when it was filtered for the caller.
		b = append(b, `,"resultType":"complete","ttlMs":`...)
		b = strconv.AppendInt(b, p.meta.fresh.Milliseconds(), 10)
		if p.meta.private {
			b = append(b, `,"cacheScope":"private"`...)
		} else {
			b = append(b, `,"cacheScope":"public"`...)
		}
	}
	return append(b, '}')
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
