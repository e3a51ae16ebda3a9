package identity

import "testing"

func TestTokenInQuery(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  bool
	}{
		{"empty", "", false},
		{"other parameters", "a=1&b=2", false},
		{"access_token", "access_token=s3cret", true},
		{"token", "token=s3cret", true},
		{"token among others", "a=1&token=s3cret&b=2", true},
		{"no value", "access_token", true},
		{"empty value", "token=", true},
		{"upper case", "ACCESS_TOKEN=s3cret", true},
		{"mixed case", "Access_Token=s3cret", true},
		{"percent-encoded first letter", "%61ccess_token=s3cret", true},
		{"percent-encoded underscore", "access%5Ftoken=s3cret", true},
		{"percent-encoded underscore, lower-case hex", "access%5ftoken=s3cret", true},
		{"percent-encoded k", "to%6Ben=s3cret", true},
		{"fully percent-encoded", "%74%6F%6B%65%6E=s3cret", true},
		{"percent-encoded and mixed case", "%41ccess_TOKEN=s3cret", true},
		{"double percent-encoded", "to%256Ben=s3cret", true},
		{"plus-encoded space before", "+token=s3cret", true},
		{"plus-encoded space after", "access_token+=s3cret", true},
		{"percent-encoded space", "token%20=s3cret", true},
		{"NUL after the name", "token%00x=s3cret", true},
		{"semicolon separator", "a=1;token=s3cret", true},
		{"undecodable name", "to%zken=1", true},
		{"truncated escape", "a%=1", true},
		{"undecodable name elsewhere", "a=1&%g0=2", true},
		{"name that merely contains token", "tokens=1&my_token=2&access_token_hint=3", false},
		{"token as a value", "a=token&b=access_token", false},
		{"encoded equals in a value", "a=%3Dtoken", false},
		{"plus inside a name", "to+ken=1", false},
		{"encoded name of another parameter", "%61=1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TokenInQuery(tt.query); got != tt.want {
				t.Errorf("TokenInQuery(%q) = %v, want %v", tt.query, got, tt.want)
			}
		})
	}
}

func FuzzTokenInQuery(f *testing.F) {
	for _, s := range []string{"access_token=x", "%61ccess_token=x", "a=1&to%6Ben=2", "a%=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		// Whatever the query, a plain access_token parameter appended to it
		// is found.
		if !TokenInQuery(q + "&access_token=x") {
			t.Errorf("TokenInQuery(%q + \"&access_token=x\") = false", q)
		}
	})
}
