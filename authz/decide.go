package authz

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/mcp-authz/mcp-authz/identity"
	"github.com/mcp-authz/mcp-authz/mcpparse"
	"github.com/mcp-authz/mcp-authz/registry"
)

// Decide answers one request: its body parsed, its target found in the
// registry, its caller identified, a token exchanged for the target and the
// policy evaluated. It never fails: every failure is a denial with a reason,
// and every decision is counted and logged. A nil Request is denied as
// invalid (400).
func (s *Server) Decide(ctx context.Context, r *Request) *Decision {
	start := time.Now()
	ctx, span := s.startCheck(ctx, r)
	d := s.decide(ctx, r)
	d = s.audited(r, d, time.Since(start))
	endCheck(span, d)
	s.record(ctx, d, time.Since(start))
	return d
}

// call is one request as authz sees it while deciding. It holds a copy of
// the Request, so that the caller's Request can stay on its stack.
type call struct {
	req    Request
	caller *identity.Identity
	raw    string // the caller's bearer token
	snap   *registry.Snapshot
	// route is the server of a per-route attachment (attached true); nil
	// when the route names no registered server.
	route    *registry.Server
	attached bool
}

func (s *Server) decide(ctx context.Context, r *Request) *Decision {
	if r == nil {
		return deny(http.StatusBadRequest, ReasonInvalidRequest, -32600)
	}
	c := &call{req: *r}
	d := s.run(ctx, c)
	d.caller(c)
	if d.Allow {
		s.finish(c, d)
	}
	return d
}

func (s *Server) run(ctx context.Context, c *call) *Decision {
	r := &c.req
	if d := s.checkOrigin(r); d != nil {
		return d
	}
	if d := s.checkBody(r); d != nil {
		return d
	}
	if d := s.authenticate(ctx, c); d != nil {
		d.ID = s.requestID(r)
		return d
	}
	c.snap = s.reg.Load()
	c.route, c.attached = routeServer(c.snap, r)
	switch r.Method {
	case http.MethodPost:
	case http.MethodGet, http.MethodDelete:
		// The SSE stream and the end of a session carry no JSON-RPC message:
		// the caller is authenticated, the router or the server checks the
		// session. Attached to a route, it goes to the server itself.
		if c.attached && c.route == nil {
			return deny(http.StatusForbidden, ReasonToolDenied, codeForbidden).noServer()
		}
		tok, d := s.upstreamToken(ctx, c, c.route, nil)
		if d != nil {
			return d
		}
		return s.allow(c, tok)
	default:
		return deny(http.StatusMethodNotAllowed, ReasonInvalidRequest, -32600)
	}
	if len(r.Body) == 0 {
		return deny(http.StatusBadRequest, ReasonBodyMissing, mcpparse.CodeParseError)
	}
	opts := mcpparse.Options{MaxBytes: s.cfg.MaxBodyBytes}
	if mcpparse.IsBatch(r.Body) {
		if !s.cfg.AllowBatch {
			return deny(http.StatusBadRequest, ReasonBatchRejected, mcpparse.Code(mcpparse.ErrBatch))
		}
		msgs, err := mcpparse.ParseBatch(r.Body, opts)
		if err != nil {
			return parseDenial(err)
		}
		return s.batch(ctx, c, msgs)
	}
	span := s.startSpan(ctx, "mcpparse.Parse")
	msg, err := mcpparse.Parse(r.Body, opts)
	endSpan(span, err)
	if err != nil {
		return parseDenial(err)
	}
	if d := checkMirrorHeaders(r.Headers, &msg); d != nil {
		return d
	}
	return s.decideMessage(ctx, c, &msg)
}

// checkBody refuses a body that is not whole: one cut before it reached
// authz (Request.BodyTruncated), or shorter than its content-length (cut on
// the way). Such a body is never parsed as if whole.
func (s *Server) checkBody(r *Request) *Decision {
	if r.BodyTruncated {
		return deny(http.StatusRequestEntityTooLarge, ReasonBodyTruncated, -32600)
	}
	if cl, ok := r.Headers["content-length"]; ok {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > len(r.Body) {
			return deny(http.StatusRequestEntityTooLarge, ReasonBodyTruncated, -32600)
		}
	}
	if len(r.Body) > s.cfg.MaxBodyBytes {
		return deny(http.StatusRequestEntityTooLarge, ReasonBodyTooLarge, -32600)
	}
	return nil
}

// requestID is the JSON-RPC id of a request refused before its body is
// looked at (the caller is not authenticated): the id of a POSTed message
// that parses, so that the client can match the answer; nil (null) for
// anything else. The parse is bounded as every parse is (MaxBodyBytes,
// checked before) and happens on the denial path only.
func (s *Server) requestID(r *Request) []byte {
	if r.Method != http.MethodPost || len(r.Body) == 0 || mcpparse.IsBatch(r.Body) {
		return nil
	}
	m, err := mcpparse.Parse(r.Body, mcpparse.Options{MaxBytes: s.cfg.MaxBodyBytes})
	if err != nil {
		return nil
	}
	return m.ID
}

func parseDenial(err error) *Decision {
	code := mcpparse.Code(err)
	reason := ReasonInvalidRequest
	if code == mcpparse.CodeParseError {
		reason = ReasonParseError
	}
	return deny(http.StatusBadRequest, reason, code)
}

func mismatch(m *mcpparse.Message) *Decision {
	d := deny(http.StatusBadRequest, ReasonHeaderMismatch, mcpparse.CodeHeaderMismatch)
	d.ID = m.ID
	return d
}
