package front

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// partialBodyHeader tells authz whether the body it got was cut at
// max_request_bytes. Envoy adds it only when it buffered a body, and drops any
// copy the client sent from the CheckRequest ("x-envoy-auth-partial-body:
// false|true metadata header will be added to the authorization request
// message", ext_authz.proto, with_request_body).
const partialBodyHeader = "x-envoy-auth-partial-body"

// checkInput is what one request contributes to its CheckRequest besides the
// request itself.
type checkInput struct {
	start    time.Time // when the request arrived: request.time
	body     []byte    // the buffered body, at most MaxRequestBytes
	hasBody  bool      // the request carried a body (Envoy: headers were not end_stream)
	partial  bool      // body was cut at MaxRequestBytes
	received int64     // body bytes received when the check was made: http.size
}

// prepare makes the header changes Envoy's connection manager makes at the
// edge (use_remote_address: true) before any filter sees the request
// (http_conn_man/headers): a new x-request-id ("Envoy will generate an
// x-request-id header for all external origin requests (the header is
// sanitized)"; preserve_external_request_id defaults to false, and every
// request reaching the front comes from outside), x-forwarded-proto set from
// the connection ("If xff_num_trusted_hops is zero, downstream
// x-forwarded-proto headers ... will be set to http or https based on if the
// downstream connection is TLS or not"), and the client address appended to
// x-forwarded-for. The changes travel on to the upstream, as in Envoy. It
// returns the request id.
func prepare(r *http.Request) string {
	id := newRequestID()
	r.Header.Set("X-Request-Id", id)
	r.Header.Set("X-Forwarded-Proto", scheme(r))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			host = strings.Join(prior, ", ") + ", " + host
		}
		r.Header.Set("X-Forwarded-For", host)
	}
	return id
}

// buildCheck builds the CheckRequest for r as Envoy's ext_authz HTTP filter
// does (AttributeContext, attribute_context.proto):
//   - source / destination: the downstream peer and the local socket address;
//   - request.time: when the request arrived;
//   - http.id: the generated x-request-id (the proto asks for "X-Request-ID
//     or equivalent"; Envoy itself sends its stream id, which authz cannot
//     find in the upstream's logs);
//   - http.method, path (the request target with its query, undecoded), host
//     (:authority), scheme, protocol ("HTTP/1.0", "HTTP/1.1", "HTTP/2"), size;
//   - http.headers: keys lower-cased, the pseudo-headers :authority, :method,
//     :path and :scheme included, values of a repeated header merged with ","
//     ("If multiple headers share the same key, they must be merged according
//     to the HTTP spec"), non-UTF-8 bytes replaced by "!"; or, with
//     encode_raw_headers, http.header_map with one entry per value;
//   - http.body (UTF-8 sanitized) or raw_body (pack_as_bytes) when the request
//     has a body, and then the x-envoy-auth-partial-body header;
//   - context_extensions: the per-route check_settings.context_extensions;
//   - metadata_context and route_metadata_context: present and empty, as Envoy
//     sends them when no metadata namespaces are configured.
func (g *Front) buildCheck(r *http.Request, id string, in checkInput) *authv3.CheckRequest {
	hr := &authv3.AttributeContext_HttpRequest{
		Id:       id,
		Method:   sanitize(r.Method),
		Path:     sanitize(requestTarget(r)),
		Host:     sanitize(r.Host),
		Scheme:   scheme(r),
		Size:     in.received,
		Protocol: protocol(r),
	}
	g.fillHeaders(hr, r, in)
	if in.hasBody {
		if g.cfg.PackAsBytes {
			hr.RawBody = in.body
		} else {
			hr.Body = sanitize(string(in.body))
		}
	}
	attrs := &authv3.AttributeContext{
		Source:               &authv3.AttributeContext_Peer{Address: socketAddress(r.RemoteAddr)},
		Destination:          &authv3.AttributeContext_Peer{Address: localAddress(r)},
		Request:              &authv3.AttributeContext_Request{Time: timestamppb.New(in.start), Http: hr},
		ContextExtensions:    g.cfg.ContextExtensions,
		MetadataContext:      &corev3.Metadata{},
		RouteMetadataContext: &corev3.Metadata{},
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

// fillHeaders sets http.headers (or http.header_map).
func (g *Front) fillHeaders(hr *authv3.AttributeContext_HttpRequest, r *http.Request, in checkInput) {
	if !g.cfg.EncodeRawHeaders {
		hr.Headers = g.headers(r, hr.Path, hr.Method, hr.Scheme, in)
		return
	}
	// Raw values are bytes: no merging, no UTF-8 replacement.
	hop := hopByHop(r.Header)
	partial := ""
	if in.hasBody {
		partial = strconv.FormatBool(in.partial)
	}
	pseudo := [...][2]string{
		{":authority", r.Host},
		{":path", hr.Path},
		{":method", hr.Method},
		{":scheme", hr.Scheme},
	}
	hm := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(pseudo)+len(r.Header)+1)}
	for _, p := range pseudo {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: p[0], RawValue: []byte(p[1])})
	}
	for k, vs := range r.Header {
		lk := lower(k)
		if skipHeader(lk, hop) {
			continue
		}
		for _, v := range vs {
			hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: lk, RawValue: []byte(v)})
		}
	}
	if partial != "" {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: partialBodyHeader, RawValue: []byte(partial)})
	}
	hr.HeaderMap = hm
}

// commonLower maps the canonical spelling of headers most MCP requests carry
// to their lower case, sparing an allocation per header.
var commonLower = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"accept", "accept-encoding", "authorization", "content-length", "content-type",
		"mcp-method", "mcp-name", "mcp-protocol-version", "mcp-session-id", "last-event-id",
		"user-agent", "x-forwarded-for", "x-forwarded-proto", "x-request-id", "traceparent", "tracestate",
		"x-mcp-method", "x-mcp-servername", "x-mcp-toolname", "x-mcp-promptname", "x-mcp-resourceuri",
	} {
		m[http.CanonicalHeaderKey(k)] = k
	}
	return m
}()

// lower is the lower-cased header name.
func lower(k string) string {
	if lk, ok := commonLower[k]; ok {
		return lk
	}
	return strings.ToLower(k)
}

// skipHeader reports whether a lower-cased request header stays out of the
// CheckRequest: the client's own partial-body marker, Host (sent as
// :authority), and hop-by-hop headers, which Envoy's connection manager strips
// before filters run.
func skipHeader(lk string, hop map[string]bool) bool {
	switch lk {
	case partialBodyHeader, "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return hop[lk]
}

// hopByHop returns the extra hop-by-hop names listed in Connection, lower-cased,
// or nil.
func hopByHop(h http.Header) map[string]bool {
	var m map[string]bool
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				if m == nil {
					m = make(map[string]bool)
				}
				m[strings.ToLower(f)] = true
			}
		}
	}
	return m
}

// requestTarget is the target as it appeared in the request line: path and
// query, undecoded.
func requestTarget(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// protocol spells the protocol as Envoy does (Http::Utility::getProtocolString).
func protocol(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "HTTP/2"
	case r.ProtoMajor == 3:
		return "HTTP/3"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "HTTP/1.0"
	default:
		return "HTTP/1.1"
	}
}

func socketAddress(hostport string) *corev3.Address {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil
	}
	p, err := strconv.ParseUint(port, 10, 32)
	if err != nil {
		return nil
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)},
	}}}
}

func localAddress(r *http.Request) *corev3.Address {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return nil
	}
	return socketAddress(a.String())
}

// sanitize replaces every byte that is not part of valid UTF-8 with "!", as
// Envoy does for string fields ("Non-UTF-8 characters will be replaced by
// "!"", AttributeContext.HttpRequest.headers). Protobuf strings must be UTF-8.
func sanitize(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte('!')
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// newRequestID returns a random UUID (version 4), the form Envoy generates.
func newRequestID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
