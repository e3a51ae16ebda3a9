package resourcemeta

import "strings"

// URL is the metadata URL of the resource a request is for: the
// path-suffixed well-known URL of RFC 9728 section 3.1, made from the
// request's scheme ("" means http), host and path (its query dropped;
// "/" adds no suffix).
func URL(scheme, host, path string) string {
	if scheme == "" {
		scheme = "http"
	}
	path, _, _ = strings.Cut(path, "?")
	if path == "/" {
		path = ""
	}
	return scheme + "://" + host + wellKnownPath + path
}
