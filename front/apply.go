package front

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"golang.org/x/net/http/httpguts"
)

// action is what one HeaderValueOption does to a header.
type action uint8

const (
	actAdd               action = iota + 1 // another entry with the same name
	actAppend                              // append ",value" to the existing entry, or add
	actSet                                 // replace every entry, or add
	actAddIfAbsent                         // add only when absent
	actOverwriteIfExists                   // replace only when present
)

// headerAction maps a HeaderValueOption to what Envoy does with it
// (base.proto, HeaderValueOption; external_auth.proto, OkHttpResponse):
//   - the deprecated append wrapper, when present, wins: true appends to the
//     existing request header (and adds a response header), false overwrites;
//   - otherwise append_action: APPEND_IF_EXISTS_OR_ADD (the default) adds an
//     entry, ADD_IF_ABSENT adds only when absent, OVERWRITE_IF_EXISTS_OR_ADD
//     overwrites or adds, OVERWRITE_IF_EXISTS overwrites only when present;
//   - an unknown action makes the whole answer invalid.
func headerAction(o *corev3.HeaderValueOption, response bool) (action, error) {
	if a := o.GetAppend(); a != nil { //nolint:staticcheck // deprecated, and still honoured by Envoy
		switch {
		case !a.GetValue():
			return actSet, nil
		case response:
			return actAdd, nil
		default:
			return actAppend, nil
		}
	}
	switch o.GetAppendAction() {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		return actAdd, nil
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		return actAddIfAbsent, nil
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		return actSet, nil
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		return actOverwriteIfExists, nil
	}
	return 0, fmt.Errorf("unknown append_action %d", o.GetAppendAction())
}

// apply does a to header k (canonical) of h.
func (a action) apply(h http.Header, k, v string) {
	switch a {
	case actAdd:
		h[k] = append(h[k], v)
	case actAppend:
		if vs := h[k]; len(vs) > 0 {
			vs[0] += "," + v
		} else {
			h[k] = []string{v}
		}
	case actSet:
		h[k] = []string{v}
	case actAddIfAbsent:
		if len(h[k]) == 0 {
			h[k] = []string{v}
		}
	case actOverwriteIfExists:
		if len(h[k]) > 0 {
			h[k] = []string{v}
		}
	}
}

// applyOK applies an OK answer to the request before it goes upstream, in
// Envoy's order (ext_authz filter, onComplete): the header mutations of
// ok_response.headers in their order, then headers_to_remove, then
// query_parameters_to_set and query_parameters_to_remove. Removing after
// setting is why authz lists in headers_to_remove only the client's x-mcp-*
// headers it does not set itself. Pseudo-headers and Host are never changed
// nor removed ("Pseudo headers ... as well as the header Host, may not be
// removed", OkHttpResponse.headers_to_remove). clear_route_cache has nothing
// to do here: the front has one upstream, so there is no route to pick again.
// An invalid name, value or action rejects the whole answer.
func applyOK(r *http.Request, ok *authv3.OkHttpResponse) error {
	for _, o := range ok.GetHeaders() {
		a, err := headerAction(o, false)
		if err != nil {
			return err
		}
		k, v, skip, err := mutation(o)
		if err != nil {
			return err
		}
		if skip || k == "Host" {
			continue
		}
		a.apply(r.Header, k, v)
	}
	removeHeaders(r.Header, ok.GetHeadersToRemove())
	if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 {
		q, err := editQuery(r.URL.RawQuery, ok.GetQueryParametersToSet(), ok.GetQueryParametersToRemove())
		if err != nil {
			return err
		}
		r.URL.RawQuery = q
		r.URL.ForceQuery = false
	}
	return nil
}

// mutation returns the canonical name and the value of o, whether it names a
// pseudo-header (left alone), or why it is invalid.
func mutation(o *corev3.HeaderValueOption) (k, v string, skip bool, err error) {
	k, v = o.GetHeader().GetKey(), o.GetHeader().GetValue()
	if raw := o.GetHeader().GetRawValue(); len(raw) > 0 {
		v = string(raw)
	}
	k, skip, err = headerName(k, v)
	return k, v, skip, err
}

// headerName returns the canonical name of header k: v to set, whether it
// is a pseudo-header (left alone), or why it is invalid.
func headerName(k, v string) (ck string, skip bool, err error) {
	if strings.HasPrefix(k, ":") {
		return "", true, nil
	}
	if err := validHeader(k, v); err != nil {
		return "", false, err
	}
	return http.CanonicalHeaderKey(k), false, nil
}

// removeHeaders removes the request headers named in names, except
// pseudo-headers and Host, which are never removed.
func removeHeaders(h http.Header, names []string) {
	for _, k := range names {
		if strings.HasPrefix(k, ":") || strings.EqualFold(k, "host") {
			continue
		}
		h.Del(k)
	}
}

// validHeader reports why header k: v cannot be set on a request, if it
// cannot.
func validHeader(k, v string) error {
	if !httpguts.ValidHeaderFieldName(k) {
		return fmt.Errorf("invalid header name %q", k)
	}
	if !httpguts.ValidHeaderFieldValue(v) {
		return fmt.Errorf("invalid value for header %q", k)
	}
	return nil
}

// applyResponseHeaders applies header mutations to a response (a local reply,
// or the upstream's answer for response_headers_to_add), where the deprecated
// append: true adds an entry. Invalid entries, pseudo-headers and the framing
// headers the server owns are skipped: the response is already decided.
func applyResponseHeaders(h http.Header, opts []*corev3.HeaderValueOption) {
	for _, o := range opts {
		a, err := headerAction(o, true)
		if err != nil {
			continue
		}
		k, v, skip, err := mutation(o)
		if err != nil || skip {
			continue
		}
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Trailer":
			continue
		}
		a.apply(h, k, v)
	}
}

// editQuery sets and removes query parameters as Envoy does: the query is
// split into raw (undecoded) name=value pairs, a set parameter replaces every
// value of that name, a removed one loses them all, and the query is written
// back sorted by name (Envoy keeps parameters in a sorted map). Names and
// values set by authz go in as they are, so they must need no escaping.
func editQuery(raw string, set []*corev3.QueryParameter, remove []string) (string, error) {
	params := make(map[string][]string)
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		params[k] = append(params[k], v)
	}
	for _, p := range set {
		if !queryToken(p.GetKey(), true) || !queryToken(p.GetValue(), false) {
			return "", fmt.Errorf("invalid query parameter %q", p.GetKey())
		}
		params[p.GetKey()] = []string{p.GetValue()}
	}
	for _, k := range remove {
		delete(params, k)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range params[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	return b.String(), nil
}

// queryToken reports whether s can stand in a query as it is.
func queryToken(s string, name bool) bool {
	if name && s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '&' || c == '#' || (name && c == '=') {
			return false
		}
	}
	return true
}
