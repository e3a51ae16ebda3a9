// Package upstream speaks to one upstream MCP server over Streamable HTTP:
// it opens sessions (initialize, then initialized), posts messages, reads
// answers as JSON or server-sent events, opens GET streams, ends sessions,
// and sends once more on a new session when the server has ended one. It
// knows nothing of the callers it serves nor of policy: headers, sessions
// and bodies are given to it.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/lru"
	"github.com/mcp-authz/mcp-authz/mcpparse"
)

// Config configures a Client.
type Config struct {
	// Transport reaches the servers; nil means http.DefaultTransport. A
	// server with a CA of its own (Target.CACert) is reached through a
	// clone of it, which must then be an *http.Transport. No redirect is
	// ever followed: a server's answer is its own, never another URL's, so
	// a 3xx comes back as the answer (and the credential minted for the
	// server goes nowhere else).
	Transport http.RoundTripper
	// WrapTransport, when set, wraps every transport the Client sends
	// through, the shared one and each server's own (tracing does).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// MaxResponseBytes limits a JSON answer and each event of a streamed
	// one; 0 means 4 MiB.
	MaxResponseBytes int64
	// InitTimeout bounds Open; 0 means 5s.
	InitTimeout time.Duration
}

// maxEndpoints bounds the parsed server URLs a Client keeps.
const maxEndpoints = 1024

// Client reaches upstream MCP servers; it is safe for concurrent use.
type Client struct {
	base    http.RoundTripper // Config.Transport, unwrapped
	rt      http.RoundTripper // base, wrapped
	wrap    func(http.RoundTripper) http.RoundTripper
	max     int64
	initTTL time.Duration
	answer  mcpparse.Options

	// mu guards pinned.
	mu     sync.Mutex
	pinned map[string]*pinnedTransport // by Target.Server

	endpoints *lru.Cache[string, *url.URL] // Target.URL -> parsed
}

// Target is one server as the Client reaches it.
type Target struct {
	// Server names the server (its registration): the connections of a
	// server with a CA of its own are kept for that server alone.
	Server string
	// URL is the server's MCP endpoint.
	URL string
	// CACert, when set, is a PEM bundle of the only CAs the server's TLS
	// certificate may chain to, in place of the system roots; the URL must
	// then be https. Nil means the roots of Config.HTTPClient (the
	// system's, by default).
	CACert []byte
}

// pinnedTransport reaches one server that has a CA of its own.
type pinnedTransport struct {
	pem []byte            // the CA bundle it trusts, as given
	tr  *http.Transport   // its own
	rt  http.RoundTripper // tr, wrapped
}

// ErrTLSConfig: a server's own CA cannot be applied, so it is not reached.
var ErrTLSConfig = errors.New("upstream: server TLS")

// New returns a Client.
func New(c Config) *Client {
	if c.Transport == nil {
		c.Transport = http.DefaultTransport
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = 4 << 20
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = 5 * time.Second
	}
	if c.WrapTransport == nil {
		c.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return rt }
	}
	return &Client{base: c.Transport, rt: c.WrapTransport(c.Transport), wrap: c.WrapTransport, max: c.MaxResponseBytes, initTTL: c.InitTimeout, answer: AnswerOptions(c.MaxResponseBytes),
		pinned: map[string]*pinnedTransport{}, endpoints: lru.New[string, *url.URL](maxEndpoints)}
}

// transportFor returns the transport that reaches t: the shared one, or
// for a server with a CA of its own one that trusts that CA alone, built on
// first use and again whenever the CA changes (the old one's idle
// connections are closed).
func (c *Client) transportFor(t Target) (http.RoundTripper, error) {
	if len(t.CACert) == 0 {
		return c.rt, nil
	}
	if len(t.URL) < len("https://") || !strings.EqualFold(t.URL[:len("https://")], "https://") {
		return nil, fmt.Errorf("%w: %s: a CA of its own needs an https url", ErrTLSConfig, t.Server)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pinned[t.Server]; ok && bytes.Equal(p.pem, t.CACert) {
		return p.rt, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(t.CACert) {
		return nil, fmt.Errorf("%w: %s: the CA bundle holds no PEM certificate", ErrTLSConfig, t.Server)
	}
	bt, ok := c.base.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("%w: %s: a CA of its own needs an *http.Transport, not %T", ErrTLSConfig, t.Server, c.base)
	}
	tr := bt.Clone()
	// A fresh configuration: nothing of the shared one's (no other roots,
	// no InsecureSkipVerify) carries over.
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	p := &pinnedTransport{pem: bytes.Clone(t.CACert), tr: tr, rt: c.wrap(tr)}
	if old, ok := c.pinned[t.Server]; ok {
		old.tr.CloseIdleConnections()
	}
	c.pinned[t.Server] = p
	return p.rt, nil
}

// Retain forgets the transports of servers with a CA of their own that
// keep no longer holds (by Target.Server), closing their idle connections:
// a server that left the registry, or dropped its CA, keeps nothing here.
func (c *Client) Retain(keep func(server string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, p := range c.pinned {
		if !keep(name) {
			p.tr.CloseIdleConnections()
			delete(c.pinned, name)
		}
	}
}

// newRequest is http.NewRequestWithContext(ctx, method, t.URL, body) with
// header h, with t.URL parsed once: the requests share the result, which
// nothing writes to. The body is what NewRequestWithContext makes of a
// bytes.Reader: the transport writes a body it knows to be in memory
// with the headers, in one write, and can send it again (GetBody) when a
// reused connection closed before the request was written.
func (c *Client) newRequest(ctx context.Context, method string, t Target, h http.Header, body []byte) (*http.Request, error) {
	u, ok := c.endpoints.Get(t.URL)
	if !ok {
		var err error
		if u, err = url.Parse(t.URL); err != nil {
			return nil, err
		}
		c.endpoints.Put(t.URL, u)
	}
	req := (&http.Request{
		Method: method, URL: u, Host: u.Host, Header: h,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}).WithContext(ctx)
	if len(body) > 0 {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req, nil
}

// do sends req to t in one round trip: no redirect is followed, and
// nothing of http.Client's (cookies, header copies for redirects) is spent.
func (c *Client) do(t Target, req *http.Request) (*http.Response, error) {
	rt, err := c.transportFor(t)
	if err != nil {
		return nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: req.Method, URL: req.URL.Redacted(), Err: err}
	}
	return resp, nil
}

// AnswerOptions is how strictly a message from a server is read: within
// maxBytes, nested as deep as results go, keys compared case-sensitively (a
// tool's output may hold keys that differ only in case), no duplicates, ids
// any number (matched by value: a server may answer 7 as 7.0).
func AnswerOptions(maxBytes int64) mcpparse.Options {
	return mcpparse.Options{MaxBytes: int(min(maxBytes, 1<<31-1)), MaxDepth: answerDepth, CaseSensitiveKeys: true, AnyNumberID: true}
}

// answerDepth bounds the nesting of a server's message: results carry JSON
// schemas and tool output, deeper than requests.
const answerDepth = 512

// Headers are the per-message headers of a request to a server.
//
// Every request to a Target with a Server also carries the headers
// Kuadrant's mcp-gateway sets, so that policies on the server's own route (a
// Kuadrant AuthPolicy or RateLimitPolicy, reached when the server's URL leads
// back through the gateway) can key on them: x-mcp-servername (Target.Server),
// x-mcp-method (Method), and with Name, x-mcp-toolname (tools/call),
// x-mcp-promptname (prompts/get) or x-mcp-resourceuri (resources/…). Their
// values are the router's own, never a client's: the router builds every
// upstream request itself and copies no client header. docs/kuadrant.md
// ("Keeping Kuadrant's AuthPolicy") says how the deployment keeps anyone
// else from sending them.
type Headers struct {
	Auth    string // Authorization value; "" sends none
	Session string // Mcp-Session-Id; "" sends none
	Version string // MCP-Protocol-Version
	Method  string // Mcp-Method, for a request or notification
	Name    string // Mcp-Name, for tools/call, prompts/get, resources/read
	// Params are the Mcp-Param-{Name} headers of a tools/call (SEP-2243),
	// at most MaxParams, sent to a server of the stateless revision only.
	Params []Param
}

// Param is one Mcp-Param-{Name} header: Name in full and canonical form
// (textproto.CanonicalMIMEHeaderKey), Value encoded
// (mcpparse.EncodeHeader). Both are the router's own, made from the body it
// sends and the server's tool definition: never a client's header.
type Param struct{ Name, Value string }

// MaxParams bounds the Mcp-Param headers of one request: a tool definition
// that marks more arguments with x-mcp-header is refused.
const MaxParams = 32

// maxHeaders is how many headers header writes at most.
const maxHeaders = 10 + MaxParams

// header returns a request's header map holding h, the x-mcp-* headers of a
// request to server, and accept and contentType unless "". Mcp-Method and
// Mcp-Name (SEP-2243) go only to a server of the revision that defines
// them, or of one not known yet: a 2025 server is sent its own revision's.
func (h Headers) header(server, accept, contentType string) http.Header {
	// Gathered first, so that the map is made once at its size (a map of
	// up to eight entries costs half the allocations of a larger one) and
	// every value is one element of one backing array; keyed in canonical
	// form (Set would canonicalize, and allocate, each time).
	var kv [maxHeaders][2]string
	n := 0
	put := func(k, v string) {
		if v != "" {
			kv[n] = [2]string{k, v}
			n++
		}
	}
	put("Content-Type", contentType)
	put("Accept", accept)
	put("Authorization", h.Auth)
	put("Mcp-Session-Id", h.Session)
	put("Mcp-Protocol-Version", h.Version)
	if h.Version == "" || h.Version >= Stateless {
		put("Mcp-Method", h.Method)
		if h.Name != "" {
			// A URI may hold what a header cannot carry as it is.
			put("Mcp-Name", mcpparse.EncodeHeader(h.Name))
		}
	}
	if h.Version >= Stateless {
		for _, p := range h.Params[:min(len(h.Params), MaxParams)] { // Post refuses more
			put(p.Name, p.Value)
		}
	}
	if server != "" {
		put("X-Mcp-Servername", server)
		put("X-Mcp-Method", h.Method)
		switch {
		case h.Name == "":
		case h.Method == "tools/call":
			put("X-Mcp-Toolname", h.Name)
		case h.Method == "prompts/get":
			put("X-Mcp-Promptname", h.Name)
		case strings.HasPrefix(h.Method, "resources/"):
			put("X-Mcp-Resourceuri", h.Name)
		}
	}
	hd := make(http.Header, n)
	vals := make([]string, n)
	for i, e := range kv[:n] {
		vals[i] = e[1]
		hd[e[0]] = vals[i : i+1 : i+1]
	}
	return hd
}

// Session is one session with a server: its id ("" for a server that keeps
// none), the protocol version it negotiated and whether it declared the
// logging capability.
type Session struct {
	ID      string
	Version string
	Logging bool
}

// Errors the Client's methods wrap.
var (
	// ErrSessionEnded: the server answered 404, it does not know the session.
	ErrSessionEnded = errors.New("upstream: session ended")
	// ErrUnauthorized: the server answered 401.
	ErrUnauthorized = errors.New("upstream: credentials refused")
	// ErrAnswer: the server answered with something other than the answer.
	ErrAnswer = errors.New("upstream: bad answer")
)

// RPCError is a JSON-RPC error a server answered a request with.
type RPCError struct {
	Code int
}

func (e *RPCError) Error() string { return fmt.Sprintf("upstream: error %d", e.Code) }

// Post sends body to the server t with h and returns its answer unread.
func (c *Client) Post(ctx context.Context, t Target, h Headers, body []byte) (*http.Response, error) {
	if len(h.Params) > MaxParams {
		return nil, fmt.Errorf("upstream: post: %d Mcp-Param headers, at most %d", len(h.Params), MaxParams)
	}
	req, err := c.newRequest(ctx, http.MethodPost, t, h.header(t.Server, "application/json, text/event-stream", "application/json"), body)
	if err != nil {
		return nil, fmt.Errorf("upstream: post: %w", err)
	}
	resp, err := c.do(t, req)
	if err != nil {
		return nil, fmt.Errorf("upstream: post: %w", err)
	}
	return resp, nil
}

// Reopen returns a session in place of old, which the server has ended.
type Reopen func(ctx context.Context, old Session) (Session, error)

// PostSession posts body on sess; when the server answers 404 (it ended
// that session) it asks reopen for a new one and posts again, once.
func (c *Client) PostSession(ctx context.Context, t Target, h Headers, sess Session, body []byte, reopen Reopen) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		h.Session, h.Version = sess.ID, sess.Version
		resp, err := c.Post(ctx, t, h, body)
		if err != nil || resp.StatusCode != http.StatusNotFound || sess.ID == "" || attempt > 0 {
			return resp, err
		}
		Drain(resp)
		if sess, err = reopen(ctx, sess); err != nil {
			return nil, err
		}
	}
}

// Get opens the server's GET stream on h's session.
func (c *Client) Get(ctx context.Context, t Target, h Headers) (*http.Response, error) {
	req, err := c.newRequest(ctx, http.MethodGet, t, h.header(t.Server, "text/event-stream", ""), nil)
	if err != nil {
		return nil, fmt.Errorf("upstream: get: %w", err)
	}
	resp, err := c.do(t, req)
	if err != nil {
		return nil, fmt.Errorf("upstream: get: %w", err)
	}
	return resp, nil
}

// Delete ends the session named in h; a server without sessions is left
// alone.
func (c *Client) Delete(ctx context.Context, t Target, h Headers) error {
	if h.Session == "" {
		return nil
	}
	req, err := c.newRequest(ctx, http.MethodDelete, t, h.header(t.Server, "", ""), nil)
	if err != nil {
		return fmt.Errorf("upstream: delete: %w", err)
	}
	resp, err := c.do(t, req)
	if err != nil {
		return fmt.Errorf("upstream: delete: %w", err)
	}
	Drain(resp)
	return nil
}

var requestIDs atomic.Int64

// Request sends a request of the Client's own (method, with params, a
// JSON object) and returns the result of its one answer, read from JSON or
// SSE, and the answer's headers.
func (c *Client) Request(ctx context.Context, t Target, h Headers, method string, params []byte) (json.RawMessage, http.Header, error) {
	id := strconv.AppendInt(nil, requestIDs.Add(1), 10)
	body := make([]byte, 0, 64+len(method)+len(params))
	body = append(body, `{"jsonrpc":"2.0","id":`...)
	body = append(body, id...)
	body = append(body, `,"method":`...)
	body = mcpparse.AppendString(body, method)
	body = append(body, `,"params":`...)
	body = append(append(body, params...), '}')
	h.Method = method
	resp, err := c.Post(ctx, t, h, body)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if err := StatusError(resp); err != nil {
		return nil, resp.Header, err
	}
	m, err := c.ReadAnswer(resp, id)
	if err != nil {
		return nil, resp.Header, fmt.Errorf("upstream: %s: %w", method, err)
	}
	if m.Error != nil {
		f, err := mcpparse.Fields(m.Error, c.answer, "code")
		if err != nil {
			return nil, resp.Header, fmt.Errorf("upstream: %s: %w", method, ErrAnswer)
		}
		code, _ := mcpparse.Int(f[0].Raw) // Parse checked it is an integer
		return nil, resp.Header, &RPCError{Code: int(code)}
	}
	return m.Result, resp.Header, nil
}

// StatusError is the error of an answer's HTTP status, nil for 2xx.
func StatusError(resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrSessionEnded
	case resp.StatusCode == http.StatusUnauthorized:
		return ErrUnauthorized
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return &statusError{resp.StatusCode}
	}
	return nil
}

// statusError is an answer's HTTP status other than 2xx, 401 and 404: an
// ErrAnswer.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("%v: http %d", ErrAnswer, e.code) }
func (e *statusError) Unwrap() error { return ErrAnswer }

// ReadAnswer reads the answer to id (a response or an error with the same
// id value) from a JSON or SSE answer, strictly (AnswerOptions); on SSE,
// the messages before it are skipped.
func (c *Client) ReadAnswer(resp *http.Response, id []byte) (mcpparse.Message, error) {
	switch ct := MediaType(resp.Header); ct {
	case "application/json":
		b, err := readBody(resp, c.max)
		if err != nil {
			return mcpparse.Message{}, fmt.Errorf("%w: %w", ErrAnswer, err)
		}
		m, err := mcpparse.Parse(b, c.answer)
		if err != nil || !IsAnswer(&m) || !SameID(m.ID, id) {
			return mcpparse.Message{}, fmt.Errorf("%w: not the answer", ErrAnswer)
		}
		return m, nil
	case "text/event-stream":
		sr := NewSSEReader(resp.Body, c.max)
		for {
			data, err := sr.Next()
			if err != nil {
				return mcpparse.Message{}, fmt.Errorf("%w: stream ended before the answer: %w", ErrAnswer, err)
			}
			if m, err := mcpparse.Parse(data, c.answer); err == nil && IsAnswer(&m) && SameID(m.ID, id) {
				return m, nil
			}
		}
	default:
		return mcpparse.Message{}, fmt.Errorf("%w: content type %q", ErrAnswer, ct)
	}
}

// IsAnswer reports whether m answers a request: a response, or an error.
func IsAnswer(m *mcpparse.Message) bool {
	return m.Kind == mcpparse.KindResponse || m.Kind == mcpparse.KindError
}

// SameID reports whether two ids have the same value (mcpparse.AppendIDKey).
func SameID(a, b []byte) bool {
	var abuf, bbuf [64]byte
	ka, ok := mcpparse.AppendIDKey(abuf[:0], a)
	if !ok {
		return false
	}
	kb, ok := mcpparse.AppendIDKey(bbuf[:0], b)
	return ok && bytes.Equal(ka, kb)
}

// Open opens a session with the server t: initialize with version and
// the client's capabilities and clientInfo (JSON objects; nil sends {} and
// a clientInfo of the router's), then notifications/initialized. Both carry
// h's Auth; its other fields are Open's own.
func (c *Client) Open(ctx context.Context, t Target, h Headers, version string, capabilities, clientInfo json.RawMessage) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.initTTL)
	defer cancel()
	if capabilities == nil {
		capabilities = json.RawMessage("{}")
	}
	if clientInfo == nil {
		clientInfo = json.RawMessage(`{"name":"mcp-authz-router","version":"0"}`)
	}
	p := make([]byte, 0, 80+len(version)+len(capabilities)+len(clientInfo))
	p = append(p, `{"protocolVersion":`...)
	p = mcpparse.AppendString(p, version)
	p = append(p, `,"capabilities":`...)
	p = append(p, capabilities...)
	p = append(p, `,"clientInfo":`...)
	p = append(append(p, clientInfo...), '}')
	res, hdr, err := c.Request(ctx, t, Headers{Auth: h.Auth}, "initialize", p)
	if err != nil {
		return Session{}, err
	}
	f, err := mcpparse.Fields(res, c.answer, "protocolVersion", "capabilities")
	if err != nil {
		return Session{}, fmt.Errorf("upstream: initialize: %w: %w", ErrAnswer, err)
	}
	v, err := mcpparse.String(f[0].Raw)
	if err != nil || v == "" {
		return Session{}, fmt.Errorf("upstream: initialize: %w: no protocolVersion", ErrAnswer)
	}
	s := Session{ID: hdr.Get("Mcp-Session-Id"), Version: v}
	if caps := f[1].Raw; caps != nil && string(caps) != "null" {
		cf, err := mcpparse.Fields(caps, c.answer, "logging")
		if err != nil {
			return Session{}, fmt.Errorf("upstream: initialize: %w: capabilities: %w", ErrAnswer, err)
		}
		s.Logging = cf[0].Raw != nil && string(cf[0].Raw) != "null"
	}
	h = Headers{Auth: h.Auth, Session: s.ID, Version: s.Version, Method: "notifications/initialized"}
	resp, err := c.Post(ctx, t, h, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return Session{}, err
	}
	Drain(resp)
	if err := StatusError(resp); err != nil {
		return Session{}, fmt.Errorf("upstream: initialized: %w", err)
	}
	return s, nil
}

// Drain reads a little of an answer nobody needs, so that the connection
// can be reused, and closes it.
func Drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// MediaType is h's Content-Type without its parameters, in lower case:
// what mime.ParseMediaType would return for a valid one, without its
// allocations. A malformed one reads as itself and matches nothing.
func MediaType(h http.Header) string {
	v := h.Get("Content-Type")
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	for i := range len(v) {
		if 'A' <= v[i] && v[i] <= 'Z' {
			return strings.ToLower(v)
		}
	}
	return v
}

// errTooLarge: an answer over the Client's MaxResponseBytes.
var errTooLarge = errors.New("answer too large")

// readBody reads resp's body, at most max bytes: into one buffer of its
// length when the server said it.
func readBody(resp *http.Response, max int64) ([]byte, error) {
	if n := resp.ContentLength; n > max {
		return nil, errTooLarge
	} else if n >= 0 {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err == nil && int64(len(b)) > max {
		err = errTooLarge
	}
	return b, err
}
