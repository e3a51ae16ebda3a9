package front

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/internal/assertion"
)

// decide checks r with authz in this process (Deps.Authz), without the
// CheckRequest and CheckResponse of the gRPC path, and answers or forwards
// it exactly as serve does with the CheckResponse authz/envoy would make of
// the same Decision: the Request holds what authz/envoy reads from the
// CheckRequest buildCheck makes, and the Decision is applied as applyOK and
// localReply apply that CheckResponse.
func (g *Front) decide(w http.ResponseWriter, r *http.Request, id string, in checkInput) {
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	req := g.request(r, in)
	d := g.authz.Decide(ctx, &req)
	var err error
	switch {
	case d == nil:
		err = errors.New("no decision")
	case ctx.Err() != nil:
		// An answer after the timeout is not taken, as on the gRPC path.
		err = ctx.Err()
	}
	cancel()
	if err != nil {
		if r.Context().Err() == nil {
			g.log.Warn("authz check failed", "request_id", id, "err", err)
		}
		localReply(w, g.cfg.StatusOnError, "", nil)
		return
	}
	if !d.Allow {
		st := statusOr(d.Status, http.StatusForbidden)
		g.log.Debug("authz denied", "request_id", id, "status", st)
		h := w.Header()
		h["Content-Type"] = append(h["Content-Type"], "application/json")
		if d.Challenge != "" && httpguts.ValidHeaderFieldValue(d.Challenge) {
			h["Www-Authenticate"] = append(h["Www-Authenticate"], d.Challenge)
		}
		localReply(w, st, string(d.Body()), nil)
		return
	}
	if err := applyDecision(r, d); err != nil {
		g.log.Warn("authz answer rejected", "request_id", id, "err", err)
		localReply(w, http.StatusInternalServerError, "", nil)
		return
	}
	g.forward(w, r, nil)
}

// request is the authz.Request authz/envoy makes of buildCheck(r, …, in):
// the same sanitized method, target and host, the same header map (keys
// lower-cased, repeated values joined with ",", the partial-body marker
// added), the body as sent in body (UTF-8 sanitized) or raw_body.
func (g *Front) request(r *http.Request, in checkInput) authz.Request {
	req := authz.Request{
		Method:            sanitize(r.Method),
		Path:              sanitize(requestTarget(r)),
		Host:              sanitize(r.Host),
		Scheme:            scheme(r),
		ContextExtensions: g.cfg.ContextExtensions,
	}
	req.Headers = g.headers(r, req.Path, req.Method, req.Scheme, in)
	if in.hasBody {
		req.Body = in.body
		if !g.cfg.PackAsBytes && !utf8.Valid(in.body) {
			req.Body = []byte(sanitize(string(in.body)))
		}
	}
	req.BodyTruncated = req.Headers[partialBodyHeader] == "true"
	return req
}

// headers is the header map of the CheckRequest as authz/envoy reads it:
// http.headers (buildCheck sends this very map), or, with EncodeRawHeaders,
// header_map joined per name.
func (g *Front) headers(r *http.Request, path, method, scheme string, in checkInput) map[string]string {
	hop := hopByHop(r.Header)
	raw := g.cfg.EncodeRawHeaders
	clean := func(s string) string {
		if raw {
			return s
		}
		return sanitize(s)
	}
	h := make(map[string]string, 4+len(r.Header)+1)
	h[":authority"] = clean(r.Host)
	h[":path"], h[":method"], h[":scheme"] = path, method, scheme
	for k, vs := range r.Header {
		lk := lower(k)
		if skipHeader(lk, hop) || len(vs) == 0 {
			continue
		}
		v := vs[0]
		if len(vs) > 1 {
			v = strings.Join(vs, ",")
		}
		if prior, ok := h[lk]; ok { // two spellings of one name
			v = prior + "," + v
		}
		h[lk] = clean(v)
	}
	if in.hasBody {
		h[partialBodyHeader] = "false"
		if in.partial {
			h[partialBodyHeader] = "true"
		}
	}
	return h
}

// applyDecision applies an allowing Decision as applyOK applies the OK
// answer authz/envoy makes of it: each of Headers, then the assertion,
// replaces the client's header of that name (OVERWRITE_IF_EXISTS_OR_ADD),
// then Remove is removed. An invalid name or value rejects the whole answer.
func applyDecision(r *http.Request, d *authz.Decision) error {
	for i := range len(d.Headers) + 1 {
		k, v := assertion.Header, d.Assertion
		if i < len(d.Headers) {
			k, v = d.Headers[i].Key, d.Headers[i].Value
		} else if v == "" {
			break
		}
		ck, skip, err := headerName(k, v)
		if err != nil {
			return err
		}
		if !skip && ck != "Host" {
			actSet.apply(r.Header, ck, v)
		}
	}
	removeHeaders(r.Header, d.Remove)
	return nil
}
