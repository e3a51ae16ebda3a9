package audit

// TraceID returns the trace-id of a W3C traceparent header value
// (version-traceid-parentid-flags, 55 characters in version 00), or "" when
// the value is not a valid traceparent: wrong length or separators,
// upper-case or non-hex digits, version ff, or an all-zero trace or parent
// id. A later version may append fields after a dash; its first 55
// characters are read as version 00's.
func TraceID(h string) string {
	if len(h) < 55 || (len(h) > 55 && (h[0:2] == "00" || h[55] != '-')) {
		return ""
	}
	if h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return ""
	}
	version, trace, parent, flags := h[0:2], h[3:35], h[36:52], h[53:55]
	if !hex(version) || version == "ff" || !hex(trace) || !hex(parent) || !hex(flags) {
		return ""
	}
	if zero(trace) || zero(parent) {
		return ""
	}
	return trace
}

func hex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func zero(s string) bool {
	for i := range len(s) {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
