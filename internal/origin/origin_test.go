package origin

import (
	"errors"
	"testing"

	"github.com/mcp-authz/mcp-authz/internal/field"
)

func TestCheck(t *testing.T) {
	defaults := Config{}
	listed := Config{
		AllowedOrigins: []string{"https://app.example.com", "http://localhost:*", "http://[::1]:3000", "HTTPS://Tools.Example.com:8443"},
		AllowedHosts:   []string{"mcp.example.com", "127.0.0.1:8080", "[::1]", "localhost"},
	}
	anyOrigin := Config{AllowedOrigins: []string{"*"}}
	tests := []struct {
		name      string
		c         Config
		origin    string
		hasOrigin bool
		host      string
		want      error
	}{
		{name: "defaults: no origin", c: defaults, host: "evil.example.com"},
		{name: "defaults: localhost origin", c: defaults, origin: "http://localhost:6274", hasOrigin: true, host: "127.0.0.1:8080"},
		{name: "defaults: 127.0.0.1 origin", c: defaults, origin: "http://127.0.0.1:8080", hasOrigin: true, host: "127.0.0.1:8080"},
		{name: "defaults: 127.1.2.3 origin", c: defaults, origin: "https://127.1.2.3", hasOrigin: true},
		{name: "defaults: IPv6 loopback origin", c: defaults, origin: "http://[::1]:8080", hasOrigin: true, host: "[::1]:8080"},
		{name: "defaults: IPv6 loopback long form", c: defaults, origin: "http://[0:0:0:0:0:0:0:1]", hasOrigin: true},
		{name: "defaults: evil origin (DNS rebinding)", c: defaults, origin: "http://evil.example.com", hasOrigin: true, host: "evil.example.com", want: ErrOrigin},
		{name: "defaults: localhost lookalike", c: defaults, origin: "http://localhost.evil.com", hasOrigin: true, want: ErrOrigin},
		{name: "defaults: null origin", c: defaults, origin: "null", hasOrigin: true, want: ErrOrigin},
		{name: "defaults: empty origin", c: defaults, origin: "", hasOrigin: true, want: ErrOrigin},
		{name: "defaults: origin with a path", c: defaults, origin: "http://localhost/x", hasOrigin: true, want: ErrOrigin},
		{name: "defaults: file origin", c: defaults, origin: "file://localhost", hasOrigin: true, want: ErrOrigin},
		{name: "listed origin", c: listed, origin: "https://app.example.com", hasOrigin: true, host: "mcp.example.com"},
		{name: "listed origin, default port spelt", c: listed, origin: "https://app.example.com:443", hasOrigin: true, host: "mcp.example.com"},
		{name: "listed origin, case", c: listed, origin: "https://tools.example.com:8443", hasOrigin: true, host: "MCP.example.com:443"},
		{name: "listed origin, other port", c: listed, origin: "https://app.example.com:8443", hasOrigin: true, host: "mcp.example.com", want: ErrOrigin},
		{name: "listed origin, other scheme", c: listed, origin: "http://app.example.com", hasOrigin: true, host: "mcp.example.com", want: ErrOrigin},
		{name: "listed port wildcard", c: listed, origin: "http://localhost:5173", hasOrigin: true, host: "localhost:8080"},
		{name: "listed IPv6 origin", c: listed, origin: "http://[::1]:3000", hasOrigin: true, host: "[::1]:8080"},
		{name: "listed IPv6 origin, other port", c: listed, origin: "http://[::1]:3001", hasOrigin: true, host: "[::1]:8080", want: ErrOrigin},
		{name: "a list replaces the loopback default", c: listed, origin: "http://127.0.0.1:3000", hasOrigin: true, host: "mcp.example.com", want: ErrOrigin},
		{name: "host not listed", c: listed, host: "evil.example.com", want: ErrHost},
		{name: "host listed without port: any port", c: listed, host: "mcp.example.com:8443"},
		{name: "host listed with port: that port", c: listed, host: "127.0.0.1:8080"},
		{name: "host listed with port: other port", c: listed, host: "127.0.0.1:9090", want: ErrHost},
		{name: "IPv6 host", c: listed, host: "[::1]:8080"},
		{name: "IPv6 host without brackets", c: listed, host: "::1", want: ErrHost},
		{name: "empty host", c: listed, want: ErrHost},
		{name: "host checked before origin", c: listed, origin: "https://app.example.com", hasOrigin: true, host: "evil.example.com", want: ErrHost},
		{name: "any origin", c: anyOrigin, origin: "https://anything.example", hasOrigin: true, host: "whatever"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Check(tt.origin, tt.hasOrigin, tt.host); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("Check(%q, %v, %q) = %v, want %v", tt.origin, tt.hasOrigin, tt.host, err, tt.want)
			}
		})
	}
	var nilMatcher *Matcher
	if err := nilMatcher.Check("http://evil.example.com", true, "x"); !errors.Is(err, ErrOrigin) {
		t.Fatalf("nil matcher: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		path string // of the one error; "" for none
	}{
		{name: "good", c: Config{AllowedOrigins: []string{"*", "https://a.example", "http://[::1]:*"}, AllowedHosts: []string{"a.example", "[::1]:80", "10.0.0.1"}}},
		{name: "origin without scheme", c: Config{AllowedOrigins: []string{"https://ok.example", "a.example"}}, path: "allowedOrigins[1]"},
		{name: "origin with a path", c: Config{AllowedOrigins: []string{"https://a.example/"}}, path: "allowedOrigins[0]"},
		{name: "origin with another scheme", c: Config{AllowedOrigins: []string{"ftp://a.example"}}, path: "allowedOrigins[0]"},
		{name: "origin with a bad port", c: Config{AllowedOrigins: []string{"https://a.example:x"}}, path: "allowedOrigins[0]"},
		{name: "host with a scheme", c: Config{AllowedHosts: []string{"https://a.example"}}, path: "allowedHosts[0]"},
		{name: "IPv6 host without brackets", c: Config{AllowedHosts: []string{"::1"}}, path: "allowedHosts[0]"},
		{name: "empty host", c: Config{AllowedHosts: []string{""}}, path: "allowedHosts[0]"},
		{name: "host wildcard", c: Config{AllowedHosts: []string{"*.example.com"}}, path: "allowedHosts[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *field.Error
			if !errors.As(err, &fe) || fe.Path != tt.path {
				t.Fatalf("Validate: %v, want an error at %s", err, tt.path)
			}
			if _, err := New(tt.c); err == nil {
				t.Fatal("New accepted what Validate refuses")
			}
		})
	}
}
