package front

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/status"
)

// serve handles one request: buffer the body, check, apply, proxy.
func (g *Front) serve(w http.ResponseWriter, r *http.Request) {
	in := checkInput{start: g.now()}
	id := prepare(r)
	if !g.bufferBody(w, r, &in) {
		return
	}

	if g.authz != nil {
		g.decide(w, r, id, in)
		return
	}

	// The check: an error, a timeout or no answer is never an allow
	// (failure_mode_allow: false), and is answered status_on_error with no
	// body (ext_authz.proto, failure_mode_allow and status_on_error).
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
	resp, err := g.checker.Check(ctx, g.buildCheck(r, id, in))
	if err == nil && resp == nil {
		// In process nothing guarantees an answer; gRPC always has one.
		err = errors.New("no check response")
	}
	if err == nil && ctx.Err() != nil {
		// An answer after the timeout is not taken, in process as over gRPC.
		err = ctx.Err()
	}
	cancel()
	if err != nil {
		if r.Context().Err() == nil {
			g.log.Warn("authz check failed", "request_id", id, "code", status.Code(err).String())
		}
		localReply(w, g.cfg.StatusOnError, "", nil)
		return
	}

	// CheckResponse.status OK allows; any other status denies, with the
	// denied_response (default 403) or, when error_response is set, as an
	// error (status_on_error unless it carries a status) (external_auth.proto,
	// CheckResponse). An empty CheckResponse has status code 0, which is OK,
	// exactly as in Envoy.
	if resp.GetStatus().GetCode() != 0 {
		if er := resp.GetErrorResponse(); er != nil {
			g.log.Warn("authz answered an error", "request_id", id, "code", resp.GetStatus().GetCode())
			localReply(w, statusOr(int(er.GetStatus().GetCode()), g.cfg.StatusOnError), er.GetBody(), er.GetHeaders())
			return
		}
		d := resp.GetDeniedResponse()
		st := statusOr(int(d.GetStatus().GetCode()), http.StatusForbidden)
		g.log.Debug("authz denied", "request_id", id, "status", st)
		localReply(w, st, d.GetBody(), d.GetHeaders())
		return
	}

	ok := resp.GetOkResponse()
	if err := applyOK(r, ok); err != nil {
		// Envoy rejects a response whose mutations are invalid with 500
		// (ext_authz.proto, validate_mutations); the request is not forwarded.
		g.log.Warn("authz answer rejected", "request_id", id, "err", err)
		localReply(w, http.StatusInternalServerError, "", nil)
		return
	}
	g.forward(w, r, ok.GetResponseHeadersToAdd())
}

// forward sends an allowed request upstream, in process or over HTTP, and
// applies rh (the OK answer's response_headers_to_add) to the answer.
func (g *Front) forward(w http.ResponseWriter, r *http.Request, rh []*corev3.HeaderValueOption) {
	if g.inproc != nil {
		g.handOff(w, r, rh)
		return
	}
	if len(rh) > 0 {
		r = r.WithContext(context.WithValue(r.Context(), responseHeadersKey{}, rh))
	}
	g.proxy.ServeHTTP(w, r)
}

// bufferBody buffers up to MaxRequestBytes of the body for the check, as
// Envoy's with_request_body does: a request without a body is checked at
// once; a body over the limit is answered 413 ("Envoy will return HTTP 413
// and will not initiate the authorization process when the buffer reaches the
// number set in this field", BufferSettings.max_request_bytes) unless
// allow_partial_message is set, and then the check carries the first
// max_request_bytes and x-envoy-auth-partial-body: true. Envoy decides "over
// the limit" when its buffer reaches the limit; reading one byte more decides
// it exactly, so a body of exactly the limit is whole. The body forwarded
// upstream is always the whole body. It reports false when it answered.
func (g *Front) bufferBody(w http.ResponseWriter, r *http.Request, in *checkInput) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	in.hasBody = true
	limit := g.cfg.MaxRequestBytes
	if !g.cfg.AllowPartialMessage && r.ContentLength > limit {
		refuseBody(w, http.StatusRequestEntityTooLarge, "Payload Too Large")
		return false
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(g.cfg.BodyTimeout))
	buf, err := readBody(r, limit)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			refuseBody(w, http.StatusRequestTimeout, "request timeout")
		} else {
			refuseBody(w, http.StatusBadRequest, "Bad Request")
		}
		return false
	}
	_ = rc.SetReadDeadline(time.Time{})
	in.received = int64(len(buf))
	if int64(len(buf)) <= limit {
		in.body = buf
		r.Body = io.NopCloser(bytes.NewReader(buf))
		return true
	}
	if !g.cfg.AllowPartialMessage {
		refuseBody(w, http.StatusRequestEntityTooLarge, "Payload Too Large")
		return false
	}
	in.body, in.partial = buf[:limit], true
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	return true
}

// readBody reads r's body up to limit+1 bytes (one more tells a body over
// the limit): into one buffer of its length when the client said one within
// the limit, a body shorter than it said being an error.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= limit {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, limit+1))
}

// refuseBody answers a request whose body will not be read to its end, and
// closes the connection after the answer rather than draining the body.
func refuseBody(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Connection", "close")
	localReply(w, code, msg, nil)
}

// statusOr is code when it is a usable HTTP status, else def.
func statusOr(code, def int) int {
	if code >= 200 && code <= 599 {
		return code
	}
	return def
}

// localReply answers the client directly, as Envoy's sendLocalReply does for
// denials and errors: the authz headers applied as response headers, then,
// for a non-empty body, content-type text/plain unless authz set one.
func localReply(w http.ResponseWriter, code int, body string, headers []*corev3.HeaderValueOption) {
	h := w.Header()
	applyResponseHeaders(h, headers)
	if body != "" && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain")
	}
	if code != http.StatusNoContent && code != http.StatusNotModified {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// responseHeadersKey carries an OK answer's response_headers_to_add from the
// check to the upstream response.
type responseHeadersKey struct{}

// newProxy is the reverse proxy to the upstream. SSE streams through
// unbuffered (FlushInterval -1); hop-by-hop headers are dropped by
// httputil.ReverseProxy in both directions.
func (g *Front) newProxy() *httputil.ReverseProxy {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConnsPerHost = 64
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(g.upstream)
			if !g.cfg.AutoHostRewrite {
				pr.Out.Host = pr.In.Host
			}
			// Rewrite drops X-Forwarded-*; keep the ones set as Envoy sets
			// them (prepare), after authz had its say.
			for _, k := range [...]string{"X-Forwarded-For", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
		},
		Transport:     t,
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			if rh, ok := resp.Request.Context().Value(responseHeadersKey{}).([]*corev3.HeaderValueOption); ok {
				applyResponseHeaders(resp.Header, rh)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			g.log.Warn("upstream failed", "request_id", r.Header.Get("X-Request-Id"), "err", err)
			code := http.StatusServiceUnavailable
			if errors.Is(err, context.DeadlineExceeded) {
				code = http.StatusGatewayTimeout
			}
			localReply(w, code, "upstream connect error or disconnect/reset before headers", nil)
		},
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}
