package challenge

import "testing"

const meta = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

func TestChallenges(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"401 without a token", Unauthorized(meta, nil, false), `Bearer resource_metadata="` + meta + `"`},
		{"401 for a refused token", Unauthorized(meta, nil, true), `Bearer resource_metadata="` + meta + `", error="invalid_token"`},
		{
			name: "401 with scopes: offline_access and what is no scope token left out",
			got:  Unauthorized(meta, []string{"openid", "offline_access", `a"b`, "mcp:tools", "", "c d"}, true),
			want: `Bearer resource_metadata="` + meta + `", scope="openid mcp:tools", error="invalid_token"`,
		},
		{"401 whose only scope is never advertised", Unauthorized(meta, []string{"offline_access"}, false), `Bearer resource_metadata="` + meta + `"`},
		{"step-up", InsufficientScope(meta, []string{"mcp:admin", "offline_access"}), `Bearer error="insufficient_scope", scope="mcp:admin", resource_metadata="` + meta + `"`},
		{"step-up without a usable scope", InsufficientScope(meta, []string{`x\y`}), `Bearer error="insufficient_scope", resource_metadata="` + meta + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

func TestScopeToken(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"plain", "mcp:tools", true},
		{"every allowed punctuation", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~", true},
		{"empty", "", false},
		{"space", "a b", false},
		{"quote", `a"b`, false},
		{"backslash", `a\b`, false},
		{"control", "a\x7fb", false},
		{"non-ASCII", "é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ScopeToken(tt.s); got != tt.want {
				t.Errorf("ScopeToken(%q) = %t, want %t", tt.s, got, tt.want)
			}
		})
	}
}
