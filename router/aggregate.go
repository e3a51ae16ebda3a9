package router

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcp-authz/mcp-authz/policy"
	"github.com/mcp-authz/mcp-authz/registry"
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

// serverList is one server's cached list of one kind.
type serverList struct {
	server  string
	items   []item
	fetched time.Time
}

// listCache holds each server's lists; entries are keyed by kind, name,
// URL and prefix so that a changed registration never sees old entries.
type listCache struct {
	mu sync.Mutex
	m  map[string]*serverList
	sf singleflight.Group
}

func newListCache() *listCache { return &listCache{m: map[string]*serverList{}} }

func cacheKey(k *kind, srv *registry.Server) string {
	return k.method + "\x00" + srv.Name + "\x00" + srv.URL + "\x00" + srv.Prefix
}

// invalidate drops every list of server.
func (c *listCache) invalidate(server string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, l := range c.m {
		if l.server == server {
			delete(c.m, k)
		}
	}
}

// retain drops the lists of servers no longer registered.
func (c *listCache) retain(snap *registry.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, l := range c.m {
		if _, ok := snap.Server(l.server); !ok {
			delete(c.m, k)
		}
	}
}

// collect returns the items of k from every server, fetching lists that are
// missing or older than ListRefresh. A server that fails is left out (its
// last list is served if there is one).
func (r *Router) collect(ctx context.Context, c *call, k *kind) []item {
	servers := r.reg.Load().Servers()
	lists := make([][]item, len(servers))
	var missing []int
	now := r.now()
	r.lists.mu.Lock()
	for i := range servers {
		l, ok := r.lists.m[cacheKey(k, &servers[i])]
		if ok && now.Sub(l.fetched) < r.cfg.ListRefresh {
			lists[i] = l.items
		} else {
			missing = append(missing, i)
		}
	}
	r.lists.mu.Unlock()
	var wg sync.WaitGroup
	for _, i := range missing {
		wg.Go(func() { lists[i] = r.fetchCached(ctx, c, k, &servers[i]) })
	}
	wg.Wait()
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]item, 0, n)
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

func (r *Router) fetchCached(ctx context.Context, c *call, k *kind, srv *registry.Server) []item {
	key := cacheKey(k, srv)
	v, err, _ := r.lists.sf.Do(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ListTimeout)
		defer cancel()
		items, err := r.fetch(ctx, c, k, srv)
		if err != nil {
			return nil, err
		}
		r.lists.mu.Lock()
		r.lists.m[key] = &serverList{server: srv.Name, items: items, fetched: r.now()}
		r.lists.mu.Unlock()
		return items, nil
	})
	if errors.Is(err, errCaller) {
		// This caller may not reach the server: that says nothing of the
		// server, so nothing is cached; its last list is still filtered.
		r.log.Debug("list not fetched for this caller", "server", srv.Name, "list", k.method)
		r.lists.mu.Lock()
		defer r.lists.mu.Unlock()
		if l, ok := r.lists.m[key]; ok {
			return l.items
		}
		return nil
	}
	if err != nil {
		r.upstreamFailed(srv, k.method, err)
		r.lists.mu.Lock()
		defer r.lists.mu.Unlock()
		var items []item
		if l, ok := r.lists.m[key]; ok {
			items = l.items
		}
		retry := min(listRetry, r.cfg.ListRefresh)
		r.lists.m[key] = &serverList{server: srv.Name, items: items, fetched: r.now().Add(retry - r.cfg.ListRefresh)}
		return items
	}
	return v.([]item)
}

// fetch reads every page of one server's list.
func (r *Router) fetch(ctx context.Context, c *call, k *kind, srv *registry.Server) ([]item, error) {
	auth, err := r.upstreamAuth(ctx, c.auth, srv.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errCaller, err)
	}
	up, err := r.upstreamFor(ctx, c.sess, srv, auth)
	if err != nil {
		return nil, callerError(err)
	}
	var items []item
	cursor := ""
	retried := false
	for page := 0; page < maxPages; page++ {
		params := map[string]string{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		h := upstreamHeaders{auth: auth, session: up.ID, version: up.Version}
		res, _, err := r.request(ctx, srv, h, k.method, params)
		if errors.Is(err, errUpstreamSession) && up.ID != "" && !retried {
			retried = true
			if up, err = r.reinit(ctx, c.sess, srv, auth, up); err != nil {
				return nil, err
			}
			page--
			continue
		}
		var re *rpcError
		if errors.As(err, &re) && re.Code == codeNoMethod {
			return items, nil // the server has none of this kind
		}
		if err != nil {
			return nil, callerError(err)
		}
		var pr map[string]json.RawMessage
		if err := json.Unmarshal(res, &pr); err != nil {
			return nil, fmt.Errorf("router: %s %s: %w", srv.Name, k.method, errUpstreamAnswer)
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(pr[k.field], &raws); err != nil {
			return nil, fmt.Errorf("router: %s %s: %w", srv.Name, k.method, errUpstreamAnswer)
		}
		for _, raw := range raws {
			it, ok := makeItem(k, srv, raw)
			if !ok {
				r.log.Warn("upstream item skipped", "server", srv.Name, "list", k.method)
				continue
			}
			items = append(items, it)
		}
		cursor = ""
		if nc, ok := pr["nextCursor"]; ok {
			_ = json.Unmarshal(nc, &cursor)
		}
		if cursor == "" {
			return items, nil
		}
	}
	return items, nil
}

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
// names; resources keep their URIs.
func makeItem(k *kind, srv *registry.Server, raw json.RawMessage) (item, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return item{}, false
	}
	var name string
	if err := json.Unmarshal(obj[k.key], &name); err != nil || name == "" {
		return item{}, false
	}
	it := item{server: srv.Name, name: name, raw: raw}
	if !k.prefix {
		return it, true
	}
	if !validName(srv.Prefix + name) {
		return item{}, false
	}
	obj[k.key], _ = json.Marshal(srv.Prefix + name)
	b, err := json.Marshal(obj)
	if err != nil {
		return item{}, false
	}
	it.raw = b
	return it, true
}

// validName is MCP's tool name rule: 1 to 128 of [A-Za-z0-9_.-].
func validName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// list answers one of the list methods: aggregated, filtered for the
// caller (tools), one page.
func (r *Router) list(w http.ResponseWriter, c *call, k *kind) {
	var p struct {
		Cursor string `json:"cursor"`
	}
	if len(c.msg.Params) > 0 {
		if err := json.Unmarshal(c.msg.Params, &p); err != nil {
			writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid params")
			return
		}
	}
	offset, ok := decodeCursor(p.Cursor)
	if !ok {
		writeError(w, http.StatusOK, c.msg.ID, codeInvalidParams, "invalid cursor")
		return
	}
	ctx := c.req.Context()
	items := r.collect(ctx, c, k)
	if k == toolsKind && r.auth != nil && len(items) > 0 {
		targets := make([]policy.Target, len(items))
		for i, it := range items {
			targets[i] = policy.Target{Server: it.server, Tool: it.name}
		}
		vis, err := r.auth.Visible(ctx, c.auth, targets)
		if err != nil || len(vis) != len(items) {
			r.log.Warn("tool filter failed", "error", fmt.Sprint(err))
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
