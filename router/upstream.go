package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/mcp-authz/mcp-authz/registry"
)

// upstreamHeaders are the per-call headers of a request to an upstream.
type upstreamHeaders struct {
	auth    string // Authorization value; "" sends none
	session string // upstream Mcp-Session-Id
	version string // MCP-Protocol-Version
	method  string // Mcp-Method, for a request or notification
	name    string // Mcp-Name, for tools/call, prompts/get, resources/read
}

var (
	errUpstreamSession      = errors.New("router: upstream session ended")
	errUpstreamUnauthorized = errors.New("router: upstream refused the credentials")
	errUpstreamAnswer       = errors.New("router: upstream answered badly")
)

// rpcError is a JSON-RPC error an upstream answered with.
type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("router: upstream error %d", e.Code) }

var requestIDs atomic.Int64

// send POSTs body to srv with h.
func (r *Router) send(ctx context.Context, srv *registry.Server, h upstreamHeaders, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("router: upstream %s: %w", srv.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	setUpstreamHeaders(req.Header, h)
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("router: upstream %s: %w", srv.Name, err)
	}
	return resp, nil
}

func setUpstreamHeaders(hd http.Header, h upstreamHeaders) {
	if h.auth != "" {
		hd.Set("Authorization", h.auth)
	}
	if h.session != "" {
		hd.Set("Mcp-Session-Id", h.session)
	}
	if h.version != "" {
		hd.Set("MCP-Protocol-Version", h.version)
	}
	if h.method != "" {
		hd.Set("Mcp-Method", h.method)
	}
	if h.name != "" {
		hd.Set("Mcp-Name", h.name)
	}
}

// request sends a request the router makes itself and returns the result
// of the one answer, read from JSON or SSE.
func (r *Router) request(ctx context.Context, srv *registry.Server, h upstreamHeaders, method string, params any) (json.RawMessage, http.Header, error) {
	id := strconv.AppendInt(nil, requestIDs.Add(1), 10)
	p, err := json.Marshal(params)
	if err != nil {
		return nil, nil, fmt.Errorf("router: %s: %w", method, err)
	}
	body, err := json.Marshal(message{JSONRPC: "2.0", ID: id, Method: method, Params: p})
	if err != nil {
		return nil, nil, fmt.Errorf("router: %s: %w", method, err)
	}
	h.method = method
	resp, err := r.send(ctx, srv, h, body)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		return nil, resp.Header, err
	}
	m, err := r.readAnswer(resp, id)
	if err != nil {
		return nil, resp.Header, fmt.Errorf("router: %s %s: %w", srv.Name, method, err)
	}
	if m.Error != nil {
		var e rpcError
		if json.Unmarshal(m.Error, &e) != nil {
			return nil, resp.Header, fmt.Errorf("router: %s %s: %w", srv.Name, method, errUpstreamAnswer)
		}
		return nil, resp.Header, &e
	}
	return m.Result, resp.Header, nil
}

func statusError(resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errUpstreamSession
	case resp.StatusCode == http.StatusUnauthorized:
		return errUpstreamUnauthorized
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return fmt.Errorf("%w: http %d", errUpstreamAnswer, resp.StatusCode)
	}
	return nil
}

// readAnswer reads the answer to id from a JSON or SSE response; on SSE,
// other messages before it are skipped.
func (r *Router) readAnswer(resp *http.Response, id json.RawMessage) (*message, error) {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		b, err := io.ReadAll(io.LimitReader(resp.Body, r.cfg.MaxResponseBytes+1))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errUpstreamAnswer, err)
		}
		if int64(len(b)) > r.cfg.MaxResponseBytes {
			return nil, fmt.Errorf("%w: answer too large", errUpstreamAnswer)
		}
		m, err := parseMessage(b)
		if err != nil || !m.isResponse() || !sameID(m.ID, id) {
			return nil, fmt.Errorf("%w: not the answer", errUpstreamAnswer)
		}
		return m, nil
	case "text/event-stream":
		sr := newSSEReader(resp.Body, r.cfg.MaxResponseBytes)
		for {
			data, err := sr.next()
			if err != nil {
				return nil, fmt.Errorf("%w: stream ended before the answer: %w", errUpstreamAnswer, err)
			}
			if m, err := parseMessage(data); err == nil && m.isResponse() && sameID(m.ID, id) {
				return m, nil
			}
		}
	default:
		return nil, fmt.Errorf("%w: content type %q", errUpstreamAnswer, ct)
	}
}

// clientInit is what the router keeps of the client's initialize to open
// upstream sessions on its behalf.
type clientInit struct {
	Capabilities json.RawMessage `json:"capabilities,omitempty"`
	ClientInfo   json.RawMessage `json:"clientInfo,omitempty"`
}

// initUpstream opens a session with srv: initialize, then initialized.
func (r *Router) initUpstream(ctx context.Context, srv *registry.Server, auth, version string, client json.RawMessage) (upstreamSession, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.InitTimeout)
	defer cancel()
	var ci clientInit
	if client != nil {
		_ = json.Unmarshal(client, &ci)
	}
	if ci.Capabilities == nil {
		ci.Capabilities = json.RawMessage("{}")
	}
	if ci.ClientInfo == nil {
		ci.ClientInfo = json.RawMessage(`{"name":"mcp-authz-router","version":"0"}`)
	}
	params := struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      json.RawMessage `json:"clientInfo"`
	}{version, ci.Capabilities, ci.ClientInfo}
	res, hdr, err := r.request(ctx, srv, upstreamHeaders{auth: auth}, "initialize", params)
	if err != nil {
		return upstreamSession{}, err
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(res, &ir); err != nil || ir.ProtocolVersion == "" {
		return upstreamSession{}, fmt.Errorf("router: %s initialize: %w", srv.Name, errUpstreamAnswer)
	}
	up := upstreamSession{ID: hdr.Get("Mcp-Session-Id"), Version: ir.ProtocolVersion}
	h := upstreamHeaders{auth: auth, session: up.ID, version: up.Version, method: "notifications/initialized"}
	nresp, err := r.send(ctx, srv, h, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return upstreamSession{}, err
	}
	drain(nresp)
	if err := statusError(nresp); err != nil {
		return upstreamSession{}, fmt.Errorf("router: %s initialized: %w", srv.Name, err)
	}
	return up, nil
}

// deleteUpstream ends an upstream session; errors are only logged.
func (r *Router) deleteUpstream(ctx context.Context, srv *registry.Server, auth string, up upstreamSession) {
	if up.ID == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, srv.URL, nil)
	if err != nil {
		return
	}
	setUpstreamHeaders(req.Header, upstreamHeaders{auth: auth, session: up.ID, version: up.Version})
	resp, err := r.client.Do(req)
	if err != nil {
		r.log.Debug("upstream delete failed", "server", srv.Name, "error", err)
		return
	}
	drain(resp)
}

// drain reads a little of an answer nobody needs, so that the connection
// can be reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
