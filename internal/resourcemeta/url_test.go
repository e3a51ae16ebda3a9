package resourcemeta

import "testing"

func TestURL(t *testing.T) {
	tests := []struct {
		name, scheme, host, path, want string
	}{
		{"path-suffixed", "https", "mcp.example.com", "/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{"no scheme means http", "", "mcp.example.com:8080", "/mcp", "http://mcp.example.com:8080/.well-known/oauth-protected-resource/mcp"},
		{"query dropped", "https", "mcp.example.com", "/mcp?session=1", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{"root adds no suffix", "https", "mcp.example.com", "/", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"root with a query", "https", "mcp.example.com", "/?a=b", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"empty path", "https", "mcp.example.com", "", "https://mcp.example.com/.well-known/oauth-protected-resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.scheme, tt.host, tt.path); got != tt.want {
				t.Errorf("URL(%q, %q, %q) = %q, want %q", tt.scheme, tt.host, tt.path, got, tt.want)
			}
		})
	}
}
