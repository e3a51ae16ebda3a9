// Package challenge writes the WWW-Authenticate values of MCP
// authorization: RFC 6750 Bearer challenges that carry RFC 9728's
// resource_metadata parameter.
package challenge

import "strings"

// Unauthorized is the challenge of a 401 (RFC 9728 section 5.1): where the
// protected-resource metadata is, the scopes a client should ask for, and
// error="invalid_token" when the request's token was refused (invalid).
func Unauthorized(metadataURL string, scopes []string, invalid bool) string {
	c := `Bearer resource_metadata="` + metadataURL + `"`
	if scope := scopeParam(scopes); scope != "" {
		c += `, scope="` + scope + `"`
	}
	if invalid {
		c += `, error="invalid_token"`
	}
	return c
}

// InsufficientScope is the step-up challenge of a 403 (RFC 6750 section
// 3.1, MCP authorization's scope challenge): the scopes the request needs.
func InsufficientScope(metadataURL string, scopes []string) string {
	c := `Bearer error="insufficient_scope"`
	if scope := scopeParam(scopes); scope != "" {
		c += `, scope="` + scope + `"`
	}
	return c + `, resource_metadata="` + metadataURL + `"`
}

// scopeParam joins scopes for a challenge, without offline_access (never
// advertised) and anything that is not a scope token.
func scopeParam(scopes []string) string {
	var b strings.Builder
	for _, sc := range scopes {
		if sc == "offline_access" || !ScopeToken(sc) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(sc)
	}
	return b.String()
}

// ScopeToken reports whether s is an RFC 6749 scope token (NQCHAR).
func ScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
