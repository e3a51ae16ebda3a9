package router

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/router/upstream"
)

// statelessVersions are the revisions the router serves without sessions
// (SEP-2575, SEP-2567), newest first.
var statelessVersions = []string{upstream.Stateless}

// supportedVersions is every revision the router serves, newest first: what
// server/discover and -32022 list. The router bridges generations both ways
// (see upstreamFor), so no registered server narrows it.
var supportedVersions = slices.Concat(statelessVersions, protocolVersions)

// codeUnsupportedVersion is UnsupportedProtocolVersionError (2026-07-28).
const codeUnsupportedVersion = -32022

// statelessRequest serves c when it is a request of the stateless revision:
// its params._meta names a protocol version, or it is server/discover
// without a session. It reports whether it did (answered, refused or
// served); requests it leaves go on to the session path.
//
// Such a request needs no session and nothing shared: the caller is the
// assertion's issuer and subject, the client's capabilities come with the
// request, and every replica serves it alike. Where a server speaks only an
// earlier revision, the router holds an upstream session for the caller
// (per caller, server and client capabilities: see statelessSession).
func (r *Router) statelessRequest(w http.ResponseWriter, c *call) bool {
	m := c.msg
	if m.Kind != mcpparse.KindRequest {
		return false
	}
	var version string
	var caps, info json.RawMessage
	if m.Meta != nil {
		f, err := mcpparse.Fields(m.Meta, requestOptions, upstream.MetaVersion, upstream.MetaCapabilities, upstream.MetaClientInfo)
		if err != nil {
			writeError(w, http.StatusBadRequest, m.ID, codeInvalidParams, "invalid params._meta")
			return true
		}
		if f[0].Raw != nil {
			if version, err = mcpparse.String(f[0].Raw); err != nil || version == "" {
				writeError(w, http.StatusBadRequest, m.ID, codeInvalidParams, "invalid _meta "+upstream.MetaVersion)
				return true
			}
		}
		caps, info = nullable(f[1].Raw), nullable(f[2].Raw)
	}
	sid := c.req.Header.Get("Mcp-Session-Id")
	switch {
	case version == "" && m.Method == "server/discover" && sid == "":
		// A probe without a version: answered, whatever the client speaks.
		r.discover(w, c)
		return true
	case version == "" && sid == "" && c.req.Header.Get("MCP-Protocol-Version") >= upstream.Stateless:
		writeError(w, http.StatusBadRequest, m.ID, codeInvalidParams, "missing _meta "+upstream.MetaVersion)
		return true
	case version == "":
		return false // a request of a session, or a 2025 initialize
	}
	if m.Method == "initialize" && !slices.Contains(statelessVersions, version) {
		return false // an initialize that names a session revision in _meta too
	}
	// From here on, Mcp-Session-Id is ignored (streamable HTTP, 2026-07-28).
	if !slices.Contains(statelessVersions, version) {
		unsupportedVersion(w, m.ID, version)
		return true
	}
	if !statelessHeaders(c.req.Header, m, version) {
		writeError(w, http.StatusBadRequest, m.ID, codeHeaderMismatch, "MCP-Protocol-Version, Mcp-Method or Mcp-Name missing or not matching the body")
		return true
	}
	if len(caps)+len(info) > maxClientInit {
		info = nil
		if len(caps) > maxClientInit {
			caps = nil
		}
	}
	c.sess = r.statelessSession(c, version, caps, info)
	switch m.Method {
	case "server/discover":
		r.discover(w, c)
	case "initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe":
		// Removed in 2026-07-28 (sessions, ping and the log level are gone;
		// subscriptions/listen replaces subscribe): not served statelessly.
		writeError(w, http.StatusNotFound, m.ID, codeNoMethod, "method not found")
	default:
		r.dispatch(w, c)
	}
	return true
}

// noMethodStatus is the HTTP status of the -32601 answer to a method the
// router does not serve: 404 for a stateless request (streamable HTTP,
// 2026-07-28: a JSON-RPC error body tells it from a legacy server's 404),
// 200 in a session, as 2025 revisions answer every JSON-RPC error.
func noMethodStatus(c *call) int {
	if c.sess != nil && c.sess.stateless() {
		return http.StatusNotFound
	}
	return http.StatusOK
}

// statelessHeaders checks the headers a stateless request MUST carry:
// MCP-Protocol-Version equal to its _meta version, Mcp-Method, and Mcp-Name
// for the methods that name something (their equality with the body is
// checked by mirrorsBody, before).
func statelessHeaders(h http.Header, m *mcpparse.Message, version string) bool {
	if h.Get("MCP-Protocol-Version") != version || h.Get("Mcp-Method") == "" {
		return false
	}
	switch m.Method {
	case "tools/call", "prompts/get", "resources/read":
		return h.Get("Mcp-Name") != ""
	}
	return true
}

// unsupportedVersion answers 400 with UnsupportedProtocolVersionError,
// listing the versions the router serves.
func unsupportedVersion(w http.ResponseWriter, id json.RawMessage, requested string) {
	data, _ := json.Marshal(struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested"`
	}{supportedVersions, requested})
	e := append([]byte(`{"code":`+strconv.Itoa(codeUnsupportedVersion)+`,"message":"Unsupported protocol version","data":`), data...)
	e = append(e, '}')
	writeJSON(w, http.StatusBadRequest, answerBody(id, nil, e))
}

// statelessSession is the session-shaped view of one stateless request:
// never sealed nor sent to the client. Its ID is a digest of the version,
// capabilities and clientInfo, so that requests of one caller with the same
// ones share upstream sessions with servers of an earlier revision (the
// caller, issuer and subject, is in its key: see session.key), and requests
// with other capabilities never get a session initialized with these.
func (r *Router) statelessSession(c *call, version string, caps, info json.RawMessage) *session {
	h := sha256.New()
	var n [4]byte
	for _, b := range [...][]byte{[]byte(version), caps, info} {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var sum [sha256.Size]byte
	s := &session{
		Issuer:  c.claims.Issuer,
		Subject: c.claims.Subject,
		Version: version,
		Issued:  r.now().Unix(),
	}
	// The id is the start of the key (session.key), sharing its memory;
	// caps and info, copied out of the request, share one buffer.
	id := base64.RawURLEncoding.AppendEncode([]byte("stateless."), h.Sum(sum[:0])[:18])
	key := string(appendKey(id, s.Issuer, s.Subject))
	s.ID, s.scope = key[:len(id)], key
	if len(caps)+len(info) > 0 {
		buf := append(append(make([]byte, 0, len(caps)+len(info)), caps...), info...)
		if len(caps) > 0 {
			s.Caps = buf[:len(caps):len(caps)]
		}
		if len(info) > 0 {
			s.Info = buf[len(caps):]
		}
	}
	return s
}

// stateless reports whether s is a stateless request's (statelessSession).
func (s *session) stateless() bool { return s.Version >= upstream.Stateless }

// legacyVersion is the version the router initializes a session with a
// server of an earlier revision in: the session's, or for a stateless
// caller the newest revision with sessions.
func legacyVersion(v string) string {
	if v >= upstream.Stateless {
		return protocolVersions[0]
	}
	return v
}

// discoverCapabilities is what server/discover answers: what the router
// itself serves of every server (lists aggregated, calls routed, their
// changes and resource updates merged by subscriptions/listen, tasks).
const discoverCapabilities = `{"tools":{"listChanged":true},"prompts":{"listChanged":true},"resources":{"listChanged":true,"subscribe":true},"extensions":{"io.modelcontextprotocol/tasks":{}}}`

// discover answers server/discover: the versions the router serves, its
// capabilities and identity. It is the same for every caller (public).
func (r *Router) discover(w http.ResponseWriter, c *call) {
	res, _ := json.Marshal(struct {
		ResultType        string          `json:"resultType"`
		SupportedVersions []string        `json:"supportedVersions"`
		Capabilities      json.RawMessage `json:"capabilities"`
		Meta              map[string]any  `json:"_meta"`
		TTL               int64           `json:"ttlMs"`
		Scope             string          `json:"cacheScope"`
	}{
		ResultType:        "complete",
		SupportedVersions: supportedVersions,
		Capabilities:      json.RawMessage(discoverCapabilities),
		Meta:              map[string]any{"io.modelcontextprotocol/serverInfo": map[string]string{"name": "mcp-authz", "version": "1"}},
		TTL:               r.cfg.ListRefresh.Milliseconds(),
		Scope:             "public",
	})
	writeJSON(w, http.StatusOK, resultBody(c.msg.ID, res))
}

// privateScope is a resources/read result with its cacheScope (SEP-2549)
// made "private": the router let this caller read it by policy, which
// another caller's may not, so no cache shared across authorization
// contexts may keep it, whatever the server said. Every member that is
// cacheScope once folded is made so: a client decoding with encoding/json
// reads "cachescope" as cacheScope. A result without one is left as it is
// (clients assume no caching without ttlMs).
func (r *Router) privateScope(result json.RawMessage) json.RawMessage {
	if len(result) < 2 || result[0] != '{' {
		return result
	}
	names, err := mcpparse.Names(result, r.answer)
	if err != nil {
		return result // read with r.answer already: cannot happen
	}
	var scopes []string
	for _, n := range names {
		if mcpparse.FoldKey(n) == foldedCacheScope {
			scopes = append(scopes, n)
		}
	}
	if len(scopes) == 0 {
		return result
	}
	f, err := mcpparse.Fields(result, r.answer, scopes...)
	if err != nil {
		return result
	}
	// Back to front, so that the offsets before each splice hold.
	for i := len(f) - 1; i >= 0; i-- {
		if string(f[i].Raw) != `"private"` {
			result = mcpparse.Splice(result, mcpparse.Span{Start: f[i].Start, End: f[i].Start + len(f[i].Raw)}, []byte(`"private"`))
		}
	}
	return result
}

// foldedCacheScope is cacheScope as mcpparse.FoldKey folds it.
var foldedCacheScope = mcpparse.FoldKey("cacheScope")

// paramsFor is body with its params rewritten for a server speaking
// version (up.Version; up.ID "" and the stateless revision: stateless): a
// stateless server gets the stateless _meta (a session's client's version,
// capabilities and clientInfo) unless the client sent it, a server of an
// earlier revision never sees it (see upstream.RewriteParams).
func (r *Router) paramsFor(c *call, up upstreamSession, body []byte) []byte {
	modern := up.ID == "" && up.Version >= upstream.Stateless
	if modern == c.sess.stateless() {
		return body
	}
	return upstream.RewriteParams(body, requestOptions, modern, c.sess.Info, c.sess.Caps)
}

// resultFor is an upstream's result as the client's revision wants it:
// task ids sealed (taskResult), with a resultType for a stateless client.
func (r *Router) resultFor(c *call, result json.RawMessage) json.RawMessage {
	result = r.taskResult(c, result)
	if c.msg.Method == "resources/read" && r.auth != nil {
		result = r.privateScope(result)
	}
	if result == nil || !c.sess.stateless() {
		return result
	}
	return upstream.WithResultType(result, r.answer)
}
