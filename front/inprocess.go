package front

import (
	"net/http"
	"net/textproto"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"golang.org/x/net/http/httpguts"
)

// hopHeaders are the hop-by-hop headers (RFC 9110, section 7.6.1) that
// httputil.ReverseProxy drops in both directions.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// dropHopHeaders removes the hop-by-hop headers from h, those the
// Connection header names first.
func dropHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// handOff serves an allowed request with the upstream handler of this
// process (Deps.Upstream), changed as the reverse proxy changes what it
// sends over HTTP (newProxy): hop-by-hop headers dropped (Te: trailers
// kept), Forwarded and X-Forwarded-Host dropped while X-Forwarded-For and
// -Proto stay as prepare set them, Host rewritten only with
// AutoHostRewrite; and the OK answer's response_headers_to_add applied to
// the upstream's answer. The request is the front's own from here on: it is
// changed in place, not copied.
func (g *Front) handOff(w http.ResponseWriter, r *http.Request, rh []*corev3.HeaderValueOption) {
	trailers := httpguts.HeaderValuesContainsToken(r.Header["Te"], "trailers")
	dropHopHeaders(r.Header)
	if trailers {
		r.Header["Te"] = []string{"trailers"}
	}
	delete(r.Header, "Forwarded")
	delete(r.Header, "X-Forwarded-Host")
	if g.cfg.AutoHostRewrite {
		r.Host = g.upstream.Host
	}
	r.RequestURI = r.URL.RequestURI() // as the upstream would read it: query edits included
	g.inproc.ServeHTTP(&handOffWriter{ResponseWriter: w, add: rh}, r)
}

// handOffWriter is the client's ResponseWriter as the in-process upstream
// writes to it: when the status is written, the upstream's hop-by-hop
// headers are dropped and the OK answer's response headers applied, as the
// reverse proxy does to an upstream's response (newProxy's ModifyResponse).
type handOffWriter struct {
	http.ResponseWriter
	add         []*corev3.HeaderValueOption
	wroteHeader bool
}

func (w *handOffWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.wroteHeader = true
		dropHopHeaders(w.Header())
		applyResponseHeaders(w.Header(), w.add)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *handOffWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Flush passes a stream's events on as they come (FlushInterval -1).
func (w *handOffWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *handOffWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
